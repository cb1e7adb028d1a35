"""fastconv.gemm: a @ b against numpy in float64 on many shapes and layouts, results independent of the
layout and of the thread count, and a clear error naming the argument for every bad input."""
import numpy as np
import pytest

import fastconv as fc

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-13}

# M x N x K: LeNet's and the benchmark's im2col GEMMs, edges of every tile size (MR 4/6, NR 8..64),
# one row / column / depth, and empty operands
SHAPES = [(6, 784, 25), (16, 100, 150), (50, 121, 225), (64, 256, 288), (1, 1, 1), (1, 65, 3), (7, 1, 9),
          (5, 17, 1), (13, 63, 31), (19, 129, 70), (6, 64, 300), (24, 48, 5), (0, 5, 3), (4, 0, 3), (4, 5, 0)]


def operands(m, n, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def assert_matches_float64(product, a, b):
    """product == a @ b up to rounding: the error bound scales with sum |a_ip b_pj| per element."""
    expected = a.astype(np.float64) @ b.astype(np.float64)
    bound = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert product.shape == expected.shape and product.dtype == a.dtype
    assert np.all(np.abs(product - expected) <= RTOL[product.dtype] * bound + 1e-30), \
        f"max error {np.max(np.abs(product - expected), initial=0)}"


@pytest.fixture
def threads():
    saved = fc.get_num_threads()
    yield fc.set_num_threads
    fc.set_num_threads(saved)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, n, k", SHAPES)
def test_gemm_equals_float64_product(m, n, k, dtype):
    a, b = operands(m, n, k, dtype)
    product = fc.gemm(a, b)
    assert product.flags.c_contiguous and product.flags.owndata
    assert_matches_float64(product, a, b)


@pytest.mark.parametrize("simd", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("m, n, k", SHAPES[:4])
def test_gemm_equals_float64_product_at_every_simd_level(m, n, k, simd, monkeypatch):
    monkeypatch.setenv("FASTCONV_SIMD", simd)   # a level the CPU lacks runs the best it has
    a, b = operands(m, n, k, np.float32)
    assert_matches_float64(fc.gemm(a, b), a, b)


def layouts(array):
    """array as views of other layouts (same values): transposed storage, a row / column stride, a
    reversed axis, an unaligned copy, the other byte order, a Python list."""
    transposed = np.asfortranarray(array)
    spaced = np.zeros((array.shape[0], array.shape[1] * 3 + 1), array.dtype)
    spaced[:, 1::3] = array
    reversed_rows = np.ascontiguousarray(array[::-1])[::-1]
    raw = np.zeros(array.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(array.dtype).reshape(array.shape)
    unaligned[...] = array
    return {"fortran": transposed, "column-stride": spaced[:, 1::3], "reversed-rows": reversed_rows,
            "unaligned": unaligned, "byte-swapped": array.astype(array.dtype.newbyteorder()),
            "list": array.tolist()}


# ... and B read in place (contiguous rows) against B packed (other layouts) up to one MC block of A
# (144 rows with f32 AVX-512) and past it, right edges of a panel, and A's last panel of 1-5 rows
# packed from contiguous rows (with K not a multiple of 4)
LAYOUT_SHAPES = [(6, 784, 25), (16, 100, 150), (19, 129, 70), (1, 65, 3), (7, 1, 9), (64, 256, 288),
                 (50, 121, 225), (144, 70, 33), (145, 70, 33), (23, 100, 10), (4, 9, 11)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, n, k", LAYOUT_SHAPES)
def test_gemm_result_does_not_depend_on_the_operands_layout(m, n, k, dtype):
    a, b = operands(m, n, k, dtype)
    expected = fc.gemm(a, b)
    for operand in ("a", "b"):
        for name, view in layouts(a if operand == "a" else b).items():
            if operand == "a" and name in ("byte-swapped", "list"):
                continue   # a fixes the result's dtype (a list is float64; a swapped one is refused)
            args = (view, b) if operand == "a" else (a, view)
            assert np.array_equal(fc.gemm(*args), expected), f"{operand} {name}"


def test_gemm_casts_b_to_a_dtype():
    a, b = operands(9, 33, 17, np.float32)
    assert fc.gemm(a, b.astype(np.float64)).dtype == np.float32
    assert np.array_equal(fc.gemm(a, b.astype(np.float64)), fc.gemm(a, b))
    assert np.array_equal(fc.gemm(a.astype(np.float64), b), fc.gemm(a.astype(np.float64), b.astype(np.float64)))


def test_gemm_leaves_its_operands_alone():
    a, b = operands(16, 100, 150, np.float32)
    a_before, b_before = a.copy(), b.copy()
    product = fc.gemm(a, b)
    assert np.array_equal(a, a_before) and np.array_equal(b, b_before)
    assert not np.shares_memory(product, a) and not np.shares_memory(product, b)


@pytest.mark.parametrize("m, n, k", [(6, 784, 25), (50, 121, 225), (64, 256, 288), (128, 64, 576), (300, 200, 70)])
def test_gemm_result_does_not_depend_on_the_thread_count(m, n, k, threads):
    a, b = operands(m, n, k, np.float32)
    threads(1)
    one = fc.gemm(a, b)
    threads(2)
    assert np.array_equal(fc.gemm(a, b), one)
    assert np.array_equal(fc.gemm(np.asfortranarray(a), b.T.copy().T), one)


# Depths at and past one KC step (256; 512 with f32 AVX-512), with A past one MC block (rows split
# between threads, B packed and shared) and within it (B's panels split, or B read in place)
KC_SHAPES = [(150, 130, 512), (150, 130, 513), (200, 70, 1025), (12, 200, 512), (100, 64, 600), (7, 90, 257)]


@pytest.mark.parametrize("simd", ["avx2", "avx512"])
@pytest.mark.parametrize("m, n, k", KC_SHAPES)
def test_gemm_across_depth_steps_equals_float64_product_on_any_thread_count(m, n, k, simd, threads,
                                                                             monkeypatch):
    monkeypatch.setenv("FASTCONV_SIMD", simd)   # a level the CPU lacks runs the best it has
    a, b = operands(m, n, k, np.float32)
    threads(1)
    one = fc.gemm(a, b)
    assert_matches_float64(one, a, b)
    threads(2)
    assert np.array_equal(fc.gemm(a, b), one)


A = np.ones((3, 4), np.float32)
B = np.ones((4, 5), np.float32)
BAD_INPUTS = [
    ("a-int", lambda: fc.gemm(A.astype(np.int32), B), TypeError, r"\ba\b.*dtype"),
    ("a-float16", lambda: fc.gemm(A.astype(np.float16), B), TypeError, r"\ba\b.*dtype"),
    ("a-byte-swapped", lambda: fc.gemm(A.astype(">f4"), B), TypeError, r"\ba\b.*dtype"),
    ("b-int", lambda: fc.gemm(A, B.astype(np.int64)), TypeError, r"\bb\b.*floating"),
    ("b-complex", lambda: fc.gemm(A, B.astype(np.complex64)), TypeError, r"\bb\b.*floating"),
    ("a-1d", lambda: fc.gemm(A[0], B), ValueError, r"\ba\b must be 2-D"),
    ("a-3d", lambda: fc.gemm(A[None], B), ValueError, r"\ba\b must be 2-D"),
    ("b-1d", lambda: fc.gemm(A, B[:, 0]), ValueError, r"\bb\b must be 2-D"),
    ("b-rows", lambda: fc.gemm(A, B[:3]), ValueError, r"\bb\b must have 4 rows"),
    ("b-rows-transposed-view", lambda: fc.gemm(A, B.T), ValueError, r"\bb\b must have 4 rows"),
    ("a-ragged", lambda: fc.gemm([[1.0, 2.0], [3.0]], B), ValueError, r"\ba\b"),
    ("a-string", lambda: fc.gemm("ab", B), TypeError, r"\ba\b.*dtype"),
    ("b-none", lambda: fc.gemm(A, None), TypeError, r"\bb\b"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS])
def test_gemm_refuses_bad_input_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
