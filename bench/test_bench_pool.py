"""max_pool2d and avg_pool2d, forward and backward, on LeNet-5's pooling shapes (2x2, batch 64),
for fastconv, the NumPy reference and PyTorch."""
import pytest

from fastconv.benchmarks import cases as catalogue

_CASES = catalogue.pool_cases()


def _params(kind):
    cases = [case for case in _CASES if case.kind == kind]
    return [pytest.param(*pair, id=name) for pair, name in catalogue.suite_parameters(cases)]


@pytest.mark.parametrize("case, impl", _params("max_pool2d-fwd"))
def test_max_pool2d_fwd(run_case, case, impl):
    run_case(case, impl)


@pytest.mark.parametrize("case, impl", _params("max_pool2d-bwd"))
def test_max_pool2d_bwd(run_case, case, impl):
    run_case(case, impl)


@pytest.mark.parametrize("case, impl", _params("avg_pool2d-fwd"))
def test_avg_pool2d_fwd(run_case, case, impl):
    run_case(case, impl)


@pytest.mark.parametrize("case, impl", _params("avg_pool2d-bwd"))
def test_avg_pool2d_bwd(run_case, case, impl):
    run_case(case, impl)
