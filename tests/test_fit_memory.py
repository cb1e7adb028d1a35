"""Full-MNIST epochs in bounded memory: fit (and its per-epoch validation) allocates no copy of the
training set, only the shuffled index and batch-sized buffers."""
import tracemalloc

import numpy as np

from fastconv import Sequential, layers, optim


def test_fit_allocates_a_bounded_working_set_not_copies_of_the_data():
    rng = np.random.default_rng(0)
    count = 6000
    x = rng.random((count, 1, 28, 28), dtype=np.float32)  # 18.8 MB, as datasets.load_mnist returns it
    y = rng.integers(0, 10, count)
    model = Sequential([layers.MaxPool2D(4), layers.Flatten(), layers.Dense(10)], input_shape=(1, 28, 28),
                       seed=0).build()
    model.fit(x[:256], y[:256], epochs=1, batch_size=64, optimizer=optim.SGD(lr=0.01), verbose=0)  # warm caches
    tracemalloc.start()
    try:
        model.fit(x, y, epochs=2, batch_size=64, optimizer=optim.SGD(lr=0.01), verbose=0,
                  validation_data=(x[:3000], y[:3000]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one shuffled index (8 bytes per sample) plus batch-sized buffers; a copy of x would be x.nbytes
    assert peak < 8 * count + 4 * 2**20, f"fit's peak allocation {peak / 2**20:.1f} MiB for {x.nbytes / 2**20:.1f} MiB of data"
