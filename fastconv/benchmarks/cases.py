"""The catalogue of measured work: shapes, cases, and which implementations each case has.

A case is a kind of work (e.g. "conv2d-fwd") on a named shape (e.g. "lenet-c1"). The same cases feed
`fastconv bench` (fastconv.benchmarks.command) and the pytest-benchmark suite (bench/); the code that
runs one implementation of a case is in fastconv.benchmarks.impls:

    conv2d-fwd / conv2d-bwd        direct, im2col, auto (fastconv), reference (NumPy), torch
    max_pool2d-* / avg_pool2d-*    fastconv, reference, torch
    gemm                           fastconv (functional.gemm), numpy (numpy.matmul)
    conv2d-threads (fwd + bwd)     1-thread, 2-threads (fastconv, auto)
    lenet5-step / lenet5-epoch     model (models.lenet5().fit; direct / im2col: with that algo), reference
                                   (the same model on the NumPy reference kernels), torch (the plain loop)

Everything runs in float32.
"""
import dataclasses

import numpy as np

DTYPE = np.float32
SEED = 0


# ---- shapes ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ConvShape:
    """A convolution: input (n, c, h, w), k output channels, a square kernel, stride and padding."""
    n: int
    c: int
    h: int
    w: int
    k: int
    kernel: int
    stride: int
    pad: int

    @property
    def out_hw(self):
        size = lambda extent: (extent + 2 * self.pad - self.kernel) // self.stride + 1  # noqa: E731
        return size(self.h), size(self.w)

    @property
    def forward_flops(self):
        """2*N*K*C*R*S*OH*OW: one multiply and one add per term of every output sum."""
        out_h, out_w = self.out_hw
        return 2.0 * self.n * self.k * self.c * self.kernel * self.kernel * out_h * out_w

    @property
    def gemm_shape(self):
        """(M, N, K) of the im2col GEMM for one image: out channels x out pixels x C*R*S."""
        out_h, out_w = self.out_hw
        return (self.k, out_h * out_w, self.c * self.kernel * self.kernel)

    def describe(self):
        return (f"{self.n}x{self.c}x{self.h}x{self.w} * {self.k}x{self.c}x{self.kernel}x{self.kernel}"
                f" s{self.stride} p{self.pad}")


@dataclasses.dataclass(frozen=True)
class PoolShape:
    """A pooling: input (n, c, h, w), a square window and stride, no padding."""
    n: int
    c: int
    h: int
    w: int
    kernel: int
    stride: int

    def describe(self):
        return f"{self.n}x{self.c}x{self.h}x{self.w} k{self.kernel} s{self.stride}"


@dataclasses.dataclass(frozen=True)
class GemmShape:
    """C (m x n) = A (m x k) @ B (k x n)."""
    m: int
    n: int
    k: int

    def describe(self):
        return f"{self.m}x{self.k} @ {self.k}x{self.n}"


@dataclasses.dataclass(frozen=True)
class LeNetRun:
    """LeNet-5 training on `images` 1x28x28 images in batches of `batch` (one epoch)."""
    images: int
    batch: int

    def describe(self):
        return f"{self.images} images, batch {self.batch}"


# The shapes of the issue: (N, C, H, W, K, kernel, stride, pad).
CONV_SHAPES = {
    "lenet-c1": ConvShape(64, 1, 28, 28, 6, 5, 1, 2),
    "lenet-c3": ConvShape(64, 6, 14, 14, 16, 5, 1, 0),
    "seed000-c2": ConvShape(100, 25, 13, 13, 50, 3, 1, 0),
    "seed002-c4": ConvShape(64, 64, 10, 10, 128, 3, 1, 0),
    "vgg-ish": ConvShape(32, 64, 32, 32, 128, 3, 1, 1),
    "strided": ConvShape(32, 32, 31, 31, 64, 3, 2, 1),
}
# Per-call overhead: a convolution so small that the time is all argument handling and dispatch.
TINY_CONV = ConvShape(1, 1, 8, 8, 1, 3, 1, 0)
# LeNet-5's two pooling layers at batch 64 (S2 is the issue's "max pool 2x2 on (64,6,28,28)").
POOL_SHAPES = {
    "lenet-s2": PoolShape(64, 6, 28, 28, 2, 2),
    "lenet-s4": PoolShape(64, 16, 10, 10, 2, 2),
}
GEMM_SQUARE_SIZES = (256, 512, 1024, 2048)
THREAD_COUNTS = (1, 2)
THREADS_SHAPE = "vgg-ish"
LENET_STEP = LeNetRun(64, 64)
LENET_EPOCH = LeNetRun(2560, 64)
PEAK_GEMM_SIZE = 1024

CONV_KINDS = ("conv2d-fwd", "conv2d-bwd")
POOL_KINDS = ("max_pool2d-fwd", "max_pool2d-bwd", "avg_pool2d-fwd", "avg_pool2d-bwd")
LENET_KINDS = ("lenet5-step", "lenet5-epoch")

# Every implementation of each family of kinds (bench/ times them all).
IMPLEMENTATIONS = {
    "conv": ("direct", "im2col", "auto", "reference", "torch"),
    "pool": ("fastconv", "reference", "torch"),
    "gemm": ("fastconv", "numpy"),
    "threads": tuple(f"{n}-thread{'s' if n > 1 else ''}" for n in THREAD_COUNTS),
    "lenet5-step": ("model", "direct", "im2col", "reference", "torch"),
    "lenet5-epoch": ("model", "reference", "torch"),
}
# What `fastconv bench` reports in its fastconv / reference / torch columns, per family.
ROLES = {
    "conv": ("auto", "reference", "torch"),
    "pool": ("fastconv", "reference", "torch"),
    "gemm": ("fastconv", "numpy", None),
    "threads": (IMPLEMENTATIONS["threads"][-1], IMPLEMENTATIONS["threads"][0], None),
    "lenet5-step": ("model", "reference", "torch"),
    "lenet5-epoch": ("model", "reference", "torch"),
}
# Implementations that are a baseline: slow on big shapes, so their repeats are limited.
BASELINES = ("reference", "numpy")


@dataclasses.dataclass(frozen=True)
class Case:
    """One measured piece of work: a kind ("conv2d-fwd", "gemm", ...) on a named shape."""
    kind: str
    shape_name: str
    shape: object

    @property
    def name(self):
        return f"{self.kind} {self.shape_name}"

    @property
    def group(self):
        """pytest-benchmark group: every implementation of a case lines up in one table."""
        return self.name

    @property
    def family(self):
        if self.kind in CONV_KINDS:
            return "conv"
        if self.kind in POOL_KINDS:
            return "pool"
        if self.kind == "conv2d-threads":
            return "threads"
        return self.kind  # "gemm", "lenet5-step", "lenet5-epoch"

    @property
    def implementations(self):
        return IMPLEMENTATIONS[self.family]

    @property
    def roles(self):
        """(fastconv, baseline, torch-or-None) implementation names for the `fastconv bench` table."""
        return ROLES[self.family]

    def flops(self):
        """Floating-point operations of one call, or None where GFLOP/s means little (pooling, LeNet)."""
        if self.kind == "conv2d-fwd":
            return self.shape.forward_flops
        if self.kind == "conv2d-bwd":  # dx and dw each cost one forward; db is negligible
            return 2 * self.shape.forward_flops
        if self.kind == "conv2d-threads":
            return 3 * self.shape.forward_flops
        if self.kind == "gemm":
            return 2.0 * self.shape.m * self.shape.n * self.shape.k
        return None

    def describe(self):
        return self.shape.describe()


def conv_cases():
    """conv2d forward and backward on every shape of the issue, then the tiny per-call-overhead one."""
    shapes = dict(CONV_SHAPES, tiny=TINY_CONV)
    return [Case(kind, name, shape) for name, shape in shapes.items() for kind in CONV_KINDS]


def pool_cases():
    return [Case(kind, name, shape) for kind in POOL_KINDS for name, shape in POOL_SHAPES.items()]


def gemm_cases():
    """Square GEMMs, then the im2col GEMM (per image) of every convolution shape."""
    square = [Case("gemm", f"{n}^3", GemmShape(n, n, n)) for n in GEMM_SQUARE_SIZES]
    im2col = [Case("gemm", f"im2col {name}", GemmShape(*shape.gemm_shape)) for name, shape in CONV_SHAPES.items()]
    return square + im2col


def thread_cases():
    return [Case("conv2d-threads", THREADS_SHAPE, CONV_SHAPES[THREADS_SHAPE])]


def lenet_cases():
    return [Case("lenet5-step", "batch64", LENET_STEP), Case("lenet5-epoch", "2560img", LENET_EPOCH)]


def default_cases():
    """Every case of `fastconv bench`, in table order."""
    return conv_cases() + pool_cases() + gemm_cases() + thread_cases() + lenet_cases()


# bench/ times every implementation except "auto", which is always one of direct / im2col.
SUITE_SKIPS = ("auto",)


def suite_parameters(cases):
    """pytest parameters for bench/: (case, impl) pairs with readable ids such as "lenet-c1-direct"."""
    return [((case, impl), f"{case.shape_name}-{impl}".replace(" ", "-"))
            for case in cases for impl in case.implementations if impl not in SUITE_SKIPS]
