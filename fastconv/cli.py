"""The `fastconv` command line (also `python -m fastconv`): train, bench, compare, export, info.

This module only parses arguments; each command's work lives beside the code it drives
(training.run_train, benchmarks.command.run_bench, compare.run_compare).
"""
import argparse
import json
import sys


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a CNN on MNIST (LeNet-5 by default)",
                              description="Train a model on MNIST: the full set when cached or downloadable, "
                                          "else the sample bundled with the package; --data-dir reads IDX files.")
    # The recipe flags default to None so that --resume can tell them apart (training.RECIPE_DEFAULTS fills them).
    p.add_argument("--model", default=None, help="model name from fastconv.models (default: lenet5)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="passes over the training set (default 10)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the optimizer's own, sgd 0.05, adam 0.001, rmsprop 0.001)")
    p.add_argument("--momentum", type=float, default=None,
                   help="momentum of sgd (default 0.9) and rmsprop (default 0)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "rmsprop"), default=None, help="default sgd")
    p.add_argument("--schedule", choices=("cosine", "constant"), default=None,
                   help="learning rate over the epochs: cosine decay from --lr to 0 (default), or constant")
    p.add_argument("--seed", type=int, default=None, help="weight initialisation and shuffling seed (default 0)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run checkpointed in DIR (its checkpoint.npz) with its own recipe")
    p.add_argument("--data-dir", default=None, help="directory with the four MNIST IDX files (gz or not)")
    p.add_argument("--out", default=None,
                   help="directory for checkpoints at every epoch (checkpoint.npz, model.npz, best.npz) and history.json")
    p.add_argument("--json", default=None, help="write the run's figures (accuracy, time, images/s) here")
    p.add_argument("--plots", default=None, help="directory for PNG pictures of the run (needs matplotlib)")
    p.add_argument("--threads", type=_positive_int, default=None, help="OpenMP threads (default: all cores)")
    p.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress (default)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI, launched as `mpiexec -n N fastconv train --distributed ...` "
                        "(needs fastconv[mpi]); --batch-size is the global batch; rank 0 prints and writes files")


def _add_bench(subparsers):
    p = subparsers.add_parser("bench", help="time every kernel against the NumPy reference (and PyTorch)",
                              description="Time every kernel and LeNet-5 training against the NumPy reference, "
                                          "numpy.matmul and (when importable) PyTorch, and print a table; "
                                          "docs/performance.md explains the columns and the timing.")
    p.add_argument("--quick", action="store_true", help="fewer repeats, finishes in under a minute")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--threads", type=_positive_int, default=None, help="OpenMP threads (default: all cores)")
    p.add_argument("--plot", default=None, help="draw the table as a bar chart PNG (needs matplotlib)")
    p.add_argument("--pairs", type=_positive_int, default=1, metavar="N",
                   help="time fastconv and PyTorch (numpy.matmul for gemm) in N alternating blocks per case; "
                        "each ratio is the median of the N per-pair ratios, with its min-max (default 1)")
    p.add_argument("--contention", action="store_true",
                   help="only LeNet-5 fit images/s idle vs beside one busy process it starts (and PyTorch's idle rate)")
    p.add_argument("--onnx", action="store_true",
                   help="only LeNet-5 predict on 10,000 images vs ONNX Runtime running the exported model, "
                        "at batch 256 and 1024 (needs onnxruntime)")
    p.add_argument("--markdown", default=None, metavar="PATH",
                   help="write the run into this Markdown page (e.g. docs/performance.md), between its markers")


def _add_compare(subparsers):
    p = subparsers.add_parser("compare", help="train a dense network and a CNN on the same data, side by side",
                              description="Train fastconv.models.dense_net and keras_cnn on the same MNIST data "
                                          "and print their accuracy, time and parameter counts side by side.")
    p.add_argument("--epochs", type=_positive_int, default=10, help="passes over the training set (default 10)")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation and shuffling seed (default 0)")
    p.add_argument("--data-dir", default=None, help="directory with the four MNIST IDX files (default: as train)")
    p.add_argument("--threads", type=_positive_int, default=None, help="OpenMP threads (default: all cores)")
    p.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress (default)")


def _add_export(subparsers):
    p = subparsers.add_parser("export", help="write a saved model (.npz) as ONNX (needs fastconv[onnx])",
                              description="Convert a checkpoint written by Sequential.save to an ONNX model "
                                          "(opset 17, float32, output: class probabilities).")
    p.add_argument("model", help="the checkpoint (.npz) to convert")
    p.add_argument("out", help="the ONNX file to write")


def _run_export(args):
    from . import onnx
    from .model import Sequential

    try:
        onnx.export(Sequential.load(args.model), args.out)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        # a missing or damaged checkpoint, a layer ONNX cannot express, no onnx package: one line, exit 1
        print(f"fastconv export: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (ONNX opset {onnx.OPSET}, IR version {onnx.IR_VERSION})")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="fastconv", description="Fast CPU CNN kernels and training.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    _add_bench(subparsers)
    _add_compare(subparsers)
    _add_export(subparsers)
    subparsers.add_parser("info", help="print build information (version, OpenMP, SIMD, compiler)")
    return parser


def _run_info(args):
    from .functional import build_info

    print(json.dumps(build_info(), indent=2))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        from .functional import set_num_threads

        set_num_threads(args.threads)
    if args.command == "train":
        from .training import run_train

        if args.distributed:
            from .distributed import run_or_abort  # a failing rank ends the whole MPI job, never a hang

            try:
                return run_or_abort(run_train, args)
            except ImportError as exc:  # no mpi4py: run_or_abort raises before running anything
                print(f"fastconv train: error: {exc}", file=sys.stderr)
                return 1
        return run_train(args)
    if args.command == "bench":
        from .benchmarks.command import run_bench

        return run_bench(args)
    if args.command == "compare":
        from .compare import run_compare

        return run_compare(args)
    if args.command == "export":
        return _run_export(args)
    return _run_info(args)


if __name__ == "__main__":
    sys.exit(main())
