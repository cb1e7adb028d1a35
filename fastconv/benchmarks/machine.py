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


def usable_cores():
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def machine_info(peak_gflops, torch, peak_size=PEAK_GEMM_SIZE):
    """What the numbers were measured on (the "machine" object of the JSON)."""
    blas = blas_info()
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "threads": functional.get_num_threads(),
        "fastconv": functional.build_info(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dtype": np.dtype(DTYPE).name,
        "blas": blas,
        "blas_warnings": blas_warnings(blas=blas),
        "gemm_peak_gflops": peak_gflops,
        "gemm_peak_basis": f"numpy.matmul float32 {peak_size}^3, measured in this run",
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# Environment variables that override the kernel or blocking a BLAS library would pick for this CPU.
KERNEL_OVERRIDES = {
    "OPENBLAS_CORETYPE": "forces OpenBLAS's kernel for one CPU type",
    "OPENBLAS_L2_SIZE": "overrides the L2 size OpenBLAS blocks for",
    "GOTO_L2_SIZE": "overrides the L2 size OpenBLAS blocks for",
    "MKL_DEBUG_CPU_TYPE": "forces MKL's code path",
    "MKL_ENABLE_INSTRUCTIONS": "caps the instruction set MKL uses",
    "NPY_DISABLE_CPU_FEATURES": "turns off NumPy's own SIMD code paths",
}
BENCH_EXTRA_HINT = "pip install 'fastconv[bench]'"


def blas_info():
    """NumPy's BLAS libraries as threadpoolctl reports them (name, version, kernel, threads), or None
    when threadpoolctl is not installed (it is a benchmark-only dependency)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    keys = ("internal_api", "version", "architecture", "threading_layer", "num_threads")
    return [{key: info.get(key) for key in keys}
            for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]


def blas_warnings(environ=None, blas=None):
    """One warning per environment variable that overrides the numpy baseline's kernel choice."""
    environ = os.environ if environ is None else environ
    kernels = ", ".join(f"{lib['internal_api']} {lib['architecture']}" for lib in blas or () if lib["architecture"])
    running = f" (numpy now runs {kernels})" if kernels else ""
    return [f"{name}={environ[name]} {effect}{running}: the numpy baselines may run an older, slower kernel "
            f"than this CPU's; unset it for a fair baseline"
            for name, effect in KERNEL_OVERRIDES.items() if environ.get(name)]


def describe_blas(blas):
    """One line naming the kernel the numpy baselines ran."""
    if blas is None:
        return f"numpy BLAS: unknown (threadpoolctl is not installed: {BENCH_EXTRA_HINT})"
    if not blas:
        return "numpy BLAS: none found by threadpoolctl"
    return "numpy BLAS: " + "; ".join(
        f"{lib['internal_api']} {lib['version']} ({lib['architecture']} kernels, {lib['threading_layer']}, "
        f"{lib['num_threads']} threads)" for lib in blas)
