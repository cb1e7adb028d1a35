"""LeNet-5 inference: fastconv's model.predict against ONNX Runtime running the same model, exported
(`fastconv bench --onnx`, `python bench/onnx_inference.py`).

Both sides get the same thread count (fastconv.set_num_threads; ONNX Runtime intra_op_num_threads, one
inter-op thread, sequential execution) and the same images, and are timed in the same run, alternately,
best of `repeats`. ONNX Runtime's time includes its Python loop over the batches and the concatenation of
their outputs, as predict's does. Needs onnx and onnxruntime (the `onnx` and `test` extras).
"""
import os
import tempfile
import time
import timeit

import numpy as np

from .. import functional, models

BATCH_SIZES = (256, 1024)
IMAGES = 10000


def _ort_session(model, threads):
    import onnxruntime

    from fastconv import onnx as fastconv_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "lenet5.onnx")
        fastconv_onnx.export(model, path)
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _ort_predict(session, x, batch_size):
    outputs = [session.run(None, {"input": x[begin:begin + batch_size]})[0]
               for begin in range(0, x.shape[0], batch_size)]
    return np.concatenate(outputs)


def measure_predict_vs_ort(batch_sizes=(256, 1024), images=10000, threads=2, repeats=5, seed=0):
    """Time LeNet-5 predict on `images` random 28x28 images, fastconv vs ONNX Runtime, per batch size.

    Returns one dict per batch size: batch_size, images, threads, fastconv_seconds, ort_seconds (best
    of `repeats`), their images per second, ratio = fastconv_seconds / ort_seconds, and
    max_abs_diff between the two outputs (a check that both computed the same probabilities)."""
    functional.set_num_threads(threads)
    model = models.lenet5(seed=seed)
    x = np.random.default_rng(seed).random((images, 1, 28, 28), dtype=np.float32)
    session = _ort_session(model, threads)
    rows = []
    for batch_size in batch_sizes:
        ours = lambda: model.predict(x, batch_size=batch_size)  # noqa: E731
        theirs = lambda: _ort_predict(session, x, batch_size)  # noqa: E731
        max_abs_diff = float(np.abs(ours() - theirs()).max())  # also the warm-up of both
        ours_times, theirs_times = [], []
        for _ in range(repeats):  # alternate, so a busy spell on the machine hits both sides
            ours_times.append(timeit.timeit(ours, number=1))
            theirs_times.append(timeit.timeit(theirs, number=1))
        ours_s, theirs_s = min(ours_times), min(theirs_times)
        rows.append({"batch_size": batch_size, "images": images, "threads": threads,
                     "fastconv_seconds": ours_s, "ort_seconds": theirs_s,
                     "fastconv_images_per_second": images / ours_s, "ort_images_per_second": images / theirs_s,
                     "ratio": ours_s / theirs_s, "max_abs_diff": max_abs_diff})
    return rows


def per_layer_seconds(model, x, batch_size, repeats=5):
    """{layer name: best process time (s) of its inference forward over all of x's batches}, plus
    "softmax", as predict runs them (elementwise layers in place on the previous layer's output)."""
    best = {}
    for _ in range(repeats):
        spent = dict.fromkeys([layer.name for layer in model.layers] + ["softmax"], 0.0)
        for begin in range(0, x.shape[0], batch_size):
            batch = source = x[begin:begin + batch_size]
            for layer in model.layers:
                start = time.process_time()
                batch = layer.forward_inference(batch, overwrite_input=not np.may_share_memory(batch, source))
                spent[layer.name] += time.process_time() - start
            start = time.process_time()
            model.loss.output_probabilities(batch)
            spent["softmax"] += time.process_time() - start
        best = {name: min(seconds, best.get(name, seconds)) for name, seconds in spent.items()}
    return best


def format_rows(rows, repeats):
    """The printed table of measure_predict_vs_ort's rows (ratio < 1: fastconv is faster)."""
    first = rows[0]
    lines = [f"LeNet-5 predict vs ONNX Runtime, {first['images']:,} images, {first['threads']} thread(s), "
             f"best of {repeats}",
             f"{'batch':>6} {'fastconv img/s':>15} {'ORT img/s':>12} {'fastconv/ORT':>13}"]
    for row in rows:
        lines.append(f"{row['batch_size']:>6} {row['fastconv_images_per_second']:>15,.0f} "
                     f"{row['ort_images_per_second']:>12,.0f} {row['ratio']:>13.2f}")
    return lines
