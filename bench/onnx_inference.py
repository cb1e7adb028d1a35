"""LeNet-5 inference: fastconv's model.predict against ONNX Runtime running the same model, exported.

    python bench/onnx_inference.py [--batch-sizes 256 1024] [--images 10000] [--threads 2] [--rounds 6]
                                   [--runs 3] [--adaptive] [--per-layer]

The measurement is fastconv.benchmarks.inference's (also `fastconv bench --onnx`): each side in fresh
processes of its own, alternating; this script adds the per-step CPU time of fastconv's side (one
thread, process time; a fused convolution chain is one step). Prints the time ratio fastconv / ONNX
Runtime (below 1.0: fastconv is faster). Needs onnx and onnxruntime.
"""
import argparse

import numpy as np

from fastconv import functional, models
from fastconv.benchmarks.inference import format_rows, measure_predict_vs_ort, per_layer_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6, help="process pairs per batch size, ABBA order")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per process, after a warm-up")
    parser.add_argument("--adaptive", action="store_true",
                        help="fastconv with adaptive threads on (its default): fewer threads beside busy processes")
    parser.add_argument("--per-layer", action="store_true", help="also print fastconv's 1-thread CPU time per step")
    args = parser.parse_args()
    rows = measure_predict_vs_ort(args.batch_sizes, args.images, args.threads, args.rounds, args.runs,
                                  adaptive=args.adaptive)
    print("\n".join(format_rows(rows)))
    if args.per_layer:
        functional.set_num_threads(1)
        model = models.lenet5(seed=0)
        x = np.random.default_rng(0).random((args.images, 1, 28, 28), dtype=np.float32)
        print(f"fastconv CPU time per step, 1 thread (process time, ms per {args.images:,} images, best of 5)")
        for batch_size in args.batch_sizes:
            seconds = per_layer_seconds(model, x, batch_size)
            print(f"  batch {batch_size}: " + ", ".join(f"{name} {1e3 * s:.1f}" for name, s in seconds.items()))


if __name__ == "__main__":
    main()
