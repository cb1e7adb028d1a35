"""Data-parallel training over MPI, the way Horovod does it (extra ``fastconv[mpi]``: mpi4py and MPICH).

One process per machine or core group, all started by ``mpiexec``, each holding a full replica of the
model. At the start of training rank 0's weights are broadcast to every rank; then each global batch
(``batch_size`` is the global batch) is cut into one contiguous shard per rank, every rank runs the
forward and backward on its shard, and ONE allreduce per step sums a flat buffer holding every
gradient (each weighted by its shard's share of the global batch, so an uneven last batch averages
correctly) plus the shard's loss and correct count. Every rank then applies the same averaged
gradient with its own optimizer, so the replicas stay identical and N ranks train the model that one
process trains with the same seed, up to float rounding.

    from fastconv.distributed import MPIStrategy
    strategy = MPIStrategy()
    model.fit(x, y, batch_size=64, optimizer=..., verbose=strategy.is_chief, distribute=strategy)

Launch with ``mpiexec -n N python -m mpi4py script.py`` (an uncaught exception on one rank then aborts
the whole job instead of leaving the others waiting in a collective); ``fastconv train --distributed``
does the same by itself (`run_or_abort`). mpi4py is imported only when a strategy is created.
"""
import os
import socket
import sys
import time
import traceback

import numpy as np

from . import functional
from .callbacks import Callback
from .model import check_finite_loss

__all__ = ["MPIStrategy", "threads_per_rank", "run_or_abort"]

INSTALL_HINT = "fastconv's distributed training needs mpi4py and an MPI: pip install 'fastconv[mpi]'"


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return MPI


def threads_per_rank(local_ranks, cores=None):
    """OpenMP threads for one of `local_ranks` processes sharing a machine of `cores` cores (>= 1):
    more threads than cores made a 1-second run take 34-71 s on 2 cores, so the cores are split."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_ranks))


class MPIStrategy(Callback):
    """Data-parallel training over an MPI communicator (default: every process of the job).

    threads: OpenMP threads of this rank; None keeps OMP_NUM_THREADS if it is set, else the machine's
    cores divided by the ranks on it (found with an MPI COMM_TYPE_SHARED split). root: the rank whose
    initial weights every rank starts from. Pass it to ``Sequential.fit(..., distribute=strategy)``.
    """

    def __init__(self, comm=None, threads=None, root=0):
        mpi = _mpi()
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        if not 0 <= root < self.size:
            raise ValueError(f"root must be a rank in [0, {self.size}), got {root!r}")
        self.root = root
        local = self.comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        # mpiexec reports a killed rank by host and PID only; this map turns that back into the rank
        self.processes = self.comm.allgather((socket.gethostname(), os.getpid()))
        if threads is not None or not os.environ.get("OMP_NUM_THREADS"):
            functional.set_num_threads(threads if threads is not None else threads_per_rank(self.local_size))
        self.threads = functional.get_num_threads()
        self.allreduce_seconds = 0.0  # time spent in the per-step allreduce, for the scaling figures
        self.steps = 0
        self._buffer = self._slices = self._signature = None  # the flat buffer's layout, made on first use

    @property
    def is_chief(self):
        """True on the one rank that prints, saves and writes files (rank 0)."""
        return self.rank == 0

    def placement(self):
        """One line naming every rank's host and PID (what mpiexec names when a rank is killed)."""
        return "; ".join(f"rank {rank}: pid {pid} on {host}" for rank, (host, pid) in enumerate(self.processes))

    def __repr__(self):
        return f"MPIStrategy(rank={self.rank}, size={self.size}, local_size={self.local_size}, threads={self.threads})"

    # ---- the flat buffer: every parameter (or gradient) back to back, plus 3 slots of batch figures ----

    def _layout(self, model):
        params = model.parameters()
        signature = [(p.shape, p.dtype) for p in params]
        if self._signature != signature:
            offsets = np.cumsum([0] + [p.size for p in params])
            self._slices = [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:])]
            self._signature = signature
            # + loss sum, correct count, sample count: the batch figures ride in the gradients' allreduce
            self._buffer = np.empty(int(offsets[-1]) + 3, dtype=model.dtype)
        return params, self._buffer

    def broadcast_weights(self, model):
        """Make every rank's parameters equal to the root's (one Bcast of a flat buffer)."""
        if not model.built:
            model.build()
        params, buffer = self._layout(model)
        sizes = self.comm.allgather(buffer.size)
        if len(set(sizes)) != 1:
            raise ValueError(f"the ranks hold different models: parameter buffer sizes {sizes} per rank")
        for p, part in zip(params, self._slices):
            buffer[part] = p.ravel()
        self.comm.Bcast(buffer, root=self.root)
        for p, part in zip(params, self._slices):
            p[...] = buffer[part].reshape(p.shape)

    # ---- Callback hooks --------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self.broadcast_weights(self.model)

    # ---- the step Sequential.fit runs on each global batch ------------------------------------------

    def shard(self, size):
        """(begin, end) of this rank's part of a global batch of `size` samples: contiguous, balanced
        to within one sample, in rank order."""
        return size * self.rank // self.size, size * (self.rank + 1) // self.size

    def evaluate(self, model, x, y, batch_size=256):
        """(mean loss, accuracy) over all of (x, y), every rank scoring its shard: the same on every rank."""
        begin, end = self.shard(len(y))
        totals = np.zeros(3)  # loss sum, correct count, sample count
        if end > begin:
            loss, accuracy = model.evaluate(x[begin:end], y[begin:end], batch_size=batch_size)
            totals[:] = (loss * (end - begin), accuracy * (end - begin), end - begin)
        self.comm.Allreduce(self._mpi.IN_PLACE, totals, op=self._mpi.SUM)
        return float(totals[0] / totals[2]), float(totals[1] / totals[2])

    def train_step(self, model, x, y):
        """One synchronous step on the global batch (x, y): (mean loss, correct count) over all of it."""
        total = len(y)
        begin, end = self.shard(total)
        params, buffer = self._layout(model)
        gradients = buffer[:-3]
        if end > begin:
            loss, logits = model.loss_and_gradients(x[begin:end], y[begin:end])
            weight = (end - begin) / total  # the shard's mean gradient, scaled to its share of the batch mean
            for g, part in zip(model.gradients(), self._slices):
                np.multiply(g.ravel(), weight, out=gradients[part])
            buffer[-3:] = (loss * (end - begin), model.loss.count_correct(logits, y[begin:end]), end - begin)
        else:  # a last global batch smaller than the number of ranks leaves some ranks nothing
            buffer[:] = 0
        start = time.perf_counter()
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        self.allreduce_seconds += time.perf_counter() - start
        self.steps += 1
        if int(round(float(buffer[-1]))) != total:
            raise ValueError(f"the ranks disagree on the global batch: {int(buffer[-1])} samples in all, "
                             f"{total} here (every rank must pass the same x, y and batch_size)")
        loss = float(buffer[-3]) / total
        check_finite_loss(loss)  # the global loss: every rank stops at the same step, before its update
        model.optimizer.step(params, [gradients[part].reshape(p.shape) for p, part in zip(params, self._slices)])
        return loss, int(round(float(buffer[-2])))


def run_or_abort(function, *args, comm=None, stream=None):
    """function(*args) on this rank; if it raises, or returns a non-zero exit code, print which rank failed
    and abort the whole MPI job (what ``python -m mpi4py`` does), so no other rank waits forever in a
    collective. Returns function's result otherwise."""
    mpi = _mpi()
    comm = mpi.COMM_WORLD if comm is None else comm
    stream = stream or sys.stderr
    rank, size = comm.Get_rank(), comm.Get_size()
    processes = comm.allgather((socket.gethostname(), os.getpid()))
    try:
        code = function(*args)
    except SystemExit as exc:
        code = exc.code
    except mpi.Exception as exc:  # a collective failed: usually because another rank died
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _abort(comm, f"rank {rank} of {size}: MPI communication failed ({first_line}); "
                     f"{_gone_ranks(processes)}", 1, stream)
    except BaseException as exc:  # noqa: B902 - KeyboardInterrupt too: the other ranks must not hang
        traceback.print_exc(file=stream)
        _abort(comm, f"rank {rank} of {size} failed with {type(exc).__name__}: {exc}", 1, stream)
    if code not in (0, None):
        _abort(comm, f"rank {rank} of {size} exited with code {code}", code if isinstance(code, int) else 1, stream)
    return code


def _gone_ranks(processes):
    """Which ranks of this host no longer run (a rank on another host cannot be checked from here)."""
    host = socket.gethostname()
    gone = [f"rank {rank} (pid {pid} on {where})" for rank, (where, pid) in enumerate(processes)
            if where == host and not _alive(pid)]
    if gone:
        return "gone: " + ", ".join(gone)
    return "no rank on this host has died, so one on another host probably did (mpiexec names it by host and PID)"


def _alive(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The launcher forwards a rank's output through a pipe and stops forwarding once it kills the job, so a
# message written just before MPI_Abort can be lost (seen with MPICH's Hydra under load): wait this long.
ABORT_FORWARD_SECONDS = 0.5


def _abort(comm, message, code, stream):
    stream.write(f"fastconv: {message}; aborting all ranks\n")
    stream.flush()
    time.sleep(ABORT_FORWARD_SECONDS)
    comm.Abort(code)
