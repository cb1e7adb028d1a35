"""Test accuracy of LeNet-5 after `fastconv train`'s recipe, cosine decay vs constant lr, for a few seeds.

    python bench/lr_schedule_seeds.py DATA_DIR [--epochs 15] [--seeds 0 1 2]

DATA_DIR holds the four MNIST IDX files (e.g. a 5,000-image training subset and the official test set). The measurement behind the
default `--schedule cosine` of `fastconv train` (see fastconv.optim.cosine_decay).
"""
import argparse
import time

from fastconv import datasets, models, optim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir=args.data_dir)
    print("schedule  seed  test accuracy  seconds")
    for schedule_name in ("cosine", "constant"):
        for seed in args.seeds:
            model = models.lenet5(seed=seed)
            schedule = optim.cosine_decay(args.lr, args.epochs) if schedule_name == "cosine" else None
            start = time.perf_counter()
            model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, seed=seed, verbose=0,
                      optimizer=optim.SGD(lr=args.lr, momentum=0.9), lr_schedule=schedule)
            _, accuracy = model.evaluate(x_test, y_test)
            print(f"{schedule_name:9s} {seed:4d}  {100 * accuracy:12.2f}%  {time.perf_counter() - start:7.1f}")


if __name__ == "__main__":
    main()
