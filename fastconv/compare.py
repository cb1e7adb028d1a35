"""`fastconv compare`: the seed tutorials' comparison, a dense network against a small CNN.

Both models (models.dense_net, 784-500-500-500-10, and models.keras_cnn) train on the same data with
the same recipe as `fastconv train` (SGD lr 0.05, momentum 0.9, batch 64, cosine decay, the same
seed); the command prints their test accuracies and parameter counts side by side.
"""
import sys

from . import models, optim
from .training import load_training_data, make_optimizer

__all__ = ["run_compare", "compare_models", "MODELS"]

MODELS = ("dense_net", "keras_cnn")
BATCH_SIZE = 64


def _train_one(name, data, epochs, seed, verbose, say):
    """Train model `name` on data; {"model", "parameters", "test_accuracy", "train_seconds"}."""
    (x_train, y_train), (x_test, y_test) = data
    model = models.get(name, seed=seed)
    optimizer = make_optimizer("sgd")
    if verbose:
        say(f"training {name} ({model.count_params():,} parameters), {epochs} epochs")
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=BATCH_SIZE, optimizer=optimizer, seed=seed,
                        verbose=verbose, lr_schedule=optim.cosine_decay(optimizer.lr, epochs))
    _, accuracy = model.evaluate(x_test, y_test)
    return {"model": name, "parameters": model.count_params(), "test_accuracy": accuracy,
            "train_seconds": float(sum(history["seconds"]))}


def compare_models(data, epochs=10, seed=0, names=MODELS, verbose=0, say=print):
    """Train each model of `names` on data ((x_train, y_train), (x_test, y_test)); one result dict each."""
    return [_train_one(name, data, epochs, seed, verbose, say) for name in names]


def format_table(results):
    """The results side by side, one line per model."""
    lines = [f"{'model':<12}{'parameters':>12}{'test accuracy':>16}{'train time':>13}"]
    for r in results:
        lines.append(f"{r['model']:<12}{r['parameters']:>12,}{100 * r['test_accuracy']:>15.2f}%"
                     f"{r['train_seconds']:>12.1f}s")
    return "\n".join(lines)


def run_compare(args):
    """Entry point of `fastconv compare` (args: the argparse Namespace of fastconv.cli); returns the exit code."""
    say = print
    try:
        train, test, source = load_training_data(args.data_dir, say)
    except (ValueError, OSError) as exc:
        print(f"fastconv compare: error: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        say(f"comparing {' and '.join(MODELS)} on {source}: {len(train[1]):,} train / {len(test[1]):,} test images")
    results = compare_models((train, test), args.epochs, args.seed, verbose=args.verbose, say=say)
    say(format_table(results))
    return 0
