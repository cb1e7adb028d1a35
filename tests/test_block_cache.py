"""The block cache NumPy allocates from inside fit (src_c/block_cache.c through _kernels.cached_arrays):
freed blocks come back for the next array of their size, live arrays are never handed out twice, arrays
outlive the scope, and fit's results are those of the same steps run without it."""
import threading

import numpy as np
import pytest

from fastconv import _kernels, models, optim
from fastconv.callbacks import Callback

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

CACHE = "fastconv_block_cache"


def test_arrays_inside_take_the_cache_and_freed_blocks_come_back():
    outside = get_handler_name()
    with _kernels.cached_arrays():
        assert get_handler_name() == CACHE
        first = np.empty(50_000, np.float32)
        address = first.ctypes.data
        assert address % 64 == 0
        del first
        second = np.empty(50_000, np.float32)
        assert second.ctypes.data == address
        second[:] = 7
        del second
        zeros = np.zeros(50_000, np.float32)
        assert zeros.ctypes.data == address and not zeros.any()
        assert _kernels.block_cache_stats()["open_count"] >= 1
    assert get_handler_name() == outside
    assert get_handler_name(zeros) == CACHE
    assert _kernels.block_cache_stats()["kept_blocks"] == 0


def test_live_arrays_keep_their_contents_and_outlive_the_scope():
    rng = np.random.default_rng(0)
    live = []
    with _kernels.cached_arrays():
        for step in range(400):
            size = int(rng.choice([10, 20_000, 40_000, 300_000]))
            array = np.full(size, step, np.int32)
            if rng.random() < 0.3:
                live.append(array)
            elif live and rng.random() < 0.5:
                live.pop(int(rng.integers(len(live))))
        grown = np.arange(30_000, dtype=np.int64)
        grown.resize(90_000, refcheck=False)  # realloc through the cache
    for array in live:
        assert (array == array[0]).all()
    assert (grown[:30_000] == np.arange(30_000)).all() and not grown[30_000:].any()


def test_threads_use_the_cache_at_once():
    errors = []

    def work(mark):
        with _kernels.cached_arrays():
            for _ in range(300):
                array = np.full(70_000, mark, np.float64)
                if not (array == mark).all():
                    errors.append(mark)

    threads = [threading.Thread(target=work, args=(mark,)) for mark in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _kernels.block_cache_stats()["open_count"] == 0


@pytest.mark.parametrize("batch_size", [32, 50])
def test_fit_runs_its_batches_in_the_cache_with_the_results_of_plain_steps(batch_size):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((200, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 200)
    fitted, stepped = models.lenet5(seed=3), models.lenet5(seed=3)
    handlers = []

    class Spy(Callback):
        def on_train_batch_end(self, step, logs):
            handlers.append(get_handler_name())

    fitted.fit(x, y, epochs=2, batch_size=batch_size, shuffle=False, verbose=0, callbacks=[Spy()],
               optimizer=optim.SGD(lr=0.05, momentum=0.9))
    stepped.optimizer = optim.SGD(lr=0.05, momentum=0.9)
    for _ in range(2):
        for begin in range(0, len(x), batch_size):
            stepped.train_step(x[begin:begin + batch_size], y[begin:begin + batch_size])
    assert set(handlers) == {CACHE}
    for mine, theirs in zip(fitted.parameters(), stepped.parameters()):
        np.testing.assert_array_equal(mine, theirs)
