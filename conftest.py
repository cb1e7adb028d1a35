"""pytest runs against the installed fastconv, also as `python -m pytest tests` from this directory.

`python -m` puts the current directory first on sys.path; here that is the source tree, whose fastconv
package has no compiled extension unless it was installed in place (`pip install -e .`). When it has
none and an installed fastconv exists, the source tree is taken off sys.path, so the tests and the
benchmarks import the installed package (otherwise `import fastconv` says how to install it).
"""
import importlib.machinery
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def _has_extension(package_dir):
    return any(os.path.exists(os.path.join(package_dir, "_kernels" + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def _is_root(entry):
    return os.path.realpath(entry or os.getcwd()) == os.path.realpath(ROOT)


if not _has_extension(os.path.join(ROOT, "fastconv")):
    _elsewhere = [entry for entry in sys.path if not _is_root(entry)]
    if importlib.machinery.PathFinder.find_spec("fastconv", _elsewhere) is not None:
        sys.path[:] = _elsewhere
