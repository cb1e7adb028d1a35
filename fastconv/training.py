"""`fastconv train`: train a model (LeNet-5 by default) on MNIST and report test accuracy and speed.

Data: --data-dir DIR reads the four IDX files from DIR; otherwise the full MNIST from the cache or
the mirrors (fastconv.datasets.load_mnist), and if that fails, the sample bundled with the package,
announced in one line. --json PATH writes the run's figures (test_accuracy, epochs, train_seconds,
images_per_second, ...); --plots DIR draws the run's pictures (fastconv.viz.write_all).

Training never loses work (fastconv.checkpoint): --out DIR checkpoints at the start and at the end of
every epoch (checkpoint.npz to resume from, model.npz the last model, best.npz the best by test
accuracy) and writes history.json; Ctrl-C stops after the current step and saves checkpoint.npz
(in --out, else in ./fastconv-interrupted), a second Ctrl-C aborts at once; `--resume DIR` continues
a run with its own recipe, to the same weights as a run never stopped. A loss that turns NaN/inf stops
the run at once (exit 1) and leaves the last good checkpoint; so does a loss above EXPLODED_LOSS.
"""
import os
import signal
import sys
import threading

from . import checkpoint, datasets, functional, models, optim
from ._io import write_json
from .callbacks import Callback
from .model import TrainingDivergedError

__all__ = ["run_train", "load_training_data", "make_optimizer", "DEFAULT_LR", "DEFAULT_MOMENTUM", "RECIPE_DEFAULTS"]

# Learning rate per optimizer when the command line gives none (as Keras: SGD's is the package's LeNet-5 recipe).
DEFAULT_LR = {"sgd": 0.05, "adam": 0.001, "rmsprop": 0.001}
# Momentum per optimizer when --momentum is not given (RMSprop's is 0 in Keras and PyTorch).
DEFAULT_MOMENTUM = {"sgd": 0.9, "rmsprop": 0.0}
# The training recipe: what --resume takes from the checkpoint instead of the command line.
RECIPE_DEFAULTS = {"model": "lenet5", "epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": None,
                   "momentum": None, "schedule": "cosine", "seed": 0}
INTERRUPT_DIR = "fastconv-interrupted"
# A batch loss above this stops `fastconv train` as diverged even while finite: the softmax cross-entropy
# of a uniform guess over 10 classes is 2.3, so 10^4 means logits 10^4 apart (--lr 50 reaches 10^8).
EXPLODED_LOSS = 1e4
EXIT_INTERRUPTED = 130  # what a shell reports for a command stopped by SIGINT


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


def make_optimizer(name, lr=None, momentum=None):
    """The optimizer the command line names, with its learning rate and momentum (defaults per optimizer)."""
    name = name.lower()
    lr = DEFAULT_LR.get(name, 0.05) if lr is None else lr
    momentum = DEFAULT_MOMENTUM.get(name, 0.0) if momentum is None else momentum
    if name == "sgd":
        return optim.SGD(lr=lr, momentum=momentum)
    if name == "rmsprop":
        return optim.RMSprop(lr=lr, momentum=momentum)
    return optim.get(name, lr=lr)


def _recipe(args, resumed):
    """The run's recipe: the command line's (defaults filled in), or with --resume the checkpoint's."""
    if resumed is None:
        recipe = {key: getattr(args, key, None) for key in RECIPE_DEFAULTS}
        recipe.update({key: default for key, default in RECIPE_DEFAULTS.items() if recipe[key] is None})
        recipe["data_dir"] = os.path.abspath(args.data_dir) if args.data_dir else None
        return recipe
    given = [key for key in RECIPE_DEFAULTS if getattr(args, key, None) is not None]
    if given:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise ValueError(f"--resume continues the saved run with its own recipe; drop {flags}")
    recipe = (resumed.state.get("extra") or {}).get("recipe")
    if recipe is None:
        raise ValueError(f"{args.resume} was not written by `fastconv train` (no recipe in it); continue it in "
                         f"Python with fastconv.checkpoint.resume")
    recipe = dict(recipe)
    if args.data_dir:
        recipe["data_dir"] = os.path.abspath(args.data_dir)
    return recipe


class _SigintStop(Callback):
    """Ctrl-C during fit: the first stops training after the current step (model.stop_training), the
    second raises KeyboardInterrupt at once. A context manager: the handler is installed inside `with`
    (unless enabled is False: then Ctrl-C keeps Python's default, KeyboardInterrupt)."""

    def __init__(self, say, enabled=True):
        super().__init__()
        self.say = say
        self.enabled = enabled
        self.requested = False
        self._previous = None

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():  # handlers live there
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.say("\nCtrl-C: stopping after the current step to save a checkpoint (Ctrl-C again aborts at once)")

    def _check(self, *args):
        if self.requested:
            self.model.stop_training = True

    on_train_begin = on_train_batch_end = on_epoch_end = _check


class _StopOnExplodingLoss(Callback):
    """Raises TrainingDivergedError when a batch's loss exceeds EXPLODED_LOSS (fit itself stops at NaN/inf)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if logs["loss"] > EXPLODED_LOSS:
            raise TrainingDivergedError(self.epoch, batch, logs["loss"], self.params["epochs"], self.params["steps"],
                                        reason=f"the loss is {logs['loss']:.3g} (over {EXPLODED_LOSS:g})")


def _header(recipe, model, optimizer, source, train_count, test_count, resumed, strategy=None):
    momentum = getattr(optimizer, "momentum", None)
    line = (f"training {recipe['model']} ({model.count_params():,} parameters) on {source}: {train_count:,} train / "
            f"{test_count:,} test images, {recipe['epochs']} epochs, batch {recipe['batch_size']}, "
            f"{recipe['optimizer']} lr {_initial_lr(recipe, optimizer):g}"
            f"{'' if recipe['lr'] is not None else ' (its default)'}"
            f"{'' if momentum is None else f' momentum {momentum:g}'}, {recipe['schedule']} lr schedule, "
            f"{functional.get_num_threads()} thread(s)")
    if strategy is not None:
        line += f" on each of {strategy.size} MPI ranks ({strategy.placement()})"
    if resumed is not None:
        line += f"; resuming {_describe_position(resumed.epoch, resumed.step)}"
    return line


def _initial_lr(recipe, optimizer):
    return recipe["lr_used"] if "lr_used" in recipe else optimizer.lr


def _build(recipe, resumed, train_count):
    """(model, optimizer, lr_schedule) of a new run, or of the resumed one."""
    if resumed is not None:
        if resumed.state["samples"] != train_count:
            raise ValueError(f"the checkpointed run trained on {resumed.state['samples']:,} images, the data has "
                             f"{train_count:,}: give the run's --data-dir")
        return resumed.model, resumed.optimizer, resumed.lr_schedule()
    model = models.get(recipe["model"], seed=recipe["seed"])
    optimizer = make_optimizer(recipe["optimizer"], recipe["lr"], recipe["momentum"])
    recipe["lr_used"] = optimizer.lr  # the schedule changes optimizer.lr epoch by epoch
    schedule = optim.cosine_decay(optimizer.lr, recipe["epochs"]) if recipe["schedule"] == "cosine" else None
    return model, optimizer, schedule


def _train(args, say, strategy=None):
    """Load data, build (or resume), fit, evaluate: (the run's figures, the model, the test data, the saver).
    strategy: a fastconv.distributed.MPIStrategy for --distributed (each rank runs this function; only
    rank 0 prints and checkpoints, and Ctrl-C ends the whole job, as mpiexec forwards it to every rank)."""
    if getattr(args, "plots", None):
        from . import viz

        viz.require_matplotlib()  # fail before training, not after it
    resumed = checkpoint.load(args.resume) if getattr(args, "resume", None) else None
    recipe = _recipe(args, resumed)
    (x_train, y_train), (x_test, y_test), source = load_training_data(recipe["data_dir"], say)
    model, optimizer, schedule = _build(recipe, resumed, len(y_train))
    chief = strategy is None or strategy.is_chief
    verbose = args.verbose if chief else 0
    if verbose and not functional.build_info()["openmp"]:
        say("note: " + functional.SERIAL_BUILD_MESSAGE)
    out = args.out or (_resume_dir(args.resume) if resumed is not None else None)
    saver = checkpoint.TrainingCheckpoint(out or INTERRUPT_DIR, every_epoch=bool(out), extra={"recipe": recipe},
                                          resume_from=resumed) if chief else None
    start = (resumed.epoch, resumed.step) if resumed is not None else (0, 0)
    sigint = _SigintStop(lambda text: print(text, file=sys.stderr, flush=True), enabled=strategy is None)
    with sigint:
        if verbose:  # once the header is out, Ctrl-C saves a checkpoint
            say(_header(recipe, model, optimizer, source, len(y_train), len(y_test), resumed, strategy), flush=True)
        callbacks = [saver, sigint] if chief else []
        fit_history = model.fit(x_train, y_train, epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                                optimizer=optimizer, validation_data=(x_test, y_test), seed=recipe["seed"],
                                verbose=verbose, lr_schedule=schedule,
                                callbacks=callbacks + [_StopOnExplodingLoss()], initial_epoch=start[0],
                                initial_step=start[1], distribute=strategy)
    history = saver.history if saver is not None else fit_history
    test_loss, test_accuracy = model.evaluate(x_test, y_test, distribute=strategy)
    train_seconds = float(sum(history.get("seconds", ())))
    trained_images = len(y_train) * len(history.get("seconds", ()))
    figures = {
        "model": recipe["model"], "parameters": model.count_params(), "data": source,
        "train_images": int(len(y_train)), "test_images": int(len(y_test)),
        "epochs": recipe["epochs"], "batch_size": recipe["batch_size"], "optimizer": recipe["optimizer"],
        "lr": _initial_lr(recipe, optimizer), "schedule": recipe["schedule"],
        "momentum": getattr(optimizer, "momentum", None), "seed": recipe["seed"],
        "threads": functional.get_num_threads(), "simd": functional.build_info()["simd"],
        "test_accuracy": test_accuracy, "test_loss": test_loss,
        "train_seconds": train_seconds,
        "images_per_second": trained_images / train_seconds if train_seconds > 0 else None,
        "interrupted": sigint.requested, "history": history,
        "world_size": 1 if strategy is None else strategy.size,
    }
    if strategy is not None:
        figures["allreduce_seconds_per_step"] = strategy.allreduce_seconds / max(strategy.steps, 1)
    return figures, model, (x_test, y_test), saver


def _resume_dir(path):
    return path if os.path.isdir(path) else os.path.dirname(path) or "."


def _strategy(args):
    """The MPI strategy of `--distributed` (threads: --threads, else OMP_NUM_THREADS, else cores per rank)."""
    if not getattr(args, "distributed", False):
        return None
    from .distributed import MPIStrategy

    return MPIStrategy(threads=getattr(args, "threads", None))


def _silent(*args, **kwargs):
    pass


def _write_plots(model, history, test_data, directory, say, verbose):
    from . import viz

    paths = viz.write_all(model, history, test_data, directory)
    if verbose:
        say(f"wrote {len(paths)} pictures to {directory}: {', '.join(os.path.basename(p) for p in paths)}")


def run_train(args):
    """Entry point of `fastconv train` (args: the argparse Namespace of fastconv.cli); returns the exit code:
    0 done, 1 bad input or a diverged run, 130 interrupted (Ctrl-C; a checkpoint to resume from is saved)."""
    say = print
    try:
        strategy = _strategy(args)
        if strategy is not None and not strategy.is_chief:
            say = _silent  # only rank 0 prints and writes files
        figures, model, test_data, saver = _train(args, say, strategy)
    except TrainingDivergedError as exc:
        print(f"fastconv train: error: {exc}", file=sys.stderr)
        print(_last_checkpoint_note(args), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fastconv train: aborted. {_last_checkpoint_note(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, ImportError) as exc:
        # bad --model / --data-dir / --resume / IDX files, or --plots without matplotlib: one clear line, exit 1
        print(f"fastconv train: error: {exc}", file=sys.stderr)
        return 1
    if strategy is not None and not strategy.is_chief:
        return 0
    if figures["interrupted"]:
        say(f"interrupted: saved the run {_describe_position(*saver.saved_position)} to {saver.path}; "
            f"continue it with: fastconv train --resume {saver.directory}")
        return EXIT_INTERRUPTED
    say(f"test accuracy {100 * figures['test_accuracy']:.2f}% ({figures['test_images']:,} images) - "
        f"training {figures['train_seconds']:.1f} s, {figures['images_per_second'] or 0:,.0f} images/s "
        f"({figures['threads']} thread(s))")
    if saver.every_epoch:
        write_json(os.path.join(saver.directory, "history.json"), figures["history"])
        if args.verbose:
            say(f"saved {saver.directory}: model.npz, best.npz, checkpoint.npz and history.json")
    if args.json:
        write_json(args.json, figures)
    if getattr(args, "plots", None):
        _write_plots(model, figures["history"], test_data, args.plots, say, args.verbose)
    return 0


def _last_checkpoint_note(args):
    directory = args.out or (getattr(args, "resume", None) and _resume_dir(args.resume))
    path = directory and os.path.join(directory, checkpoint.CHECKPOINT_FILE)
    if not path or not os.path.exists(path):
        return "no checkpoint was saved (give --out DIR to checkpoint every epoch)"
    state = checkpoint.load(path).state
    return (f"the last good checkpoint ({path}, {_describe_position(state['epoch'], state['step'])}) and its "
            f"model ({os.path.join(directory, checkpoint.MODEL_FILE)}) are kept")


def _describe_position(epoch, step):
    """Where a run stands, in words: (epoch index, batches done in it)."""
    if step:
        return f"after step {step} of epoch {epoch + 1}"
    return f"after epoch {epoch}" if epoch else "before the first step"
