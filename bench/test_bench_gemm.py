"""fastconv's GEMM (fastconv.functional.gemm) against numpy.matmul, float32: square 256..2048 and the
im2col GEMM of every convolution shape (M = out channels, N = out pixels of one image, K = C*R*S)."""
import pytest

from fastconv import benchmark as fcb


@pytest.mark.parametrize("case, impl", [pytest.param(*pair, id=name)
                                        for pair, name in fcb.suite_parameters(fcb.gemm_cases())])
def test_gemm(run_case, case, impl):
    run_case(case, impl)
