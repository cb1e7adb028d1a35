"""Time of the one allreduce per training step that fastconv.distributed runs, alone (no training around it).

    mpiexec -n 2 python bench/mpi_allreduce.py [--model lenet5] [--repeats 200]
    MPIR_CVAR_NOLOCAL=1 MPIR_CVAR_CH4_NETMOD=ofi FI_PROVIDER=tcp FI_TCP_IFACE=lo \\
        mpiexec -hosts 127.0.0.1 -n 2 python bench/mpi_allreduce.py      # TCP on loopback

Rank 0 prints the median and the 10th/90th percentiles of one in-place MPI_SUM allreduce of the model's
flat float32 gradient buffer (its parameters + 3 slots of batch figures), after a barrier each time so
that a rank arriving late is not counted as transfer time.
"""
import argparse
import time

import numpy as np
from mpi4py import MPI

from fastconv import models


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    count = sum(p.size for p in models.get(args.model, seed=0).parameters()) + 3
    buffer = np.ones(count, dtype=np.float32)
    times = []
    for i in range(args.repeats + 10):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        if i >= 10:  # the first calls set up connections
            times.append(time.perf_counter() - start)
        buffer[:] = 1
    if comm.Get_rank() == 0:
        low, median, high = np.percentile(np.array(times) * 1e6, [10, 50, 90])
        print(f"{args.model}: allreduce of {count:,} float32 ({4 * count / 1e3:.0f} kB) over {comm.Get_size()} ranks: "
              f"median {median:.0f} us (10-90%: {low:.0f}-{high:.0f} us), {args.repeats} repeats")


if __name__ == "__main__":
    main()
