"""fastconv: fast CPU convolutional networks for Python.

Stateless kernels (C, OpenMP) in the top-level namespace, as in API.md:
    conv2d, conv2d_backward, max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward,
    set_num_threads, get_num_threads, build_info
A NumPy oracle of the same kernels in `fastconv.reference`; a Keras-like training API in
`fastconv.layers`, `fastconv.Sequential`, `fastconv.optim`, `fastconv.losses`, `fastconv.models`,
`fastconv.datasets`.
"""
__version__ = "0.1.0"

from .functional import (  # noqa: E402
    avg_pool2d,
    avg_pool2d_backward,
    build_info,
    conv2d,
    conv2d_backward,
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
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "set_num_threads", "get_num_threads", "set_adaptive_threads", "get_adaptive_threads",
    "build_info", "gemm", "functional", "reference", "layers", "optim", "losses", "models", "datasets", "analysis", "viz", "callbacks", "Sequential",
]


def __getattr__(name):
    # The training API is imported on first use, so `import fastconv` for the kernels stays light.
    import importlib

    if name in ("layers", "optim", "losses", "models", "datasets", "viz", "analysis", "compare", "callbacks"):
        return importlib.import_module(f".{name}", __name__)
    if name == "Sequential":
        from .model import Sequential

        return Sequential
    raise AttributeError(f"module 'fastconv' has no attribute {name!r}")
