"""What a run was measured on: CPU, cores, threads, versions (the "machine" object of the JSON)."""
import datetime
import os
import platform

import numpy as np

from .. import functional
from .cases import DTYPE, PEAK_GEMM_SIZE

def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(peak_gflops, torch, peak_size=PEAK_GEMM_SIZE):
    """What the numbers were measured on (the "machine" object of the JSON)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "threads": functional.get_num_threads(),
        "fastconv": functional.build_info(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dtype": np.dtype(DTYPE).name,
        "gemm_peak_gflops": peak_gflops,
        "gemm_peak_basis": f"numpy.matmul float32 {peak_size}^3, measured in this run",
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
