"""Benchmark cases, the timing runner and the `fastconv bench` command.

One source of truth for what is measured: the cases below are shared by the pytest-benchmark suite
(bench/, which parametrises over them and lets pytest-benchmark time them) and by `fastconv bench`
(which times them here, without pytest, and prints a table).

A case is a kind of work (e.g. "conv2d-fwd") on a named shape (e.g. "lenet-c1"); `prepare(case, impl)`
builds the inputs once and returns a zero-argument callable for one implementation:

    conv2d-fwd / conv2d-bwd        direct, im2col, auto (fastconv), reference (NumPy), torch
    max_pool2d-* / avg_pool2d-*    fastconv, reference, torch
    gemm                           fastconv (functional.gemm), numpy (numpy.matmul)
    conv2d-threads (fwd + bwd)     1-thread, 2-threads (fastconv, auto)
    lenet5-step / lenet5-epoch     model (models.lenet5().fit; direct / im2col: with that algo), reference
                                   (LeNet-5 written with fastconv.reference's kernels), torch (the plain loop)

PyTorch is optional everywhere: it is imported only when present, and set to fastconv's thread count.
Everything runs in float32.
"""
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

from . import functional, reference

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


# ---- implementations ------------------------------------------------------------------------------

class Unavailable(Exception):
    """An implementation that cannot run here (PyTorch or the training API not importable)."""


@dataclasses.dataclass
class Bench:
    """A prepared call: `fn()` does the work once (and returns its result, which tests check);
    `warmup()`, when set, is a cheaper call that warms the same code paths (LeNet epochs)."""
    fn: object
    warmup: object = None


def load_torch():
    """PyTorch if importable (set to fastconv's thread count), else None. Never a dependency."""
    try:
        import torch
    except Exception:  # ImportError, or a broken install (OSError from a missing shared library)
        return None
    torch.set_num_threads(functional.get_num_threads())
    return torch


def _require_torch():
    torch = load_torch()
    if torch is None:
        raise Unavailable("PyTorch is not importable")
    return torch


def _rng(case):
    # Seeded by the case so every implementation of it sees the same numbers.
    return np.random.default_rng([SEED, sum(map(ord, case.name))])


def _normal(rng, shape):
    return rng.standard_normal(shape, dtype=DTYPE)


def prepare(case, impl):
    """A Bench for `impl` (one of case.implementations) on `case`; Unavailable if it cannot run here."""
    if impl not in case.implementations:
        raise ValueError(f"{case.name}: unknown implementation {impl!r}, expected one of {case.implementations}")
    builders = {"conv": _prepare_conv, "pool": _prepare_pool, "gemm": _prepare_gemm,
                "threads": _prepare_threads, "lenet5-step": _prepare_lenet, "lenet5-epoch": _prepare_lenet}
    return builders[case.family](case, impl)


def _conv_inputs(case):
    s, rng = case.shape, _rng(case)
    x = _normal(rng, (s.n, s.c, s.h, s.w))
    weight = _normal(rng, (s.k, s.c, s.kernel, s.kernel)) / np.float32(math.sqrt(s.c * s.kernel**2))
    bias = _normal(rng, (s.k,))
    grad_out = _normal(rng, (s.n, s.k) + s.out_hw)
    return x, weight, bias, grad_out


def _prepare_conv(case, impl):
    x, weight, bias, grad_out = _conv_inputs(case)
    stride, pad = case.shape.stride, case.shape.pad
    forward = case.kind == "conv2d-fwd"
    if impl == "torch":
        return _torch_conv(forward, x, weight, bias, grad_out, stride, pad)
    ops, algo = (reference, "auto") if impl == "reference" else (functional, impl)
    if forward:
        return Bench(lambda: ops.conv2d(x, weight, bias, stride, pad, algo=algo))
    return Bench(lambda: ops.conv2d_backward(grad_out, x, weight, stride, pad, algo=algo))


def _torch_conv(forward, x, weight, bias, grad_out, stride, pad):
    torch = _require_torch()
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, weight, bias, grad_out))
    conv_args = ([stride, stride], [pad, pad], [1, 1])
    if forward:
        def run():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, bt, stride, pad)
        return Bench(run)
    # The aten op computes dx, dw and db directly, as conv2d_backward does, without autograd's bookkeeping.
    return Bench(lambda: torch.ops.aten.convolution_backward(
        gt, xt, wt, [wt.shape[0]], *conv_args, False, [0, 0], 1, [True, True, True]))


def _pool_inputs(case):
    s, rng = case.shape, _rng(case)
    x = _normal(rng, (s.n, s.c, s.h, s.w))
    out_hw = tuple((extent - s.kernel) // s.stride + 1 for extent in (s.h, s.w))
    grad_out = _normal(rng, (s.n, s.c) + out_hw)
    return x, grad_out


def _prepare_pool(case, impl):
    x, grad_out = _pool_inputs(case)
    k, stride = case.shape.kernel, case.shape.stride
    if impl == "torch":
        return _torch_pool(case.kind, x, grad_out, k, stride)
    ops = reference if impl == "reference" else functional
    if case.kind == "max_pool2d-fwd":
        return Bench(lambda: ops.max_pool2d(x, k, stride))
    if case.kind == "max_pool2d-bwd":
        indices = ops.max_pool2d(x, k, stride)[1]
        return Bench(lambda: ops.max_pool2d_backward(grad_out, indices, x.shape))
    if case.kind == "avg_pool2d-fwd":
        return Bench(lambda: ops.avg_pool2d(x, k, stride))
    return Bench(lambda: ops.avg_pool2d_backward(grad_out, x.shape, k, stride))


def _torch_pool(kind, x, grad_out, k, stride):
    torch = _require_torch()
    F, aten = torch.nn.functional, torch.ops.aten
    xt, gt = torch.from_numpy(x), torch.from_numpy(grad_out)
    window = ([k, k], [stride, stride], [0, 0])
    if kind == "max_pool2d-fwd":
        return Bench(lambda: F.max_pool2d(xt, k, stride, return_indices=True))
    if kind == "max_pool2d-bwd":
        indices = F.max_pool2d(xt, k, stride, return_indices=True)[1]
        return Bench(lambda: aten.max_pool2d_with_indices_backward(gt, xt, *window, [1, 1], False, indices))
    if kind == "avg_pool2d-fwd":
        return Bench(lambda: F.avg_pool2d(xt, k, stride))
    return Bench(lambda: aten.avg_pool2d_backward(gt, xt, *window, False, True, None))


def _prepare_gemm(case, impl):
    s, rng = case.shape, _rng(case)
    a, b = _normal(rng, (s.m, s.k)), _normal(rng, (s.k, s.n))
    if impl == "numpy":
        return Bench(lambda: np.matmul(a, b))
    return Bench(lambda: functional.gemm(a, b))


def _prepare_threads(case, impl):
    """Forward then backward (auto algorithm) at a fixed thread count, restored after every call."""
    threads = int(impl.split("-")[0])
    x, weight, bias, grad_out = _conv_inputs(case)
    stride, pad = case.shape.stride, case.shape.pad

    def run():
        saved = functional.get_num_threads()
        functional.set_num_threads(threads)
        try:
            y = functional.conv2d(x, weight, bias, stride, pad)
            return y, functional.conv2d_backward(grad_out, x, weight, stride, pad)
        finally:
            functional.set_num_threads(saved)
    return Bench(run)


# ---- LeNet-5 --------------------------------------------------------------------------------------

def lenet_data(images, seed=SEED):
    """Random MNIST-like data: (images, 1, 28, 28) float32 in [0, 1) and int64 labels 0..9.

    Timing does not depend on the pixel values, and random data keeps the suite free of downloads."""
    rng = np.random.default_rng(seed)
    return rng.random((images, 1, 28, 28), dtype=DTYPE), rng.integers(0, 10, images, dtype=np.int64)


class FunctionalLeNet:
    """LeNet-5 (as in API.md) trained with a kernel module's functional calls and NumPy dense layers.

    `ops` is `fastconv.functional` (with algo "direct" or "im2col") or `fastconv.reference`: the same
    NumPy glue runs around either, so the difference in time is the kernels'. SGD with momentum,
    PyTorch's form (v = m*v + g; p -= lr*v), softmax cross-entropy averaged over the batch.
    """

    LAYERS = {"c1": (6, 1, 5, 5), "c3": (16, 6, 5, 5), "f5": (400, 120), "f6": (120, 84), "f7": (84, 10)}

    def __init__(self, ops, algo="auto", lr=0.05, momentum=0.9, seed=SEED):
        rng = np.random.default_rng(seed)
        self.ops, self.algo, self.lr, self.momentum = ops, algo, DTYPE(lr), DTYPE(momentum)
        self.params = {}
        for name, shape in self.LAYERS.items():
            fan_in = int(np.prod(shape[1:])) if name.startswith("c") else shape[0]
            bound = np.float32(1 / math.sqrt(fan_in))  # PyTorch's default init range
            self.params[name + "w"] = rng.uniform(-bound, bound, shape).astype(DTYPE)
            self.params[name + "b"] = rng.uniform(-bound, bound, shape[0] if name.startswith("c") else shape[1]
                                                  ).astype(DTYPE)
        self.velocity = {name: np.zeros_like(p) for name, p in self.params.items()}

    def _conv_block(self, x, name, pad):
        """conv -> relu -> 2x2 max pool; returns the output and what the backward pass needs."""
        p = self.params
        a = self.ops.conv2d(x, p[name + "w"], p[name + "b"], 1, pad, algo=self.algo)
        r = np.maximum(a, 0)
        y, indices = self.ops.max_pool2d(r, 2)
        return y, (x, a, indices, pad)

    def _conv_block_backward(self, grad_y, name, saved):
        x, a, indices, pad = saved
        grad_r = self.ops.max_pool2d_backward(grad_y, indices, a.shape)
        grad_a = grad_r * (a > 0)
        grad_x, grad_w, grad_b = self.ops.conv2d_backward(grad_a, x, self.params[name + "w"], 1, pad,
                                                          algo=self.algo)
        return grad_x, {name + "w": grad_w, name + "b": grad_b}

    def step(self, x, y):
        """One SGD step on a batch; returns the batch's mean cross-entropy loss."""
        p = self.params
        s2, saved1 = self._conv_block(x, "c1", 2)
        s4, saved3 = self._conv_block(s2, "c3", 0)
        f = s4.reshape(len(x), -1)
        h5 = f @ p["f5w"] + p["f5b"]
        r5 = np.maximum(h5, 0)
        h6 = r5 @ p["f6w"] + p["f6b"]
        r6 = np.maximum(h6, 0)
        logits = r6 @ p["f7w"] + p["f7b"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        rows = np.arange(len(x))
        loss = float(-np.mean(np.log(probs[rows, y] + 1e-12)))
        grad = probs
        grad[rows, y] -= 1
        grad /= DTYPE(len(x))
        grads = {"f7w": r6.T @ grad, "f7b": grad.sum(0)}
        grad = (grad @ p["f7w"].T) * (h6 > 0)
        grads.update(f6w=r5.T @ grad, f6b=grad.sum(0))
        grad = (grad @ p["f6w"].T) * (h5 > 0)
        grads.update(f5w=f.T @ grad, f5b=grad.sum(0))
        grad = (grad @ p["f5w"].T).reshape(s4.shape)
        grad, conv_grads = self._conv_block_backward(grad, "c3", saved3)
        grads.update(conv_grads)
        grads.update(self._conv_block_backward(grad, "c1", saved1)[1])
        self._update(grads)
        return loss

    def _update(self, grads):
        for name, g in grads.items():
            v = self.velocity[name]
            v *= self.momentum
            v += g
            self.params[name] -= self.lr * v

    def epoch(self, x, y, batch_size, rng):
        """One shuffled pass over (x, y); returns the last batch's loss."""
        order = rng.permutation(len(x))
        loss = None
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            loss = self.step(x[batch], y[batch])
        return loss


def _prepare_lenet(case, impl):
    run = case.shape
    x, y = lenet_data(run.images)
    if impl == "torch":
        return _torch_lenet(x, y, run.batch)
    if impl == "reference":
        net, rng = FunctionalLeNet(reference), np.random.default_rng(SEED)
        return Bench(lambda: net.epoch(x, y, run.batch, rng),
                     warmup=lambda: net.step(x[:run.batch], y[:run.batch]))
    return _model_lenet(x, y, run.batch, "auto" if impl == "model" else impl)


def _model_lenet(x, y, batch, algo):
    """fastconv's own training API: models.lenet5(algo=algo).fit for one epoch over (x, y)."""
    try:
        from . import models, optim
        model = models.lenet5(seed=SEED, algo=algo)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"the training API is not importable: {exc}") from None
    optimizer = optim.SGD(lr=0.05, momentum=0.9)
    fit = lambda xs, ys: model.fit(xs, ys, epochs=1, batch_size=batch, optimizer=optimizer, verbose=0)  # noqa
    return Bench(lambda: fit(x, y), warmup=lambda: fit(x[:batch], y[:batch]))


def torch_lenet5(torch):
    """LeNet-5 of API.md as a torch.nn.Sequential (PyTorch's default initialisation)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def _torch_lenet(x, y, batch):
    """The plain PyTorch loop: shuffle, then per batch zero_grad, forward, cross_entropy, backward, step."""
    torch = _require_torch()
    torch.manual_seed(SEED)
    model = torch_lenet5(torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def train(xs, ys):
        order = torch.randperm(len(xs))
        for start in range(0, len(xs), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            loss.backward()
            optimizer.step()
        return loss.item()
    return Bench(lambda: train(xt, yt), warmup=lambda: train(xt[:batch], yt[:batch]))


# ---- timing ---------------------------------------------------------------------------------------

# NumPy's OpenBLAS threads keep spinning for a while after a call, and on a 2-core machine they take
# the cores from the next OpenMP kernel: measured (strided conv, 2 threads), fastconv ran at 8-13 ms
# per call right after a numpy.matmul, 2.8 ms after a 0.3 s pause. So each case's implementations are
# timed one after the other, the baselines last, with this pause after them.
SETTLE_AFTER_BASELINE_S = 0.3


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long to time each (case, implementation).

    budget_s: time spent repeating after the warm-up; max_rounds caps the repeats, baseline_max_rounds
    caps them for the reference / numpy (slow on big shapes); a round of a fast call repeats it until
    the round lasts min_round_s (timer resolution; the per-call time is the round's mean); settle_s
    is the pause after a baseline's rounds (SETTLE_AFTER_BASELINE_S)."""
    budget_s: float
    max_rounds: int
    baseline_max_rounds: int
    min_round_s: float = 2e-3
    peak_size: int = PEAK_GEMM_SIZE
    settle_s: float = SETTLE_AFTER_BASELINE_S


QUICK = Settings(budget_s=0.2, max_rounds=15, baseline_max_rounds=2)
FULL = Settings(budget_s=1.5, max_rounds=100, baseline_max_rounds=5)
# A first call at least this long is kept as a sample: warming up by running it twice would double
# the cost of the slowest cases for nothing (their first-call effects are a negligible fraction).
KEEP_FIRST_CALL_S = 0.25


def measure(bench, budget_s, max_rounds, min_round_s=2e-3):
    """Time `bench.fn`: {"median_s", "min_s", "rounds"}, seconds per call, after a warm-up."""
    samples = []
    if bench.warmup is not None:
        bench.warmup()
        cost = _timed(bench.fn, 1)
        samples.append(cost)
    else:
        cost = _timed(bench.fn, 1)  # the warm-up call
        if cost >= KEEP_FIRST_CALL_S:
            samples.append(cost)
        else:  # the first call paid one-time costs; a second one tells how many calls fill a round
            cost = min(cost, _timed(bench.fn, 1))
    number = max(1, min(100_000, math.ceil(min_round_s / max(cost, 1e-9))))
    start = time.perf_counter()
    while len(samples) < max_rounds and (not samples or time.perf_counter() - start < budget_s):
        samples.append(_timed(bench.fn, number))
    return {"median_s": statistics.median(samples), "min_s": min(samples), "rounds": len(samples)}


def _timed(fn, number):
    """Mean seconds per call over `number` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def measure_peak(settings):
    """GFLOP/s of numpy.matmul float32 on square matrices of settings.peak_size: the '% of peak' basis."""
    size = settings.peak_size
    case = Case("gemm", f"{size}^3", GemmShape(size, size, size))
    timing = measure(prepare(case, "numpy"), settings.budget_s, settings.max_rounds, settings.min_round_s)
    time.sleep(settings.settle_s)
    return case.flops() / timing["median_s"] / 1e9


def run_case(case, settings, torch_available, peak_gflops):
    """Time the fastconv / baseline (/ torch) implementations of `case`: one result row (a dict)."""
    main_impl, baseline_impl, torch_impl = case.roles
    row = {"name": case.name, "kind": case.kind, "shape": case.shape_name, "dims": case.describe(),
           "fastconv_impl": main_impl, "baseline": baseline_impl}
    times = {}
    for role, impl in (("fastconv", main_impl), ("torch", torch_impl), ("reference", baseline_impl)):
        if impl is None or (impl == "torch" and not torch_available):
            continue
        try:
            bench = prepare(case, impl)
        except Unavailable as exc:
            row[f"{role}_unavailable"] = str(exc)
            continue
        rounds = settings.baseline_max_rounds if impl in BASELINES else settings.max_rounds
        timing = measure(bench, settings.budget_s, rounds, settings.min_round_s)
        times[role] = timing["median_s"]
        row[f"{role}_rounds"] = timing["rounds"]
        if impl in BASELINES:
            time.sleep(settings.settle_s)
    return _fill_row(row, times, case.flops(), peak_gflops)


def _fill_row(row, times, flops, peak_gflops):
    fast, ref, torch_s = times.get("fastconv"), times.get("reference"), times.get("torch")
    row["fastconv_s"], row["reference_s"] = fast, ref
    row["speedup"] = ref / fast if fast and ref else None
    if torch_s is not None:
        row["torch_s"] = torch_s
        row["torch_ratio"] = fast / torch_s if fast else None  # < 1: fastconv is faster
    if flops and fast:
        row["gflops"] = flops / fast / 1e9
        if peak_gflops:
            row["peak_percent"] = 100.0 * row["gflops"] / peak_gflops
    return row


def run_cases(cases, settings, torch_available, peak_gflops, on_row=None):
    """run_case over `cases`; on_row(row) is called as each row completes (the table streams)."""
    rows = []
    for case in cases:
        row = run_case(case, settings, torch_available, peak_gflops)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


# ---- report: machine info, table, JSON, plot ------------------------------------------------------

def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(peak_gflops, torch, peak_size=PEAK_GEMM_SIZE):
    """What the numbers were measured on (the "machine" object of the JSON)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "threads": functional.get_num_threads(),
        "fastconv": functional.build_info(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dtype": np.dtype(DTYPE).name,
        "gemm_peak_gflops": peak_gflops,
        "gemm_peak_basis": f"numpy.matmul float32 {peak_size}^3, measured in this run",
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def report(machine, settings, rows):
    return {"machine": machine, "settings": dataclasses.asdict(settings), "results": rows}


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


# (header, width, row -> text); the torch columns are dropped when PyTorch is absent.
def _ms(value):
    return "-" if value is None else (f"{value * 1e3:.4f}" if value < 1e-3 else f"{value * 1e3:.2f}")


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


_BASELINE_LABELS = {"reference": "ref", "numpy": "numpy", "1-thread": "1 thread"}
COLUMNS = [
    ("case", 15, lambda r: r["kind"]),
    ("shape", 17, lambda r: r["shape"]),
    ("fastconv ms", 12, lambda r: _ms(r["fastconv_s"])),
    ("baseline", 9, lambda r: _BASELINE_LABELS.get(r["baseline"], r["baseline"])),
    ("baseline ms", 12, lambda r: _ms(r["reference_s"])),
    ("speed-up", 9, lambda r: _num(r["speedup"], ".2f") + ("x" if r["speedup"] else "")),
    ("torch ms", 10, lambda r: _ms(r.get("torch_s"))),
    ("fc/torch", 9, lambda r: _num(r.get("torch_ratio"), ".2f")),
    ("GFLOP/s", 8, lambda r: _num(r.get("gflops"), ".1f")),
    ("% peak", 7, lambda r: _num(r.get("peak_percent"), ".0f")),
]
_TORCH_COLUMNS = ("torch ms", "fc/torch")


def table_columns(with_torch):
    return [c for c in COLUMNS if with_torch or c[0] not in _TORCH_COLUMNS]


def format_row(row, columns):
    first, *rest = columns
    return f"{first[2](row):<{first[1]}} " + " ".join(
        f"{fn(row):<{width}}" if header in ("shape", "baseline") else f"{fn(row):>{width}}"
        for header, width, fn in rest)


def format_header(columns):
    first, *rest = columns
    return f"{first[0]:<{first[1]}} " + " ".join(
        f"{h:<{w}}" if h in ("shape", "baseline") else f"{h:>{w}}" for h, w, _ in rest)


def format_table(rows, with_torch):
    """The whole table as text (the command prints it row by row as they are measured)."""
    columns = table_columns(with_torch)
    return "\n".join([format_header(columns)] + [format_row(r, columns) for r in rows])


def shapes_legend(cases):
    """One line per shape name used by `cases`: what the short names in the table stand for."""
    seen = {}
    for case in cases:
        seen.setdefault(case.shape_name, case.describe())
    return "\n".join(f"  {name:<17} {text}" for name, text in seen.items())


def load_pyplot():
    """matplotlib.pyplot with a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(rows, path, plt):
    """Horizontal bars, one group per row of the table: fastconv, baseline and torch time (log scale)."""
    series = [("fastconv", "fastconv_s", "tab:blue"), ("baseline", "reference_s", "tab:gray"),
              ("torch", "torch_s", "tab:orange")]
    series = [s for s in series if any(r.get(s[1]) for r in rows)]
    height = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    for i, (label, key, color) in enumerate(series):
        positions = [n + i * height for n in range(len(rows))]
        values = [(r.get(key) or 0) * 1e3 for r in rows]
        ax.barh(positions, values, height=height, label=label, color=color)
    ax.set_yticks([n + 0.4 - height / 2 for n in range(len(rows))])
    ax.set_yticklabels([r["name"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median time per call, ms (log scale)")
    ax.set_title(f"fastconv bench ({functional.get_num_threads()} threads, float32)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- the command ----------------------------------------------------------------------------------

def run_bench(args, cases=None, settings=None):
    """`fastconv bench`: time every case, print the table, optionally write JSON and a plot.

    args: argparse Namespace with quick, json, plot (threads already applied by the CLI).
    `cases` / `settings` default to default_cases() and QUICK or FULL (tests pass tiny ones)."""
    plt = None
    if args.plot:
        plt = load_pyplot()
        if plt is None:  # refuse before a minute of timing, not after
            print("fastconv bench: --plot needs matplotlib: pip install 'fastconv[plot]'", file=sys.stderr)
            return 2
    cases = default_cases() if cases is None else cases
    settings = settings or (QUICK if args.quick else FULL)
    torch = load_torch()
    peak = measure_peak(settings)
    machine = machine_info(peak, torch, settings.peak_size)
    _print_preamble(machine, cases)
    columns = table_columns(torch is not None)
    print(format_header(columns), flush=True)
    rows = run_cases(cases, settings, torch is not None, peak,
                     on_row=lambda row: print(format_row(row, columns), flush=True))
    if args.json:
        write_json(args.json, report(machine, settings, rows))
        print(f"wrote {args.json}")
    if plt is not None:
        plot(rows, args.plot, plt)
        print(f"wrote {args.plot}")
    return 0


def _print_preamble(machine, cases):
    info = machine["fastconv"]
    torch_text = f"torch {machine['torch']}" if machine["torch"] else "torch not installed (no torch columns)"
    print(f"fastconv {info.get('version')} ({info.get('simd')}, openmp={info.get('openmp')}) on {machine['cpu']}, "
          f"{machine['threads']} of {machine['cores']} cores; numpy {machine['numpy']}; {torch_text}")
    print(f"float32, median per call; % peak is of {machine['gemm_peak_basis']}: "
          f"{machine['gemm_peak_gflops']:.1f} GFLOP/s")
    print("shapes (conv: N x C x H x W * K x C x R x S; gemm: M x K @ K x N):")
    print(shapes_legend(cases))
    print("baseline: fastconv.reference (NumPy), numpy.matmul for gemm, 1 thread for conv2d-threads;")
    print("speed-up = baseline / fastconv; fc/torch < 1 means fastconv is faster.\n", flush=True)
