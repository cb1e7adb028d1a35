"""The optional engines stay optional: no fastconv import, and no normal work, pulls in mpi4py or dask."""
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


def test_no_fastconv_module_imports_mpi4py_or_dask():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
