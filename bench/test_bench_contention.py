"""LeNet-5 fit (one epoch of 2,560 images at batch 64) on an idle machine and beside one CPU-bound
process that the test starts and stops (fastconv.benchmarks.contention): compare the two rows of the
group "lenet5-epoch contention" (`fastconv bench --contention` prints their ratio)."""
import pytest

from fastconv.benchmarks import cases as catalogue
from fastconv.benchmarks import contention

_CASE = catalogue.Case("lenet5-epoch", "2560img", contention.RUN)


@pytest.mark.parametrize("loaded", [False, True], ids=["idle", "beside-1-busy-process"])
def test_lenet5_fit_contention(run_case, loaded):
    if not loaded:
        run_case(_CASE, "model", group="lenet5-epoch contention")
        return
    with contention.busy_neighbour():
        run_case(_CASE, "model", group="lenet5-epoch contention")
