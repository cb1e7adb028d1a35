"""fastconv's GEMM (fastconv.functional.gemm) against numpy.matmul, float32: square 256..2048 and the
im2col GEMM of every convolution shape (M = out channels, N = out pixels of one image, K = C*R*S)."""
import pytest

from fastconv.benchmarks import cases as catalogue


@pytest.mark.parametrize("case, impl", [pytest.param(*pair, id=name)
                                        for pair, name in catalogue.suite_parameters(catalogue.gemm_cases())])
def test_gemm(run_case, case, impl):
    run_case(case, impl)
