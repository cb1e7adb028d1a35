"""Batch inference over Dask: model.predict / model.evaluate of a dask.array (fastconv.dask).

One LocalCluster with 2 process workers serves the whole module (it takes ~2 s to start); the
results must equal the in-memory ones, and the task graph must hold the model once.
"""
import pickle

import numpy as np
import pytest

from fastconv import models

dask = pytest.importorskip("dask", reason="the fastconv[dask] extra (dask[array], distributed) is not installed")
da = pytest.importorskip("dask.array", reason="the fastconv[dask] extra (dask[array], distributed) is not installed")
distributed = pytest.importorskip("distributed", reason="the fastconv[dask] extra is not installed")
from dask.core import get_dependencies  # noqa: E402

from fastconv import dask as fastconv_dask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def model():
    return models.lenet5(seed=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((300, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 300)


def test_predict_on_process_workers_equals_numpy(client, model, data):
    x, _ = data
    lazy = model.predict(da.from_array(x, chunks=(70, 1, 28, 14)), batch_size=32)  # uneven, split along w too
    assert isinstance(lazy, da.Array) and lazy.shape == (300, 10) and lazy.dtype == np.float32
    with distributed.get_task_stream(client) as stream:
        result = lazy.compute()
    np.testing.assert_allclose(result, model.predict(x), rtol=1e-5, atol=1e-7)
    blocks = [task for task in stream.data if task["key"][0].startswith("_predict_block")]
    assert len(blocks) == 5 and len({task["worker"] for task in blocks}) == 2  # both workers scored blocks


def test_evaluate_on_process_workers_equals_numpy(client, model, data):
    x, y = data
    expected = model.evaluate(x, y)
    for labels in (y, da.from_array(y, chunks=90)):  # NumPy labels, and dask labels chunked unlike x
        loss, accuracy = model.evaluate(da.from_array(x, chunks=64), labels)
        assert isinstance(loss, da.Array) and loss.shape == ()
        np.testing.assert_allclose(dask.compute(loss, accuracy), expected, rtol=1e-6)


def test_the_model_is_one_graph_key_every_block_depends_on(model, data):
    x, y = data
    for lazy in (model.predict(da.from_array(x, chunks=50)), model.evaluate(da.from_array(x, chunks=50), y)[0]):
        (optimized,) = dask.optimize(lazy)
        graph = dict(optimized.__dask_graph__())
        model_keys = [key for key in graph if str(key).startswith("fastconv-model-")]
        assert len(model_keys) == 1
        block_keys = [key for key in graph if isinstance(key, tuple) and "_block" in key[0]]
        assert len(block_keys) == 6
        model_bytes = len(pickle.dumps(graph[model_keys[0]]))
        assert model_bytes > 4 * model.count_params()  # the weights themselves travel in this key
        for key in block_keys:
            assert model_keys[0] in get_dependencies(graph, key)
            assert len(pickle.dumps(graph[key])) < 4096  # a block's task refers to the model, never holds it


def test_local_scheduler_and_later_training_do_not_change_a_lazy_result(model, data):
    x, _ = data
    expected = model.predict(x[:40])
    lazy = model.predict(da.from_array(x[:40], chunks=16))
    trained = models.lenet5(seed=1)
    model_params = [p.copy() for p in model.parameters()]
    for p, q in zip(model.parameters(), trained.parameters()):
        p[...] = q  # the model changes after predict returned
    try:
        np.testing.assert_allclose(lazy.compute(scheduler="threads"), expected, rtol=1e-5, atol=1e-7)
    finally:
        for p, saved in zip(model.parameters(), model_params):
            p[...] = saved


def test_npy_shards_are_scored_lazily(client, model, data, tmp_path):
    x, y = data
    for i, (begin, end) in enumerate(((0, 120), (120, 200), (200, 300))):
        np.save(tmp_path / f"shard-{i:03d}.npy", x[begin:end])
    images = fastconv_dask.from_npy_files(tmp_path)
    assert images.shape == x.shape and images.chunks[0] == (120, 80, 100)
    np.testing.assert_allclose(model.predict(images).compute(), model.predict(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dask.compute(*model.evaluate(images, y)), model.evaluate(x, y), rtol=1e-6)
    np.save(tmp_path / "shard-003.npy", x[:5, :, :14])
    with pytest.raises(ValueError, match="shard-003.npy"):
        fastconv_dask.from_npy_files(tmp_path)
    with pytest.raises(ValueError, match="source: no .npy files"):
        fastconv_dask.from_npy_files(tmp_path / "empty-*.npy")


def test_bad_dask_input_is_refused_clearly(model, data):
    x, y = data
    with pytest.raises(ValueError, match=r"expects inputs of shape"):
        model.predict(da.zeros((10, 1, 28, 27), chunks=5))
    with pytest.raises(TypeError, match="x must hold numbers"):
        model.predict(da.from_array(np.array([["a"] * 4] * 3)))
    with pytest.raises(ValueError, match="labels have shape"):
        model.evaluate(da.from_array(x, chunks=100), y[:10])
    with pytest.raises(TypeError, match="labels must be integer"):
        model.evaluate(da.from_array(x, chunks=100), y.astype(np.float32))
