"""The optional engines stay optional: no fastconv import, and no normal work, pulls in mpi4py or dask."""
import os
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent('''
    import importlib, pkgutil, sys
    import numpy as np
    import fastconv

    for module in pkgutil.iter_modules(fastconv.__path__):
        if module.name != "__main__":  # that one runs the command line
            importlib.import_module(f"fastconv.{module.name}")
    from fastconv import Sequential, cli, layers, optim

    model = Sequential([layers.Flatten(), layers.Dense(3)], input_shape=(1, 4, 4), seed=0)
    x, y = np.ones((8, 1, 4, 4), np.float32), np.arange(8) % 3
    model.fit(x, y, epochs=1, batch_size=4, optimizer=optim.SGD(0.1), verbose=0)
    model.predict(x), model.evaluate(x, y)
    cli.build_parser().parse_args(["train", "--distributed"])
    print(sorted(name for name in sys.modules if name.split(".")[0] in ("mpi4py", "dask", "distributed")))
''')


# Fresh interpreters start here, not in the repository root, whose unbuilt fastconv/ would shadow the
# installed package.
OUTSIDE_TREE = os.path.dirname(os.path.abspath(__file__))


def test_no_fastconv_module_imports_mpi4py_or_dask():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                            cwd=OUTSIDE_TREE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _without(module, code):
    """Run code in a fresh interpreter in which `module` cannot be imported (as if not installed)."""
    probe = f"import sys\nsys.modules[{module!r}] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=OUTSIDE_TREE)


def test_distributed_training_without_mpi4py_says_which_extra_to_install():
    result = _without("mpi4py", """
        from fastconv import cli
        sys.exit(cli.main(["train", "--distributed"]))
    """)
    assert result.returncode == 1
    assert result.stderr.startswith("fastconv train: error:") and "pip install 'fastconv[mpi]'" in result.stderr
    result = _without("mpi4py", """
        from fastconv.distributed import MPIStrategy
        MPIStrategy()
    """)
    assert result.returncode == 1 and "ImportError" in result.stderr and "fastconv[mpi]" in result.stderr


def test_dask_helpers_without_dask_say_which_extra_to_install():
    result = _without("dask", """
        from fastconv.dask import from_npy_files
        from_npy_files(".")
    """)
    assert result.returncode == 1 and "ImportError" in result.stderr and "pip install 'fastconv[dask]'" in result.stderr
