"""PyTorch baseline of `fastconv train`: the same model, data and recipe in a plain PyTorch training loop.

Models as in fastconv.models (PyTorch's default initialisation, logits out, softmax in the loss):
lenet5, keras_cnn, keras_cnn_30_60, deep_cnn, dense_net. Recipe as `fastconv train`: SGD (momentum
0.9 unless --momentum), Adam or RMSprop (momentum 0) at each one's default lr unless --lr, cosine
decay of the lr per epoch from lr to 0 (or constant), shuffled mini-batches. The data is read with
fastconv.datasets (the same float32 images in [0, 1]).

    python bench/torch_mnist.py --data-dir path/to/mnist --model lenet5 --epochs 10 --threads 2 --json t.json

Prints one line per epoch (training seconds, images/s, test accuracy) and writes the figures to --json,
including seconds_to_99: the training time (evaluation excluded, as fastconv's history "seconds")
until the test accuracy first reaches 99.0% at an epoch end. --stop-at ACC ends the run there.
PyTorch is a baseline for measurements only, never a dependency of fastconv.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn

from fastconv import datasets

DEFAULT_LR = {"sgd": 0.05, "adam": 0.001, "rmsprop": 0.001}
DEFAULT_MOMENTUM = {"sgd": 0.9, "rmsprop": 0.0}


def build(name):
    relu = nn.ReLU
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), relu(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), relu(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), relu(), nn.Linear(120, 84), relu(),
                             nn.Linear(84, 10))
    if name == "keras_cnn":
        return nn.Sequential(nn.Conv2d(1, 25, 3), relu(), nn.MaxPool2d(2), nn.Conv2d(25, 50, 3), relu(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1250, 100), relu(), nn.Linear(100, 10))
    if name == "keras_cnn_30_60":
        # Keras's 2x2 stride-2 max pool with padding "same" is ceil_mode (26 -> 13 -> 7 here)
        return nn.Sequential(nn.Conv2d(1, 30, 3), relu(), nn.MaxPool2d(2, ceil_mode=True),
                             nn.Conv2d(30, 60, 3, padding=1), relu(), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
                             nn.Linear(2940, 500), relu(), nn.Linear(500, 10))
    if name == "deep_cnn":
        return nn.Sequential(nn.Conv2d(1, 16, 3), relu(), nn.Conv2d(16, 32, 3), relu(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), relu(), nn.Conv2d(64, 128, 3), relu(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(2048, 1024), relu(), nn.Linear(1024, 128), relu(),
                             nn.Linear(128, 10))
    if name == "dense_net":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 500), relu(), nn.Linear(500, 500), relu(),
                             nn.Linear(500, 500), relu(), nn.Linear(500, 10))
    raise SystemExit(f"unknown model {name!r}")


def make_optimizer(name, params, lr, momentum):
    lr = DEFAULT_LR[name] if lr is None else lr
    momentum = DEFAULT_MOMENTUM.get(name, 0.0) if momentum is None else momentum
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr)


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for begin in range(0, len(y), batch):
            correct += int((model(x[begin:begin + batch]).argmax(1) == y[begin:begin + batch]).sum())
    model.train()
    return correct / len(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stop-at", type=float, default=None, help="stop once the test accuracy reaches this")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir=args.data_dir)
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    model = build(args.model)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.momentum)
    initial_lr = optimizer.param_groups[0]["lr"]
    loss_fn = nn.CrossEntropyLoss()
    history = {"seconds": [], "val_accuracy": [], "lr": []}
    seconds_to_99 = None
    for epoch in range(args.epochs):
        lr = initial_lr * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs)) if args.schedule == "cosine" else initial_lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = torch.randperm(len(y_train))
        start = time.perf_counter()
        for begin in range(0, len(y_train), args.batch_size):
            index = order[begin:begin + args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        test_accuracy = accuracy(model, x_test, y_test)
        for key, value in (("seconds", seconds), ("val_accuracy", test_accuracy), ("lr", lr)):
            history[key].append(value)
        if seconds_to_99 is None and test_accuracy >= 0.99:
            seconds_to_99 = sum(history["seconds"])
        print(f"epoch {epoch + 1}/{args.epochs}: {seconds:.1f} s, {len(y_train) / seconds:,.0f} images/s, "
              f"test accuracy {100 * test_accuracy:.2f}%", flush=True)
        if args.stop_at is not None and test_accuracy >= args.stop_at:
            break
    figures = {"framework": f"torch {torch.__version__}", "model": args.model,
               "parameters": sum(p.numel() for p in model.parameters()), "epochs": args.epochs,
               "epochs_run": len(history["seconds"]), "batch_size": args.batch_size, "optimizer": args.optimizer,
               "lr": initial_lr, "schedule": args.schedule, "threads": args.threads, "seed": args.seed,
               "test_accuracy": history["val_accuracy"][-1], "train_seconds": sum(history["seconds"]),
               "images_per_second": len(y_train) * len(history["seconds"]) / sum(history["seconds"]),
               "seconds_to_99": seconds_to_99, "history": history}
    print(f"test accuracy {100 * figures['test_accuracy']:.2f}% - training {figures['train_seconds']:.1f} s, "
          f"{figures['images_per_second']:,.0f} images/s ({args.threads} thread(s)); time to 99%: "
          f"{'not reached' if seconds_to_99 is None else f'{seconds_to_99:.1f} s'}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
