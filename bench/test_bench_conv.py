"""conv2d forward and backward (dx, dw, db) on the issue's shapes and a tiny per-call-overhead case,
for fastconv direct, fastconv im2col, the NumPy reference and PyTorch; and thread scaling (1 vs 2
threads, forward + backward) on vgg-ish."""
import pytest

from fastconv.benchmarks import cases as catalogue

_CASES = catalogue.conv_cases()


def _params(kind):
    cases = [case for case in _CASES if case.kind == kind]
    return [pytest.param(*pair, id=name) for pair, name in catalogue.suite_parameters(cases)]


@pytest.mark.parametrize("case, impl", _params("conv2d-fwd"))
def test_conv2d_fwd(run_case, case, impl):
    run_case(case, impl)


@pytest.mark.parametrize("case, impl", _params("conv2d-bwd"))
def test_conv2d_bwd(run_case, case, impl):
    run_case(case, impl)


@pytest.mark.parametrize("case, impl", [pytest.param(*pair, id=name)
                                        for pair, name in catalogue.suite_parameters(catalogue.thread_cases())])
def test_conv2d_threads(run_case, case, impl):
    run_case(case, impl)
