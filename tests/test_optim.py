"""fastconv.optim: each update rule against an independent step-by-step implementation (written the
way torch.optim documents it), in-place float32 updates, convergence, state handling, errors."""
import numpy as np
import pytest

import fastconv
from fastconv import optim


def gradient_sequence(shape=(3, 4), steps=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


def run(optimizer, start, grads):
    """Apply `optimizer` to a copy of start over the gradient sequence; returns the trajectory."""
    p = start.copy()
    trajectory = []
    for g in grads:
        optimizer.step([p], [g])
        trajectory.append(p.copy())
    return trajectory


def sgd_expected(start, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    p, buf, out = start.copy(), None, []
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d  # torch: the first buffer is a copy of d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        out.append(p)
    return out


def adam_expected(start, grads, lr, beta1, beta2, eps, weight_decay=0.0):
    b1, b2 = beta1, beta2
    p, m, v, out = start.copy(), 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        out.append(p)
    return out


def rmsprop_expected(start, grads, lr, alpha, eps, momentum=0.0, weight_decay=0.0):
    p, s, buf, out = start.copy(), 0.0, 0.0, []
    for g in grads:
        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g ** 2
        step = g / (np.sqrt(s) + eps)
        if momentum:
            buf = momentum * buf + step
            step = buf
        p = p - lr * step
        out.append(p)
    return out


START = np.random.default_rng(42).standard_normal((3, 4))


@pytest.mark.parametrize("kwargs", [dict(lr=0.1), dict(lr=0.05, momentum=0.9),
                                    dict(lr=0.05, momentum=0.9, nesterov=True),
                                    dict(lr=0.1, momentum=0.5, weight_decay=0.01)])
def test_sgd_matches_the_documented_rule(kwargs):
    grads = gradient_sequence()
    for got, want in zip(run(optim.SGD(**kwargs), START, grads), sgd_expected(START, grads, **kwargs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)])
def test_adam_matches_the_documented_rule(kwargs):
    grads = gradient_sequence(seed=1)
    defaults = dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)
    expected = adam_expected(START, grads, **{**defaults, **kwargs})
    for got, want in zip(run(optim.Adam(**kwargs), START, grads), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.003, alpha=0.9, eps=1e-5, momentum=0.8, weight_decay=0.05)])
def test_rmsprop_matches_the_documented_rule(kwargs):
    grads = gradient_sequence(seed=2)
    defaults = dict(lr=0.01, alpha=0.99, eps=1e-8)
    expected = rmsprop_expected(START, grads, **{**defaults, **kwargs})
    for got, want in zip(run(optim.RMSprop(**kwargs), START, grads), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimizer", [optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                                       optim.Adam(weight_decay=1e-3), optim.RMSprop(momentum=0.5)])
def test_updates_are_in_place_and_keep_float32(optimizer):
    weight, bias = np.ones((4, 3), np.float32), np.zeros(4, np.float32)
    weight_id, bias_id = id(weight), id(bias)
    for _ in range(3):  # float64 gradients are cast to the parameter's float32
        optimizer.step([weight, bias], [np.full((4, 3), 0.5), np.full(4, -0.5)])
    assert id(weight) == weight_id and id(bias) == bias_id
    assert weight.dtype == np.float32 and bias.dtype == np.float32
    assert np.all(weight < 1) and np.all(bias > 0)
    assert all(value.dtype == np.float32 for state in optimizer._state for value in state.values())


@pytest.mark.parametrize("optimizer", [optim.SGD(lr=0.1), optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
                                       optim.Adam(lr=0.05), optim.RMSprop(lr=0.01)])
def test_minimises_a_quadratic(optimizer):
    target = np.array([1.0, -2.0, 3.0])
    p = np.zeros(3)
    for _ in range(2000):
        optimizer.step([p], [p - target])  # gradient of 0.5 * |p - target|^2
    np.testing.assert_allclose(p, target, atol=1e-2)


def test_state_is_reset_when_the_parameters_change():
    optimizer = optim.SGD(lr=0.1, momentum=0.9)
    optimizer.step([np.zeros(3)], [np.ones(3)])
    assert optimizer.iterations == 1
    p = np.zeros(5)
    optimizer.step([p], [np.ones(5)])
    np.testing.assert_allclose(p, -0.1)  # a fresh momentum buffer: the first step is plain SGD
    assert optimizer.iterations == 1
    optimizer.reset()
    assert optimizer.iterations == 0 and optimizer._state is None


def test_step_checks_its_arguments():
    optimizer = optim.SGD(lr=0.1)
    with pytest.raises(ValueError, match="one gradient per parameter"):
        optimizer.step([np.zeros(2)], [])
    with pytest.raises(ValueError, match="does not match"):
        optimizer.step([np.zeros(2)], [np.zeros(3)])


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=-1), lambda: optim.SGD(lr=0.1, nesterov=True),
                                  lambda: optim.SGD(lr=float("nan")), lambda: optim.Adam(beta1=1.0),
                                  lambda: optim.RMSprop(alpha=-0.1), lambda: optim.SGD(momentum=-0.5),
                                  lambda: optim.get("lbfgs")])
def test_bad_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_get_builds_by_name():
    optimizer = optim.get("Adam", lr=0.01)
    assert isinstance(optimizer, optim.Adam) and optimizer.lr == 0.01


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                                  lambda: optim.Adam(lr=0.01, weight_decay=0.01),
                                  lambda: optim.RMSprop(lr=0.01, momentum=0.5, weight_decay=0.01)])
def test_float32_steps_follow_the_rule_and_not_the_thread_count(make):
    """float32 against the rule in float64, on an array large enough to be split across threads; the
    same bits on 1 and 2 threads."""
    rng = np.random.default_rng(3)
    start = rng.standard_normal(150_001).astype(np.float32)
    grads = [rng.standard_normal(start.size).astype(np.float32) for _ in range(4)]
    saved, adaptive = fastconv.get_num_threads(), fastconv.get_adaptive_threads()
    fastconv.set_adaptive_threads(False)  # two threads even on a busy machine
    finals = []
    try:
        for threads in (1, 2):
            fastconv.set_num_threads(threads)
            finals.append(run(make(), start, grads)[-1])
    finally:
        fastconv.set_num_threads(saved)
        fastconv.set_adaptive_threads(adaptive)
    np.testing.assert_array_equal(finals[0], finals[1])
    expected = run(make(), start.astype(np.float64), [g.astype(np.float64) for g in grads])[-1]
    np.testing.assert_allclose(finals[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("param, error, match", [
    (np.zeros(4, np.float16), TypeError, r"params\[0\] must be a float32 or float64"),
    ([0.0, 1.0], TypeError, r"params\[0\] must be a float32 or float64"),
    (np.zeros((4, 4))[:, ::2], ValueError, r"params\[0\] must be a writeable C-contiguous"),
])
def test_params_the_step_cannot_update_in_place_are_refused(param, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(lr=0.1).step([param], [np.zeros(np.shape(param))])
