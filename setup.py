"""Build of fastconv's one compiled extension, fastconv._kernels.

All of src_c/*.c plus the Cython binding are compiled into a single extension. OpenMP is detected by
compiling and linking a tiny OpenMP program with the very compiler setuptools will use; without it the
build goes on serial and says so (build_info()["openmp"] is then False). FASTCONV_NO_OPENMP=1 forces the
serial build (used to test the fallback). No -march flag: the SIMD micro-kernels carry GCC target
attributes and are chosen at run time, so a wheel built on one x86-64 runs on any other.
"""
import glob
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BASE_FLAGS = ["-O3", "-std=gnu99", "-ffp-contract=fast", "-fno-math-errno", "-Wall", "-Wno-unused-function"]
OPENMP_TEST_PROGRAM = r"""
#include <omp.h>
int main(void) {
    int count = 0;
    #pragma omp parallel reduction(+:count)
    count += 1;
    return count == omp_get_max_threads() ? 0 : 1;
}
"""


def compiler_has_openmp(compiler, flag="-fopenmp"):
    """True if `compiler` compiles and links an OpenMP program with `flag`."""
    tmp_dir = tempfile.mkdtemp(prefix="fastconv-omp-")
    try:
        source = os.path.join(tmp_dir, "omp_test.c")
        with open(source, "w") as handle:
            handle.write(OPENMP_TEST_PROGRAM)
        objects = compiler.compile([source], output_dir=tmp_dir, extra_postargs=[flag])
        compiler.link_executable(objects, os.path.join(tmp_dir, "omp_test"), extra_postargs=[flag])
        return True
    except Exception:  # any compile or link failure means: no usable OpenMP
        return False
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


class BuildExtWithOpenMP(build_ext):
    """build_ext that adds OpenMP flags when the compiler supports them, else warns and builds serial."""

    def build_extensions(self):
        use_openmp = os.environ.get("FASTCONV_NO_OPENMP", "") in ("", "0")
        if use_openmp and not compiler_has_openmp(self.compiler):
            use_openmp = False
            message = ("fastconv: the C compiler has no OpenMP support (-fopenmp failed); building the "
                       "kernels SERIAL. They will be correct but use one core. Install a compiler with "
                       "OpenMP (e.g. gcc, or clang with libomp) and reinstall for multi-threading.")
            warnings.warn(message)
            print("WARNING: " + message, file=sys.stderr)
        omp_flags = ["-fopenmp"] if use_openmp else []
        compile_flags = BASE_FLAGS + omp_flags
        compiler_name = " ".join(self.compiler.compiler_so[:1]) if hasattr(self.compiler, "compiler_so") else "cc"
        for ext in self.extensions:
            ext.extra_compile_args = compile_flags
            ext.extra_link_args = omp_flags
            ext.define_macros += [
                ("FC_BUILD_FLAGS", '"%s"' % " ".join(compile_flags)),
                ("FC_BUILD_COMPILER", '"%s"' % compiler_name),
            ]
        super().build_extensions()


extension = Extension(
    "fastconv._kernels",
    sources=["fastconv/_kernels.pyx"] + sorted(glob.glob("src_c/*.c")),
    include_dirs=["src_c", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False,
                             "initializedcheck": False, "cdivision": True},
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
