"""LeNet-5 inference: fastconv's model.predict against ONNX Runtime running the same model, exported
(`fastconv bench --onnx`, `python bench/onnx_inference.py`).

Each side runs in a fresh process of its own, so neither finds the other's threads still spinning on
the cores (ONNX Runtime's intra-op threads and OpenMP's both spin a while after a run, and in one
process whichever side ran second lost them). The processes alternate, ABBA over `rounds` rounds,
each doing one warm-up and `runs` timed passes over the same images; the result is the median and the
minimum over every timed pass of a side. Both sides get the same thread count (fastconv.set_num_threads
with adaptive threading off, so it cannot run on fewer, unless adaptive=True: then fastconv runs as
it does by default, on no more threads than other processes leave cores free; ONNX Runtime's
intra_op_num_threads with its default session options otherwise). ONNX Runtime's time includes its Python loop over the batches and
the concatenation of their outputs, as predict's does. Needs onnx and onnxruntime (the `onnx` and
`test` extras).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

import numpy as np

from .. import _inference, functional, models

BATCH_SIZES = (256, 1024)
IMAGES = 10000
SIDES = ("fastconv", "ort")


def _ort_session(path, threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _ort_predict(session, x, batch_size):
    outputs = [session.run(None, {"input": x[begin:begin + batch_size]})[0]
               for begin in range(0, x.shape[0], batch_size)]
    return np.concatenate(outputs)


def _time_side(side, directory, batch_size, threads, runs, adaptive=False):
    """In the child process: time `runs` passes of one side over directory/x.npy, after a warm-up;
    save its output as directory/<side>.npy and return the seconds of each pass."""
    x = np.load(os.path.join(directory, "x.npy"))
    if side == "fastconv":
        from ..model import Sequential

        functional.set_num_threads(threads)
        functional.set_adaptive_threads(adaptive)
        model = Sequential.load(os.path.join(directory, "lenet5.npz"))
        predict = lambda: model.predict(x, batch_size=batch_size)  # noqa: E731
    else:
        session = _ort_session(os.path.join(directory, "lenet5.onnx"), threads)
        predict = lambda: _ort_predict(session, x, batch_size)  # noqa: E731
    np.save(os.path.join(directory, f"{side}.npy"), predict())
    return [timeit.timeit(predict, number=1) for _ in range(runs)]


def _run_side(side, directory, batch_size, threads, runs, adaptive=False):
    """Seconds of each timed pass of `side`, measured in a fresh Python process (cwd outside any
    source tree, so the installed package is the one imported)."""
    command = [sys.executable, "-m", "fastconv.benchmarks.inference", side, directory, str(batch_size),
               str(threads), str(runs), str(int(adaptive))]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} process failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_predict_vs_ort(batch_sizes=BATCH_SIZES, images=IMAGES, threads=2, rounds=5, runs=3, seed=0,
                           adaptive=False):
    """Time LeNet-5 predict on `images` random 28x28 images, fastconv vs ONNX Runtime, per batch size,
    each side in its own processes (see the module's docstring).

    Returns one dict per batch size: batch_size, images, threads, adaptive, rounds, runs, and per side
    (fastconv_, ort_) median_seconds, min_seconds, images_per_second (from the median); ratio =
    fastconv median / ORT median, ratio_min = fastconv min / ORT min, and max_abs_diff between the
    two sides' outputs (a check that both computed the same probabilities)."""
    from .. import onnx as fastconv_onnx

    model = models.lenet5(seed=seed)
    x = np.random.default_rng(seed).random((images, 1, 28, 28), dtype=np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        model.save(os.path.join(directory, "lenet5.npz"))
        fastconv_onnx.export(model, os.path.join(directory, "lenet5.onnx"))
        np.save(os.path.join(directory, "x.npy"), x)
        for batch_size in batch_sizes:
            seconds = {side: [] for side in SIDES}
            for round_index in range(rounds):  # ABBA: neither side always goes first
                for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
                    seconds[side] += _run_side(side, directory, batch_size, threads, runs, adaptive)
            outputs = [np.load(os.path.join(directory, f"{side}.npy")) for side in SIDES]
            rows.append(_row(batch_size, images, threads, rounds, runs, seconds,
                             float(np.abs(outputs[0] - outputs[1]).max()), adaptive))
    return rows


def _row(batch_size, images, threads, rounds, runs, seconds, max_abs_diff, adaptive):
    row = {"batch_size": batch_size, "images": images, "threads": threads, "adaptive": adaptive, "rounds": rounds,
           "runs": runs}
    for side in SIDES:
        median = statistics.median(seconds[side])
        row.update({f"{side}_median_seconds": median, f"{side}_min_seconds": min(seconds[side]),
                    f"{side}_images_per_second": images / median, f"{side}_seconds": seconds[side]})
    row["ratio"] = row["fastconv_median_seconds"] / row["ort_median_seconds"]
    row["ratio_min"] = row["fastconv_min_seconds"] / row["ort_min_seconds"]
    row["max_abs_diff"] = max_abs_diff
    return row


def per_layer_seconds(model, x, batch_size, repeats=5):
    """{step name: best process time (s) over all of x's batches}, plus "softmax", as predict runs
    them (fastconv._inference.steps: fused convolution blocks are one step)."""
    best = {}
    steps = _inference.steps(model.layers)
    for _ in range(repeats):
        spent = dict.fromkeys([step.name for step in steps] + ["softmax"], 0.0)
        for begin in range(0, x.shape[0], batch_size):
            batch = source = x[begin:begin + batch_size]
            for step in steps:
                start = time.process_time()
                batch = step.run(batch, overwrite_input=not np.may_share_memory(batch, source))
                spent[step.name] += time.process_time() - start
            start = time.process_time()
            model.loss.output_probabilities(batch)
            spent["softmax"] += time.process_time() - start
        best = {name: min(seconds, best.get(name, seconds)) for name, seconds in spent.items()}
    return best


def format_rows(rows):
    """The printed table of measure_predict_vs_ort's rows (ratio < 1: fastconv is faster)."""
    first = rows[0]
    lines = [f"LeNet-5 predict vs ONNX Runtime, {first['images']:,} images, {first['threads']} thread(s), "
             f"each side in its own processes, {first['rounds']} rounds x {first['runs']} runs"
             + (", fastconv's adaptive threads on" if first["adaptive"] else ""),
             f"{'batch':>6} {'fastconv img/s':>15} {'ORT img/s':>12} {'fastconv/ORT':>13} {'(of minima)':>12}"]
    for row in rows:
        lines.append(f"{row['batch_size']:>6} {row['fastconv_images_per_second']:>15,.0f} "
                     f"{row['ort_images_per_second']:>12,.0f} {row['ratio']:>13.2f} {row['ratio_min']:>12.2f}")
    lines.append("img/s and fastconv/ORT from the median pass of each side; (of minima): from the fastest")
    return lines


if __name__ == "__main__":  # one side's child process: SIDE DIRECTORY BATCH_SIZE THREADS RUNS ADAPTIVE
    side_arg, directory_arg, batch_arg, threads_arg, runs_arg, adaptive_arg = sys.argv[1:]
    print(json.dumps(_time_side(side_arg, directory_arg, int(batch_arg), int(threads_arg), int(runs_arg),
                                adaptive_arg == "1")))
