"""`fastconv train`: train a model (LeNet-5 by default) on MNIST and report test accuracy and speed.

Data: --data-dir DIR reads the four IDX files from DIR; otherwise the full MNIST from the cache or
the mirrors (fastconv.datasets.load_mnist), and if that fails, the sample bundled with the package,
announced in one line. --out DIR saves model.npz and history.json; --json PATH writes the run's
figures (test_accuracy, epochs, train_seconds, images_per_second, ...); --plots DIR draws the run's
pictures (fastconv.viz.write_all: curves, filters, feature maps, activation maximisation, confusion).
"""
import os
import sys

from . import datasets, functional, models, optim
from ._io import write_json

__all__ = ["run_train", "load_training_data", "make_optimizer"]

# Learning rate per optimizer when the command line gives none (args.lr None).
DEFAULT_LR = {"sgd": 0.05, "adam": 0.001, "rmsprop": 0.001}


def load_training_data(data_dir=None, say=print):
    """((x_train, y_train), (x_test, y_test), description of the source)."""
    if data_dir is not None:
        return (*datasets.load_mnist(data_dir=data_dir), f"MNIST IDX files in {data_dir}")
    try:
        return (*datasets.load_mnist(download=True), "full MNIST")
    except (OSError, ValueError) as exc:
        train, test = datasets.load_mnist_sample()
        reason = " ".join(str(exc).split())
        if len(reason) > 160:
            reason = reason[:157] + "..."
        say(f"could not get full MNIST ({reason}); falling back to the bundled sample "
            f"({len(train[1]):,} train / {len(test[1]):,} test images)")
        return train, test, "bundled MNIST sample"


def make_optimizer(name, lr=None, momentum=0.9):
    """The optimizer the command line names, with its learning rate (default per optimizer)."""
    name = name.lower()
    lr = DEFAULT_LR.get(name, 0.05) if lr is None else lr
    if name == "sgd":
        return optim.SGD(lr=lr, momentum=momentum)
    if name == "rmsprop":
        return optim.RMSprop(lr=lr, momentum=momentum)
    return optim.get(name, lr=lr)


def _train(args, say, strategy=None):
    """Load data, build, fit, evaluate: (the run's figures as a dict, the model, the test data).
    strategy: a fastconv.distributed.MPIStrategy for --distributed (each rank runs this function)."""
    if getattr(args, "plots", None):
        from . import viz

        viz.require_matplotlib()  # fail before training, not after it
    (x_train, y_train), (x_test, y_test), source = load_training_data(args.data_dir, say)
    model = models.get(args.model, seed=args.seed)
    optimizer = make_optimizer(args.optimizer, args.lr, args.momentum)
    verbose = args.verbose if strategy is None or strategy.is_chief else 0
    if verbose:
        if not functional.build_info()["openmp"]:
            say("note: " + functional.SERIAL_BUILD_MESSAGE)
        say(f"training {args.model} ({model.count_params():,} parameters) on {source}: {len(y_train):,} train / "
            f"{len(y_test):,} test images, {args.epochs} epochs, batch {args.batch_size}, {optimizer}, "
            f"{args.schedule} lr schedule, "
            f"{functional.get_num_threads()} thread(s)"
            + (f" on each of {strategy.size} MPI ranks ({strategy.placement()})" if strategy is not None else ""))
    initial_lr = optimizer.lr  # the schedule changes optimizer.lr epoch by epoch
    schedule = optim.cosine_decay(initial_lr, args.epochs) if args.schedule == "cosine" else None
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer,
                        validation_data=(x_test, y_test), seed=args.seed, verbose=verbose, lr_schedule=schedule,
                        distribute=strategy)
    test_loss, test_accuracy = model.evaluate(x_test, y_test)
    train_seconds = float(sum(history["seconds"]))
    figures = {
        "model": args.model, "parameters": model.count_params(), "data": source,
        "train_images": int(len(y_train)), "test_images": int(len(y_test)),
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
        "lr": initial_lr, "schedule": args.schedule,
        "momentum": getattr(optimizer, "momentum", None), "seed": args.seed,
        "threads": functional.get_num_threads(), "simd": functional.build_info()["simd"],
        "test_accuracy": test_accuracy, "test_loss": test_loss,
        "train_seconds": train_seconds,
        "images_per_second": len(y_train) * args.epochs / train_seconds if train_seconds > 0 else None,
        "history": history,
        "world_size": 1 if strategy is None else strategy.size,
    }
    if strategy is not None:
        figures["allreduce_seconds_per_step"] = strategy.allreduce_seconds / max(strategy.steps, 1)
    return figures, model, (x_test, y_test)


def _write_plots(model, history, test_data, directory, say, verbose):
    from . import viz

    paths = viz.write_all(model, history, test_data, directory)
    if verbose:
        say(f"wrote {len(paths)} pictures to {directory}: {', '.join(os.path.basename(p) for p in paths)}")


def _strategy(args):
    """The MPI strategy of `--distributed` (threads: --threads, else OMP_NUM_THREADS, else cores per rank)."""
    if not getattr(args, "distributed", False):
        return None
    from .distributed import MPIStrategy

    return MPIStrategy(threads=getattr(args, "threads", None))


def _silent(*args, **kwargs):
    pass


def run_train(args):
    """Entry point of `fastconv train` (args: the argparse Namespace of fastconv.cli); returns the exit code."""
    say = print
    try:
        strategy = _strategy(args)
        if strategy is not None and not strategy.is_chief:
            say = _silent  # only rank 0 prints and writes files
        figures, model, test_data = _train(args, say, strategy)
    except (ValueError, OSError, ImportError) as exc:
        # bad --model / --data-dir / IDX files, or --plots without matplotlib: one clear line, exit 1
        print(f"fastconv train: error: {exc}", file=sys.stderr)
        return 1
    if strategy is not None and not strategy.is_chief:
        return 0
    say(f"test accuracy {100 * figures['test_accuracy']:.2f}% ({figures['test_images']:,} images) - "
        f"training {figures['train_seconds']:.1f} s, {figures['images_per_second']:,.0f} images/s "
        f"({figures['threads']} thread(s))")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        model.save(os.path.join(args.out, "model.npz"))
        write_json(os.path.join(args.out, "history.json"), figures["history"])
        if args.verbose:
            say(f"saved {os.path.join(args.out, 'model.npz')} and history.json")
    if args.json:
        write_json(args.json, figures)
    if getattr(args, "plots", None):
        _write_plots(model, figures["history"], test_data, args.plots, say, args.verbose)
    return 0
