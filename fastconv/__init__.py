"""fastconv: fast CPU convolutional networks for Python.

Stateless kernels (C, OpenMP) in the top-level namespace (reference: docs/api.md):
    conv2d, conv2d_backward, conv2d_plan, max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward,
    set_num_threads, get_num_threads, build_info
A NumPy oracle of the same kernels in `fastconv.reference`; a Keras-like training API in
`fastconv.layers`, `fastconv.Sequential`, `fastconv.optim`, `fastconv.losses`, `fastconv.models`,
`fastconv.datasets`; Keras's Sequential API on top of them in `fastconv.keras`.
"""
__version__ = "0.1.0"


def _check_extension_is_built():
    # From an uninstalled source tree the next import would fail with a misleading "circular import".
    import importlib.machinery
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    if not any(os.path.exists(os.path.join(here, "_kernels" + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES):
        raise ImportError(
            f"fastconv's compiled kernels (fastconv._kernels) are not built in {here}: this is the source "
            f"tree, found first on sys.path (as `python -m pytest` or `python` started in the repository "
            f"root do). Install the package with `pip install .` and run from another directory (plain "
            f"`pytest` from the repository root also works), or build it in place with `pip install -e .`.")


_check_extension_is_built()
del _check_extension_is_built

from .functional import (  # noqa: E402
    avg_pool2d,
    avg_pool2d_backward,
    build_info,
    conv2d,
    conv2d_backward,
    conv2d_plan,
    gemm,
    get_adaptive_threads,
    get_num_threads,
    max_pool2d,
    max_pool2d_backward,
    set_adaptive_threads,
    set_num_threads,
)
from . import functional, reference  # noqa: E402

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_plan", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "set_num_threads", "get_num_threads", "set_adaptive_threads", "get_adaptive_threads",
    "build_info", "gemm", "functional", "reference", "layers", "optim", "losses", "models", "datasets", "analysis",
    "viz", "callbacks", "checkpoint", "keras", "onnx", "Sequential", "TrainingDivergedError",
]


def __getattr__(name):
    # The training API is imported on first use, so `import fastconv` for the kernels stays light.
    import importlib

    if name in ("layers", "optim", "losses", "models", "datasets", "viz", "analysis", "compare", "callbacks",
                "checkpoint", "keras", "onnx"):
        return importlib.import_module(f".{name}", __name__)
    if name == "Sequential":
        from .model import Sequential

        return Sequential
    if name == "TrainingDivergedError":
        from .model import TrainingDivergedError

        return TrainingDivergedError
    raise AttributeError(f"module 'fastconv' has no attribute {name!r}")
