"""LeNet-5 training: one SGD step on a batch of 64 (fastconv's model with algo auto / direct / im2col,
the same network on the NumPy reference kernels, PyTorch's plain loop), and one epoch of 2,560 images
at batch 64 (fastconv's fit, the reference, PyTorch)."""
import pytest

from fastconv.benchmarks import cases as catalogue

_CASES = {case.kind: case for case in catalogue.lenet_cases()}


def _params(kind):
    return [pytest.param(*pair, id=name) for pair, name in catalogue.suite_parameters([_CASES[kind]])]


@pytest.mark.parametrize("case, impl", _params("lenet5-step"))
def test_lenet5_step(run_case, case, impl):
    run_case(case, impl)


@pytest.mark.parametrize("case, impl", _params("lenet5-epoch"))
def test_lenet5_epoch(run_case, case, impl):
    run_case(case, impl)
