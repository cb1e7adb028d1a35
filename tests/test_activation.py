"""fastconv.functional.relu / relu_backward (C kernels behind the ReLU layer) against NumPy."""
import numpy as np
import pytest

import fastconv as fc
from fastconv import functional as F


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (7,), (3, 5), (64, 6, 28, 28), (2, 70001)])
def test_relu_matches_numpy(shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    y = F.relu(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(F.relu_backward(grad, y), grad * (y > 0))


def test_relu_nan_and_layouts():
    x = np.array([[np.nan, -1.0, 0.0, 2.0, -np.inf, np.inf]] * 3).T   # Fortran-ordered view
    y = F.relu(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))               # NaN stays NaN
    grad = np.ones_like(x)
    np.testing.assert_array_equal(F.relu_backward(grad, y), grad * (y > 0))
    np.testing.assert_array_equal(F.relu(x[::2]), np.maximum(x[::2], 0))
    np.testing.assert_array_equal(F.relu([[-1.5, 2.5]]), [[0.0, 2.5]])


def test_relu_same_result_with_one_and_two_threads():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 40000)).astype(np.float32)
    before = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        one = F.relu(x), F.relu_backward(x, F.relu(x))
        fc.set_num_threads(2)
        two = F.relu(x), F.relu_backward(x, F.relu(x))
    finally:
        fc.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_relu_rejects_bad_input():
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        F.relu(np.arange(4))
    with pytest.raises(TypeError, match="grad_out"):
        F.relu_backward(np.arange(4), np.ones(4))
    with pytest.raises(ValueError, match="grad_out must have y's shape"):
        F.relu_backward(np.ones(3), np.ones(4))
