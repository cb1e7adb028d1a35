"""The kvec forward (direct, vectorised over output channels) on the shapes that reach each of its code
paths: full and partial groups of channels, the last block of a row and of a plane, unit and wider
column strides, padding; at every SIMD level and dtype, against the float64 reference, and bit for bit
the same on 1 and 2 threads.

Its register blocks are 2 rows x 12 columns of one vector of channels on AVX-512, 1 row x 6 columns of
two vectors (or 1 x 12 of one) on AVX2, each block stored through an in-register transpose of up to one
vector of pixels at a time: the widths below give blocks of every column count with remainders past 12
and 16, and odd heights a last block of one row.
"""
import numpy as np
import pytest

import fastconv as fc
from fastconv import reference as ref

LEVELS = tuple(level for level in fc.build_info()["simd_available"] if level != "scalar")
DTYPES = (np.float32, np.float64)

# name: (x_shape, w_shape, stride, padding)
SHAPES = {
    "lenet-c3": ((4, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    "one-vector-of-12": ((2, 3, 9, 9), (12, 3, 3, 3), 1, 1),          # 3/4 of a float32 AVX-512 vector
    "groups-17": ((3, 2, 8, 19), (17, 2, 3, 3), 1, 0),                # a last group of one channel
    "groups-33-wide": ((2, 2, 7, 31), (33, 2, 3, 3), 1, 1),           # rows of 31: 12 + 12 + 7, 16 + 15
    "odd-rows": ((2, 4, 11, 15), (24, 4, 3, 3), 1, 0),                # out 9 x 13: a one-row block, 12 + 1
    "stride-w-2": ((2, 3, 13, 29), (20, 3, 3, 3), (1, 2), (1, 1)),    # the run-time column step
    "stride-2": ((3, 2, 15, 15), (40, 2, 3, 5), 2, (1, 2)),
    "widths-1": ((2, 2, 6, 3), (16, 2, 2, 3), 1, 0),                  # one output column
}


def kvec_case(name, dtype, seed=0):
    x_shape, w_shape, stride, padding = SHAPES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, weight, bias, stride, padding


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", LEVELS)
def test_kvec_matches_reference_and_not_the_thread_count(name, dtype, level, numerics):
    x, weight, bias, stride, padding = kvec_case(name, dtype)
    expected = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), stride,
                          padding)
    saved_threads, saved_adaptive = fc.get_num_threads(), fc.get_adaptive_threads()
    fc.set_adaptive_threads(False)
    try:
        with numerics.simd_env(level):
            plan = fc.conv2d_plan(x.shape, weight.shape, stride, padding, dtype, algo="direct")
            assert plan.forward == "direct.kvec", f"{name} {level}: {plan.forward}"
            results = []
            for threads in (1, 2):
                fc.set_num_threads(threads)
                results.append(fc.conv2d(x, weight, bias, stride, padding, algo="direct"))
    finally:
        fc.set_num_threads(saved_threads)
        fc.set_adaptive_threads(saved_adaptive)
    label = f"{name} {level} {np.dtype(dtype).name}"
    numerics.assert_close(results[0], expected, dtype, label)
    assert results[0].tobytes() == results[1].tobytes(), f"{label}: 1 vs 2 threads differ"


@pytest.mark.parametrize("level", LEVELS)
def test_kvec_without_bias_is_the_sum_alone(level, numerics):
    x, weight, _, stride, padding = kvec_case("groups-33-wide", np.float32, seed=1)
    with numerics.simd_env(level):
        y = fc.conv2d(x, weight, None, stride, padding, algo="direct")
    expected = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), None, stride, padding)
    numerics.assert_close(y, expected, np.float32, f"no bias {level}")
