"""Data-parallel training over MPI (fastconv.distributed, `fastconv train --distributed`).

Each test launches `mpiexec -n 2` on this machine (shared memory, and TCP on loopback standing in for
separate hosts), bounded by a timeout; all are skipped when the extra fastconv[mpi] is not installed.
Models and data are tiny so the whole module runs in a few seconds of MPI startup.
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastconv import Sequential, functional
from fastconv.distributed import threads_per_rank

pytest.importorskip("mpi4py", reason="the fastconv[mpi] extra (mpi4py, mpich) is not installed")

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec found (pip install 'fastconv[mpi]')")

TIMEOUT = 60  # seconds per launch: a hang fails the test instead of stalling the suite
# MPICH over TCP on loopback only, no shared memory between the ranks: how separate hosts talk.
TCP_LOOPBACK = {"MPIR_CVAR_NOLOCAL": "1", "MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp", "FI_TCP_IFACE": "lo"}

# Shared by the test process (the 1-process oracle) and the MPI ranks (which exec this source).
MODEL_SOURCE = textwrap.dedent('''
    import numpy as np
    from fastconv import Sequential, layers, optim

    def tiny_model(seed, dtype):
        return Sequential([layers.Conv2D(4, 3, padding=1), layers.ReLU(), layers.MaxPool2D(2), layers.Flatten(),
                           layers.Dense(3)], input_shape=(2, 6, 6), seed=seed, dtype=dtype).build()

    def tiny_data(count=53):  # 53 samples in batches of 16: the last global batch (5) splits 2 + 3
        rng = np.random.default_rng(7)
        return rng.standard_normal((count, 2, 6, 6)), rng.integers(0, 3, count)

    def train(model, distribute=None, epochs=2):
        x, y = tiny_data()
        history = model.fit(x, y, epochs=epochs, batch_size=16, optimizer=optim.SGD(lr=0.1, momentum=0.9),
                            seed=3, verbose=0, distribute=distribute, validation_data=(x[:21], y[:21]))
        return np.concatenate([p.ravel() for p in model.parameters()]), history
''')

RANK_SCRIPT = MODEL_SOURCE + textwrap.dedent('''
    import json, os, signal, sys
    from fastconv import callbacks, functional
    from fastconv.distributed import MPIStrategy, run_or_abort

    mode, out = sys.argv[1], sys.argv[2]

    class Fail(callbacks.Callback):
        """Rank 1 fails at its third step: by an exception, or killed outright."""
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2 and strategy.rank == 1:
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("injected failure")

    def main():
        if mode == "train":
            for dtype in ("float32", "float64"):
                # each rank starts from different weights: the broadcast must make them rank 0's
                params, history = train(tiny_model(seed=strategy.rank, dtype=dtype), strategy)
                np.save(f"{out}/{dtype}-rank{strategy.rank}.npy", params)
                with open(f"{out}/{dtype}-rank{strategy.rank}.json", "w") as f:
                    json.dump({"history": history, "threads": functional.get_num_threads(),
                               "local_size": strategy.local_size, "size": strategy.size}, f)
        elif mode == "kill-saving":
            model = tiny_model(seed=0, dtype="float32")
            model.save(f"{out}/model.npz")  # a good checkpoint first
            train(model, strategy, epochs=1)
            if strategy.rank == 0:
                def half_then_killed(handle, **arrays):
                    handle.write(b"PK\x03\x04 half a zip archive")
                    handle.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                np.savez = half_then_killed
                model.save(f"{out}/model.npz")
            strategy.comm.Barrier()
        else:
            model = tiny_model(seed=0, dtype="float32")
            x, y = tiny_data()
            model.fit(x, y, epochs=50, batch_size=4, verbose=0, distribute=strategy, callbacks=[Fail()])

    strategy = MPIStrategy()
    if strategy.is_chief:
        print(strategy.placement(), flush=True)
    run_or_abort(main)
''')


def _env(extra=None, omp_threads="1"):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if omp_threads is not None:
        env["OMP_NUM_THREADS"] = omp_threads
    env.update(extra or {})
    return env


# Subprocesses start here, not in the repository root, whose fastconv/ (the unbuilt source tree) would
# shadow the installed package for `python -c` and `python -m`.
OUTSIDE_TREE = os.path.dirname(os.path.abspath(__file__))


def _mpiexec(args, env, ranks=2, hosts=None):
    """Run `mpiexec -n ranks ARGS`, bounded by TIMEOUT: (CompletedProcess, seconds)."""
    command = [MPIEXEC, "-n", str(ranks)] + (["-hosts", hosts] if hosts else []) + args
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=OUTSIDE_TREE)
    return result, time.perf_counter() - start


@pytest.fixture(scope="module")
def rank_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("mpi") / "rank_script.py"
    path.write_text(RANK_SCRIPT)
    return str(path)


def _one_process(dtype):
    namespace = {}
    exec(MODEL_SOURCE, namespace)
    return namespace["train"](namespace["tiny_model"](seed=0, dtype=dtype))


@pytest.mark.parametrize("transport", ["shared memory", "tcp loopback"])
def test_two_ranks_train_the_one_process_model(rank_script, tmp_path, transport):
    tcp = transport == "tcp loopback"
    result, _ = _mpiexec([sys.executable, rank_script, "train", str(tmp_path)],
                         _env(TCP_LOOPBACK if tcp else None), hosts="127.0.0.1" if tcp else None)
    assert result.returncode == 0, result.stderr
    for dtype, rtol in (("float64", 1e-10), ("float32", 1e-4)):
        rank0, rank1 = (np.load(tmp_path / f"{dtype}-rank{r}.npy") for r in (0, 1))
        np.testing.assert_array_equal(rank0, rank1)  # replicas bit-identical after 8 steps
        expected, history = _one_process(dtype)
        assert not np.allclose(expected, _one_process_start(dtype))  # training moved the weights
        np.testing.assert_allclose(rank0, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
        figures = json.loads((tmp_path / f"{dtype}-rank1.json").read_text())
        # loss and accuracy are over the whole global batch, the same on every rank as in one process
        np.testing.assert_allclose(figures["history"]["loss"], history["loss"], rtol=rtol)
        np.testing.assert_allclose(figures["history"]["accuracy"], history["accuracy"])
        # validation: each rank scores its part (10 + 11 of 21 samples), the sums are allreduced
        np.testing.assert_allclose(figures["history"]["val_loss"], history["val_loss"], rtol=rtol)
        np.testing.assert_allclose(figures["history"]["val_accuracy"], history["val_accuracy"])
        assert figures["size"] == 2 and figures["threads"] == 1  # OMP_NUM_THREADS=1 is respected
        # MPIR_CVAR_NOLOCAL makes MPICH see each rank as on a host of its own, as separate machines are
        assert figures["local_size"] == (1 if tcp else 2)


def _one_process_start(dtype):
    namespace = {}
    exec(MODEL_SOURCE, namespace)
    model = namespace["tiny_model"](seed=0, dtype=dtype)
    return np.concatenate([p.ravel() for p in model.parameters()])


def test_threads_default_to_cores_per_local_rank(rank_script, tmp_path):
    result, _ = _mpiexec([sys.executable, rank_script, "train", str(tmp_path)], _env(omp_threads=None))
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "float32-rank0.json").read_text())
    assert figures["local_size"] == 2
    assert figures["threads"] == threads_per_rank(2)


def test_threads_per_rank_splits_the_cores():
    assert [threads_per_rank(ranks, cores=8) for ranks in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert threads_per_rank(2, cores=2) == 1


@pytest.mark.parametrize("mode,transport", [("raise", "shared memory"), ("kill", "shared memory"),
                                            ("kill", "tcp loopback")])
def test_a_failing_rank_ends_the_job_in_seconds(rank_script, tmp_path, mode, transport):
    tcp = transport == "tcp loopback"
    result, seconds = _mpiexec([sys.executable, rank_script, mode, str(tmp_path)],
                               _env(TCP_LOOPBACK if tcp else None), hosts="127.0.0.1" if tcp else None)
    assert result.returncode != 0
    assert seconds < 20, f"the job took {seconds:.1f} s to end after rank 1 failed"
    output = result.stdout + result.stderr
    if mode == "raise":
        assert "fastconv: rank 1 of 2 failed with RuntimeError: injected failure" in output
    else:
        # Rank 0 names rank 1 when its allreduce fails first; otherwise mpiexec reports a PID that the start
        # line maps to a rank. mpiexec names the first process it reaped, which on a loaded machine can be one
        # it stopped itself, so the PID must belong to the job but may be either rank's.
        named_by_rank_0 = re.search(r"fastconv: rank 0 of 2: MPI communication failed .*gone: rank 1 \(pid", output)
        placement = dict(re.findall(r"rank (\d+): pid (\d+) on ", result.stdout))
        reported = re.search(r"PID (\d+) RUNNING AT", output)
        named_by_mpiexec = reported and reported.group(1) in placement.values()
        assert sorted(placement) == ["0", "1"], output
        assert named_by_rank_0 or named_by_mpiexec, output


def test_a_rank_killed_while_saving_leaves_the_last_good_checkpoint(rank_script, tmp_path):
    result, seconds = _mpiexec([sys.executable, rank_script, "kill-saving", str(tmp_path)], _env())
    assert result.returncode != 0 and seconds < 20
    namespace = {}
    exec(MODEL_SOURCE, namespace)
    saved = Sequential.load(tmp_path / "model.npz")  # still the complete first checkpoint
    for p, q in zip(saved.parameters(), namespace["tiny_model"](seed=0, dtype="float32").parameters()):
        np.testing.assert_array_equal(p, q)
    assert [name for name in os.listdir(tmp_path) if not name.startswith(".")] == ["model.npz"]


# ---- the command line ----------------------------------------------------------------------------

def _idx(array):
    array = np.asarray(array, dtype=np.uint8)
    return gzip.compress(bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes())


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    """A small MNIST-shaped IDX directory (random images, 200 train / 100 test)."""
    directory = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 200), ("t10k", 100)):
        (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(_idx(rng.integers(0, 256, (count, 28, 28))))
        (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx(rng.integers(0, 10, count)))
    return str(directory)


def _cli(*args):
    return [sys.executable, "-m", "fastconv", "train", *args]


def test_cli_distributed_rank_zero_writes_the_figures(idx_dir, tmp_path):
    common = ["--data-dir", idx_dir, "--epochs", "1", "--batch-size", "50", "--seed", "0"]
    result, _ = _mpiexec(_cli("--distributed", *common, "--json", str(tmp_path / "r.json"),
                              "--out", str(tmp_path / "out")), _env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test accuracy") == 1 and result.stdout.count("Epoch 1/1") == 1  # rank 0 only
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["world_size"] == 2 and figures["batch_size"] == 50
    # rank 0's checkpoints only: no second writer, no temporary file left behind
    assert sorted(os.listdir(tmp_path / "out")) == ["best.npz", "checkpoint.npz", "history.json", "model.npz"]
    single = subprocess.run(_cli(*common, "--json", str(tmp_path / "one.json"), "--verbose", "0"), env=_env(),
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=OUTSIDE_TREE)
    assert single.returncode == 0, single.stderr
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["world_size"] == 1
    np.testing.assert_allclose(figures["history"]["loss"], one["history"]["loss"], rtol=1e-4)


def test_cli_rank_failing_before_training_aborts_the_job(idx_dir, tmp_path):
    # MPMD launch: rank 1 gets a data directory that does not exist
    args = ["--distributed", "--epochs", "1", "--seed", "0"]
    command = [MPIEXEC, "-n", "1", *_cli(*args, "--data-dir", idx_dir), ":",
               "-n", "1", *_cli(*args, "--data-dir", str(tmp_path / "missing"))]
    start = time.perf_counter()
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, cwd=OUTSIDE_TREE)
    assert result.returncode != 0
    assert time.perf_counter() - start < 20
    assert "fastconv: rank 1 of 2 exited with code 1" in result.stderr


def test_strategy_refuses_a_bad_root():
    from fastconv.distributed import MPIStrategy

    with pytest.raises(ValueError, match="root"):
        MPIStrategy(root=1)  # this test process is a world of one rank


def test_single_rank_strategy_trains_like_no_strategy():
    from fastconv.distributed import MPIStrategy

    namespace = {}
    exec(MODEL_SOURCE, namespace)
    threads = functional.get_num_threads()
    try:
        strategy = MPIStrategy(threads=1)
        with_strategy, history = namespace["train"](namespace["tiny_model"](seed=0, dtype="float64"), strategy)
    finally:
        functional.set_num_threads(threads)
    without, expected = namespace["train"](namespace["tiny_model"](seed=0, dtype="float64"))
    np.testing.assert_allclose(with_strategy, without, rtol=1e-12)
    assert history["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    assert strategy.steps == 8
