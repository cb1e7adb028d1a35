"""fastconv.conv2d_plan: which kernel each pass runs (src_c/conv_plan.c decides, for the kernels and for Python).

The table pins the kernel of every named benchmark shape, forward, grad_x and grad_w, at every SIMD level
and dtype, so a rule change that silently routes a layer to a slower kernel fails here and has to be
made on purpose (with its measurement). Levels this CPU lacks are skipped.
"""
import numpy as np
import pytest

import fastconv as fc

LEVELS = tuple(fc.build_info()["simd_available"])

# name: (x_shape, w_shape, stride, padding) -- fastconv.benchmark's conv rows and its per-call-overhead one
SHAPES = {
    "lenet-c1": ((64, 1, 28, 28), (6, 1, 5, 5), 1, 2),
    "lenet-c3": ((64, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    "seed000-c2": ((100, 25, 13, 13), (50, 25, 3, 3), 1, 0),
    "seed002-c4": ((64, 64, 10, 10), (128, 64, 3, 3), 1, 0),
    "vgg-ish": ((32, 64, 32, 32), (128, 64, 3, 3), 1, 1),
    "strided": ((32, 32, 31, 31), (64, 32, 3, 3), 2, 1),
    "tiny": ((1, 1, 8, 8), (1, 1, 3, 3), 1, 0),
}

# (shape, level, dtype): (forward, grad_x, grad_w) of algo="auto"
PINNED = {
    ("lenet-c1", "scalar", "float32"): ("direct.gather", "direct.gather", "direct.dot"),
    ("lenet-c3", "scalar", "float32"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("seed000-c2", "scalar", "float32"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("seed002-c4", "scalar", "float32"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("vgg-ish", "scalar", "float32"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("strided", "scalar", "float32"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("tiny", "scalar", "float32"): ("direct.gather", "direct.gather", "direct.dot"),
    ("lenet-c1", "scalar", "float64"): ("direct.gather", "direct.gather", "direct.dot"),
    ("lenet-c3", "scalar", "float64"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("seed000-c2", "scalar", "float64"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("seed002-c4", "scalar", "float64"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("vgg-ish", "scalar", "float64"): ("im2col.fused", "im2col.chunked", "im2col.chunked"),
    ("strided", "scalar", "float64"): ("im2col.fused", "im2col.by_image", "im2col.chunked"),
    ("tiny", "scalar", "float64"): ("direct.gather", "direct.gather", "direct.dot"),
    ("lenet-c1", "avx2", "float32"): ("direct.wvec", "direct.wrows", "direct.wvgw"),
    ("lenet-c3", "avx2", "float32"): ("direct.kvec", "direct.wvec", "direct.kvgw"),
    ("seed000-c2", "avx2", "float32"): ("direct.kvec", "im2col.by_image", "direct.kvgw"),
    ("seed002-c4", "avx2", "float32"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("vgg-ish", "avx2", "float32"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("strided", "avx2", "float32"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("tiny", "avx2", "float32"): ("direct.gather_simd", "direct.gather_simd", "direct.dot_simd"),
    ("lenet-c1", "avx2", "float64"): ("direct.wvec", "direct.wrows", "direct.kvgw"),
    ("lenet-c3", "avx2", "float64"): ("direct.kvec", "direct.wvec", "direct.kvgw"),
    ("seed000-c2", "avx2", "float64"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("seed002-c4", "avx2", "float64"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("vgg-ish", "avx2", "float64"): ("im2col.fused", "im2col.chunked", "direct.kvgw"),
    ("strided", "avx2", "float64"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("tiny", "avx2", "float64"): ("direct.gather_simd", "direct.gather_simd", "direct.wvgw"),
    ("lenet-c1", "avx512", "float32"): ("direct.wvec", "direct.wrows", "direct.wvgw"),
    ("lenet-c3", "avx512", "float32"): ("direct.kvec", "direct.wvec", "direct.kvgw"),
    ("seed000-c2", "avx512", "float32"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("seed002-c4", "avx512", "float32"): ("im2col.implicit", "im2col.by_image", "direct.kvgw"),
    ("vgg-ish", "avx512", "float32"): ("im2col.implicit", "im2col.as_forward", "direct.kvgw"),
    ("strided", "avx512", "float32"): ("im2col.implicit", "im2col.by_image", "direct.kvgw"),
    ("tiny", "avx512", "float32"): ("direct.gather_simd", "direct.gather_simd", "direct.dot_simd"),
    ("lenet-c1", "avx512", "float64"): ("direct.wvec", "direct.wrows", "direct.wvgw"),
    ("lenet-c3", "avx512", "float64"): ("direct.kvec", "direct.wvec", "direct.kvgw"),
    ("seed000-c2", "avx512", "float64"): ("im2col.fused", "im2col.by_image", "direct.kvgw"),
    ("seed002-c4", "avx512", "float64"): ("im2col.implicit", "im2col.by_image", "direct.kvgw"),
    ("vgg-ish", "avx512", "float64"): ("im2col.implicit", "im2col.as_forward", "direct.kvgw"),
    ("strided", "avx512", "float64"): ("im2col.implicit", "im2col.by_image", "direct.kvgw"),
    ("tiny", "avx512", "float64"): ("direct.gather_simd", "direct.gather_simd", "direct.dot_simd"),
}


@pytest.mark.parametrize("name, level, dtype", sorted(PINNED))
def test_named_shapes_run_their_pinned_kernels(name, level, dtype, numerics):
    if level not in LEVELS:
        pytest.skip(f"this CPU has no {level}")
    x_shape, w_shape, stride, padding = SHAPES[name]
    with numerics.simd_env(level):
        plan = fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype)
    assert tuple(plan) == PINNED[name, level, dtype]
    assert (plan.forward, plan.grad_x, plan.grad_w) == tuple(plan)


def _sweep():
    """(x_shape, w_shape, stride, padding) covering every kernel: the named shapes plus a few edges."""
    yield from SHAPES.values()
    yield (1, 3, 20, 20), (8, 3, 3, 3), 1, 1                 # one image: no per-image kernels
    yield (4, 1, 9, 40), (2, 1, 3, 3), (1, 2), 0             # stride_w 2, few channels
    yield (3, 2, 12, 12), (3, 2, 9, 9), 1, 0                 # kernel_w 9: past the SIMD dot tasks
    yield (2, 4, 5, 70), (4, 4, 1, 40), 1, 0                 # kernel_w 40: past the SIMD gather
    yield (2, 12, 16, 16), (9, 12, 3, 3), 1, (4, 4)          # padding > kernel - 1


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_explicit_algos_plan_their_own_family(level, dtype, numerics):
    with numerics.simd_env(level):
        for x_shape, w_shape, stride, padding in _sweep():
            for algo in ("direct", "im2col"):
                plan = fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo=algo)
                assert all(kernel.startswith(algo + ".") for kernel in plan), (x_shape, w_shape, algo, plan)
            auto = fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype)
            per_algo = {algo: fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo=algo)
                        for algo in ("direct", "im2col")}
            for field, kernel in auto._asdict().items():   # auto takes one family's own choice
                assert kernel == getattr(per_algo[kernel.split(".")[0]], field)


def test_every_kernel_name_is_documented(numerics):
    names = set()
    for level in LEVELS:
        with numerics.simd_env(level):
            for x_shape, w_shape, stride, padding in _sweep():
                for dtype in ("float32", "float64"):
                    for algo in ("auto", "direct", "im2col"):
                        names.update(fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype, algo=algo))
    assert {"direct.gather", "direct.scatter", "direct.dot", "im2col.fused", "im2col.chunked"} <= names
    for name in names:
        assert f'"{name}"' in fc.conv2d_plan.__doc__, name


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", ["lenet-c1", "lenet-c3", "strided", "tiny"])
def test_auto_runs_the_planned_family(name, level, numerics):
    """algo="auto" gives, bit for bit, the result of the explicit algo its plan names (so the plan is what
    runs: the two families round differently)."""
    x_shape, w_shape, stride, padding = SHAPES[name]
    x_shape = (min(x_shape[0], 4),) + x_shape[1:]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    weight = rng.standard_normal(w_shape).astype(np.float32)
    with numerics.simd_env(level):
        plan = fc.conv2d_plan(x.shape, weight.shape, stride, padding)
        y = fc.conv2d(x, weight, stride=stride, padding=padding)
        grad_y = rng.standard_normal(y.shape).astype(np.float32)
        grads = fc.conv2d_backward(grad_y, x, weight, stride, padding)
        algo = {field: kernel.split(".")[0] for field, kernel in plan._asdict().items()}
        y_family = fc.conv2d(x, weight, stride=stride, padding=padding, algo=algo["forward"])
        gx_family = fc.conv2d_backward(grad_y, x, weight, stride, padding, algo=algo["grad_x"])[0]
        gw_family = fc.conv2d_backward(grad_y, x, weight, stride, padding, algo=algo["grad_w"])[1:]
    assert y.tobytes() == y_family.tobytes()
    assert grads[0].tobytes() == gx_family.tobytes()
    assert grads[1].tobytes() == gw_family[0].tobytes() and grads[2].tobytes() == gw_family[1].tobytes()


def test_plan_does_not_depend_on_the_thread_count():
    saved = fc.get_num_threads()
    try:
        plans = []
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            plans.append([fc.conv2d_plan(*args) for args in _sweep()])
    finally:
        fc.set_num_threads(saved)
    assert plans[0] == plans[1] == plans[2]


def test_dtype_spellings_agree():
    x_shape, w_shape, stride, padding = SHAPES["lenet-c3"]
    for spelling in ("float64", np.float64, np.dtype("float64"), "f8"):
        assert fc.conv2d_plan(x_shape, w_shape, stride, padding, spelling) == \
            fc.conv2d_plan(x_shape, w_shape, stride, padding, "float64")


def test_batch_zero_is_accepted_like_conv2d():
    assert all(isinstance(kernel, str) for kernel in fc.conv2d_plan((0, 3, 8, 8), (4, 3, 3, 3)))


@pytest.mark.parametrize("args, kwargs, error, word", [
    (((1, 3, 8), (4, 3, 3, 3)), {}, ValueError, "x_shape"),
    (("abcd", (4, 3, 3, 3)), {}, ValueError, "x_shape"),
    (((1, 3, 8, 8), (4, 3, 3)), {}, ValueError, "w_shape"),
    (((1, 3, 8.0, 8), (4, 3, 3, 3)), {}, TypeError, "x_shape"),
    (((1, 3, 8, 8), (4, 3, True, 3)), {}, TypeError, "w_shape"),
    (((-1, 3, 8, 8), (4, 3, 3, 3)), {}, ValueError, "x_shape"),
    (((1, 3, 8, 8), (4, 2, 3, 3)), {}, ValueError, "weight"),
    (((1, 3, 8, 8), (0, 3, 3, 3)), {}, ValueError, ">= 1"),
    (((1, 3, 2, 8), (4, 3, 3, 3)), {}, ValueError, "larger than the padded input"),
    (((1, 3, 8, 8), (4, 3, 3, 3), 0), {}, ValueError, "stride"),
    (((1, 3, 8, 8), (4, 3, 3, 3), (1, 2, 3)), {}, ValueError, "stride"),
    (((1, 3, 8, 8), (4, 3, 3, 3), 1, -1), {}, ValueError, "padding"),
    (((1, 3, 8, 8), (4, 3, 3, 3), 1, 1.5), {}, TypeError, "padding"),
    (((1, 3, 8, 8), (4, 3, 3, 3)), {"dtype": "int32"}, TypeError, "dtype"),
    (((1, 3, 8, 8), (4, 3, 3, 3)), {"dtype": "float16"}, TypeError, "dtype"),
    (((1, 3, 8, 8), (4, 3, 3, 3)), {"dtype": "no such type"}, TypeError, "dtype"),
    (((1, 3, 8, 8), (4, 3, 3, 3)), {"dtype": None}, TypeError, "dtype"),
    (((1, 3, 8, 8), (4, 3, 3, 3)), {"algo": "fft"}, ValueError, "algo"),
    (((1, 3, 8, 8), (4, 3, 3, 3)), {"algo": ["direct"]}, ValueError, "algo"),
])
def test_bad_arguments_raise_named_errors(args, kwargs, error, word):
    with pytest.raises(error, match=word):
        fc.conv2d_plan(*args, **kwargs)


def test_unknown_simd_level_is_refused(numerics):
    with numerics.simd_env("avx1024"), pytest.raises(ValueError, match="FASTCONV_SIMD"):
        fc.conv2d_plan((1, 3, 8, 8), (4, 3, 3, 3))


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(LEVELS), reason="needs AVX2 and AVX-512")
def test_rows_narrower_than_an_avx512_vector_run_wvec_at_avx2_width(numerics):
    """LeNet C3's grad_x (rows of 14 < 16 AVX-512 lanes) plans wvec at AVX-512 and runs AVX2's kernel:
    the same bits as at the AVX2 level."""
    x_shape, w_shape, stride, padding = SHAPES["lenet-c3"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4,) + x_shape[1:]).astype(np.float32)
    weight = rng.standard_normal(w_shape).astype(np.float32)
    grad_y = rng.standard_normal((4, w_shape[0], 10, 10)).astype(np.float32)
    grads = {}
    for level in ("avx2", "avx512"):
        with numerics.simd_env(level):
            assert fc.conv2d_plan(x.shape, weight.shape, stride, padding).grad_x == "direct.wvec"
            grads[level] = fc.conv2d_backward(grad_y, x, weight, stride, padding)[0]
    assert grads["avx512"].tobytes() == grads["avx2"].tobytes()
    numerics.assert_close(grads["avx512"], fc.reference.conv2d_backward(grad_y, x, weight, stride, padding)[0])


def test_grad_x_with_one_image_per_gemm_runs_by_image_at_any_thread_count(numerics):
    """An image whose column matrix fills im2col's scratch budget alone, in a batch of 8: grad_x runs image
    by image, equal to the reference and bit for bit the same with 1 and 3 threads."""
    x_shape, w_shape = (8, 16, 64, 64), (48, 16, 3, 3)   # K = 3 C: outside im2col.as_forward's bounds
    assert fc.conv2d_plan(x_shape, w_shape, 1, 1, algo="im2col").grad_x == "im2col.by_image"
    assert fc.conv2d_plan((7,) + x_shape[1:], w_shape, 1, 1, algo="im2col").grad_x == "im2col.chunked"
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    weight = rng.standard_normal(w_shape).astype(np.float32)
    grad_y = rng.standard_normal(x_shape[:1] + w_shape[:1] + x_shape[2:]).astype(np.float32)
    saved, results = fc.get_num_threads(), []
    try:
        for threads in (1, 3):
            fc.set_num_threads(threads)
            results.append(fc.conv2d_backward(grad_y, x, weight, 1, 1, algo="im2col")[0])
    finally:
        fc.set_num_threads(saved)
    assert results[0].tobytes() == results[1].tobytes()
    numerics.assert_close(results[0], fc.reference.conv2d_backward(grad_y, x, weight, 1, 1)[0])


# Shapes whose per-thread work is cut in more than one way: im2col's grad_x by image in several blocks of
# output rows per image (stride 1 with K > C, outside im2col.as_forward's bounds, and stride 2), and kvgw's tasks split between threads inside a group of output
# channels (one group: K of 16 at AVX-512 float32) or across groups, with and without a padded copy.
SPLIT_SHAPES = {
    "by-image-row-blocks": (((5, 40, 20, 21), (48, 40, 3, 3), 1, 1), "grad_x", "im2col.by_image"),
    "by-image-row-blocks-strided": (((3, 40, 41, 41), (16, 40, 3, 3), 2, 1), "grad_x", "im2col.by_image"),
    "kvgw-one-group": (((3, 7, 9, 10), (16, 7, 3, 3), 1, 1), "grad_w", "direct.kvgw"),
    "kvgw-groups-unpadded": (((4, 5, 11, 9), (70, 5, 3, 2), (2, 1), 0), "grad_w", "direct.kvgw"),
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(SPLIT_SHAPES))
def test_split_work_gives_the_same_bits_at_any_thread_count(name, dtype, level, numerics):
    """The backward of these shapes runs the pinned kernel (at AVX2 and AVX-512; kvgw has no scalar form),
    equals the reference, and is bit for bit the same with 1, 2 and 3 threads."""
    (x_shape, w_shape, stride, padding), field, kernel = SPLIT_SHAPES[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    grad_y = rng.standard_normal(fc.reference.conv2d(x, weight, None, stride, padding).shape).astype(dtype)
    saved, results = fc.get_num_threads(), []
    with numerics.simd_env(level):
        if level != "scalar" or field == "grad_x":
            assert getattr(fc.conv2d_plan(x_shape, w_shape, stride, padding, dtype), field) == kernel
        try:
            for threads in (1, 2, 3):
                fc.set_num_threads(threads)
                results.append(fc.conv2d_backward(grad_y, x, weight, stride, padding))
        finally:
            fc.set_num_threads(saved)
    for grads in results[1:]:
        assert all(a.tobytes() == b.tobytes() for a, b in zip(results[0], grads))
    expected = fc.reference.conv2d_backward(grad_y.astype(np.float64), x.astype(np.float64), weight, stride, padding)
    for got, want in zip(results[0], expected):
        numerics.assert_close(got, want, dtype)
