"""The implementations of each case: `prepare(case, impl)` builds the inputs once and returns a Bench,
a zero-argument callable that does the work of one call.

PyTorch is optional everywhere: it is imported only when present, and set to fastconv's thread count.
"""
import dataclasses
import math

import numpy as np

from .. import functional, reference
from .cases import DTYPE, SEED

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


def _prepare_lenet(case, impl):
    run = case.shape
    x, y = lenet_data(run.images)
    if impl == "torch":
        return _torch_lenet(x, y, run.batch)
    if impl == "reference":
        return _model_lenet(x, y, run.batch, "auto", backend="reference")
    return _model_lenet(x, y, run.batch, "auto" if impl == "model" else impl)


def _model_lenet(x, y, batch, algo, backend="fastconv"):
    """fastconv's own training API: models.lenet5(algo=algo).fit for one epoch over (x, y), its layers
    computing with `backend`'s kernels (the reference row runs the very same model on NumPy's)."""
    try:
        from .. import models, optim
        model = models.lenet5(seed=SEED, algo=algo)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"the training API is not importable: {exc}") from None
    model.backend = backend
    optimizer = optim.SGD(lr=0.05, momentum=0.9)
    fit = lambda xs, ys: model.fit(xs, ys, epochs=1, batch_size=batch, optimizer=optimizer, verbose=0)  # noqa
    return Bench(lambda: fit(x, y), warmup=lambda: fit(x[:batch], y[:batch]))


def torch_lenet5(torch):
    """fastconv.models.lenet5 as a torch.nn.Sequential (PyTorch's default initialisation)."""
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
