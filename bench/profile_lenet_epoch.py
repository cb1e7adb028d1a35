"""Where one LeNet-5 training epoch spends its time: cProfile of Sequential.fit, by function.

    python bench/profile_lenet_epoch.py [--images 2560] [--threads N] [--top 12]

Trains on the bundled MNIST sample (batch 64, SGD 0.05 / momentum 0.9) after a warm-up, prints the
epoch's wall time, then the functions with the most time of their own. This is how the OpenBLAS
thread contention behind Dense's default gemm="fastconv" was found (see fastconv.layers.Dense).
"""
import argparse
import cProfile
import pstats
import time

import fastconv
from fastconv import datasets, models, optim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    if args.threads:
        fastconv.set_num_threads(args.threads)
    (x_train, y_train), _ = datasets.load_mnist_sample()
    x, y = x_train[:args.images], y_train[:args.images]
    model, optimizer = models.lenet5(seed=0), optim.SGD(lr=0.05, momentum=0.9)
    fit = lambda: model.fit(x, y, epochs=1, batch_size=64, optimizer=optimizer, verbose=0)  # noqa: E731
    fit()  # warm-up: first-call costs, thread team start
    start = time.perf_counter()
    fit()
    print(f"one epoch of {len(y)} images: {time.perf_counter() - start:.3f} s "
          f"({fastconv.get_num_threads()} thread(s))")
    profile = cProfile.Profile()
    profile.runcall(fit)
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
