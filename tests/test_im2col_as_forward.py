"""im2col.as_forward: grad_x of a stride-1 convolution computed as the fused im2col forward of grad_y
with the weights flipped and transposed (padding kernel - 1 - pad).

Its plan (src_c/conv_plan.h, FC_PLAN_AS_FORWARD_*) takes it at stride 1 with padding from (kernel - 1) / 2
to kernel - 1, K at most 1 x C (AVX2, planes of 16 x 16 or more) or 2 x C (AVX-512, 28 x 28 or more).
The shapes below are drawn inside those bounds, with non-square kernels, and each asserts that the plan
really is as_forward before comparing with the float64 reference and across thread counts.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

# level -> (most output channels per input channel, fewest input pixels) of conv_plan.h's rule
RULE = {"avx2": (1, 256), "avx512": (2, 784)}
LEVELS = tuple(level for level in fc.build_info()["simd_available"] if level in RULE)
DTYPES = (np.float32, np.float64)


@st.composite
def as_forward_case(draw, level):
    """(x_shape, w_shape, padding) inside `level`'s as_forward bounds: kernels 1..5 x 1..5, padding
    (kernel - 1) // 2 rounded up .. kernel - 1 per axis, planes 28..33 pixels a side."""
    max_k_per_c, _ = RULE[level]
    channels = draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = tuple(draw(st.integers(r // 2, r - 1)) if r > 1 else 0 for r in kernel)
    x_shape = (draw(st.integers(1, 3)), channels, draw(st.integers(28, 33)), draw(st.integers(28, 33)))
    w_shape = (draw(st.integers(1, max_k_per_c * channels)), channels) + kernel
    return x_shape, w_shape, padding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", LEVELS)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_grad_x_matches_reference_and_not_the_thread_count(level, dtype, data, numerics):
    x_shape, w_shape, padding = data.draw(as_forward_case(level))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    grad_y = rng.standard_normal(ref.conv2d(x, weight, None, 1, padding).shape).astype(dtype)
    label = f"x{x_shape} w{w_shape} padding={padding} {level} {np.dtype(dtype).name}"
    with numerics.simd_env(level):
        assert fc.conv2d_plan(x_shape, w_shape, 1, padding, dtype, algo="im2col").grad_x == "im2col.as_forward", label
        one, two = numerics.at_threads(lambda: fc.conv2d_backward(grad_y, x, weight, 1, padding, algo="im2col")[0],
                                       (1, 2))
    expected = ref.conv2d_backward(grad_y.astype(np.float64), x.astype(np.float64), weight.astype(np.float64), 1,
                                   padding)[0]
    numerics.assert_close(one, expected, dtype, label)
    assert one.tobytes() == two.tobytes(), f"{label}: 1 vs 2 threads differ"


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((2, 4, 32, 32), (4, 4, 3, 3), 1, 0),          # padding below (kernel - 1) / 2: more multiply-adds
    ((2, 4, 32, 32), (4, 4, 3, 3), 1, 3),          # padding past kernel - 1
    ((2, 4, 32, 32), (4, 4, 3, 3), (1, 2), 1),     # a stride of 2
    ((2, 4, 32, 32), (32, 4, 3, 3), 1, 1),         # K = 8 C: col2im's cost per K is the smaller
    ((2, 4, 12, 12), (4, 4, 3, 3), 1, 1),          # a small plane
])
def test_shapes_outside_the_rule_keep_another_kernel(level, x_shape, w_shape, stride, padding, numerics):
    with numerics.simd_env(level):
        assert fc.conv2d_plan(x_shape, w_shape, stride, padding, algo="im2col").grad_x != "im2col.as_forward"


def test_scalar_level_never_plans_it(numerics):
    with numerics.simd_env("scalar"):
        assert fc.conv2d_plan((2, 8, 32, 32), (8, 8, 3, 3), 1, 1, algo="im2col").grad_x == "im2col.by_image"


@pytest.mark.skipif("avx512" not in LEVELS, reason="this CPU has no AVX-512")
def test_grad_x_matches_finite_differences(numerics):
    """float64, a 3 x 2 kernel with padding (1, 1) (its forward pads by (1, 0)): central differences at
    positions on the border rows and columns and inside."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 28, 28))
    weight = rng.standard_normal((5, 3, 3, 2))
    padding = (1, 1)
    grad_y = rng.standard_normal(ref.conv2d(x, weight, None, 1, padding).shape)
    with numerics.simd_env("avx512"):
        assert fc.conv2d_plan(x.shape, weight.shape, 1, padding, "float64", algo="im2col").grad_x == "im2col.as_forward"
        got = fc.conv2d_backward(grad_y, x, weight, 1, padding, algo="im2col")[0]

        def loss():
            return float(np.sum(fc.conv2d(x, weight, None, 1, padding, algo="im2col") * grad_y))

        positions = [(n, c, h, w) for n in range(2) for c in range(3) for h, w in
                     ((0, 0), (0, 27), (27, 0), (27, 27), (13, 1), (1, 14))]
        numeric = numerics.numerical_gradient(loss, x, positions=positions)
    for position in positions:
        np.testing.assert_allclose(got[position], numeric[position], rtol=1e-6, atol=1e-7, err_msg=str(position))


# Samples the resident size from a second thread while the kernel runs (it releases the GIL): the peak
# over the call less the size before it. (getrusage's peak is not refreshed when a block is unmapped.)
SCRATCH_PROBE = textwrap.dedent("""
    import os, sys, threading
    import numpy as np
    import fastconv as fc
    from fastconv import _kernels, functional

    def resident_kb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    fc.set_num_threads(1)
    batch = int(sys.argv[1])
    x = np.ones((batch, 16, 32, 32), np.float32)
    weight = np.ones((32, 16, 3, 3), np.float32)
    grad_y, grad_x = np.ones((batch, 32, 32, 32), np.float32), np.ones_like(x)   # pages touched
    geometry = functional._conv_geometry(x.shape, weight.shape, 1, 1)
    assert fc.conv2d_plan(x.shape, weight.shape, 1, 1, algo="im2col").grad_x == "im2col.as_forward"
    simd, code = functional._simd_level(), _kernels.ALGOS["im2col"]
    _kernels.conv2d_backward(code, geometry, grad_y[:1], x[:1], weight, grad_x[:1], None, None, 1, simd)
    before, peak, done = resident_kb(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_kb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    _kernels.conv2d_backward(code, geometry, grad_y, x, weight, grad_x, None, None, 1, simd)
    done.set()
    sampler.join()
    print(peak[0] - before)
""")


def peak_growth_kb(tmp_path, batch):
    """How much one grad_x call raises the peak resident size (KB) of a fresh process, at AVX-512."""
    script = tmp_path / "probe.py"
    script.write_text(SCRATCH_PROBE)
    env = {**os.environ, "FASTCONV_SIMD": "avx512"}
    result = subprocess.run([sys.executable, str(script), str(batch)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif("avx512" not in LEVELS, reason="this CPU has no AVX-512")
def test_scratch_does_not_grow_with_the_batch(tmp_path):
    """A batch of 256 (grad_y 32 MB) raises the resident size during the call by less than 2 MB more than a
    batch of 2 does: the scratch is the flipped weights and per-thread panels, not a copy of grad_y or a
    column matrix per image."""
    small, large = peak_growth_kb(tmp_path, 2), peak_growth_kb(tmp_path, 256)
    assert large - small < 2 * 1024, f"resident size grew by {small} KB at batch 2, {large} KB at batch 256"
