"""LeNet-5 inference: fastconv's model.predict against ONNX Runtime running the same model, exported.

    python bench/onnx_inference.py [--batch-sizes 256 1024] [--images 10000] [--threads 2] [--repeats 5]
                                   [--per-layer]

The measurement is fastconv.benchmarks.inference's (also `fastconv bench --onnx`); this script adds the
per-layer CPU time of fastconv's side. Prints the time ratio fastconv / ONNX Runtime (below 1.0:
fastconv is faster). Needs onnx and onnxruntime.
"""
import argparse

import numpy as np

from fastconv import models
from fastconv.benchmarks.inference import format_rows, measure_predict_vs_ort, per_layer_seconds

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-layer", action="store_true", help="also print fastconv's CPU time per layer")
    args = parser.parse_args()
    rows = measure_predict_vs_ort(args.batch_sizes, args.images, args.threads, args.repeats)
    print("\n".join(format_rows(rows, args.repeats)))
    if args.per_layer:
        model = models.lenet5(seed=0)
        x = np.random.default_rng(0).random((args.images, 1, 28, 28), dtype=np.float32)
        print(f"fastconv CPU time per layer (process time, ms per {args.images:,} images)")
        for batch_size in args.batch_sizes:
            seconds = per_layer_seconds(model, x, batch_size, args.repeats)
            print(f"  batch {batch_size}: " + ", ".join(f"{name} {1e3 * s:.1f}" for name, s in seconds.items()))


if __name__ == "__main__":
    main()
