"""The ways users install and run fastconv, checked from a source checkout of the repository:

* an sdist built with `python -m build --sdist` installs in a fresh virtual environment (pip builds it
  in isolation, so a build requirement missing from pyproject.toml fails here) and trains one epoch;
* `import fastconv` from the unbuilt source tree says what to do instead of a "circular import";
* no file of the repository points its reader at a file outside it.

The checks that need the checkout are skipped when the tests run from elsewhere (e.g. an sdist).
"""
import glob
import importlib.machinery
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IS_CHECKOUT = os.path.exists(os.path.join(REPO, "pyproject.toml")) and os.path.isdir(os.path.join(REPO, "src_c"))
needs_checkout = pytest.mark.skipif(not IS_CHECKOUT, reason="needs the repository's source tree")


def run(command, **kwargs):
    """Run a command; on failure, fail with its output (the last 3,000 characters)."""
    result = subprocess.run([os.fspath(part) for part in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        pytest.fail(f"{' '.join(map(str, command))} exited with {result.returncode}:\n{output}")
    return result.stdout


@pytest.mark.slow
@needs_checkout
def test_sdist_installs_in_a_fresh_venv_and_trains_one_epoch(tmp_path):
    run([sys.executable, "-m", "build", "--sdist", "--outdir", tmp_path / "dist", REPO])
    (sdist,) = glob.glob(str(tmp_path / "dist" / "fastconv-*.tar.gz"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", sdist])
    # Run from an empty directory, so nothing but the installed package can be imported.
    work = tmp_path / "work"
    work.mkdir()
    where = run([bin_dir / "python", "-c", "import fastconv, fastconv.datasets as d; "
                 "print(fastconv.__file__); print(d.SAMPLE_DIR)"], cwd=work).split("\n")
    assert where[0].startswith(str(venv)), where[0]
    run([bin_dir / "fastconv", "train", "--epochs", "1", "--data-dir", where[1], "--json", "run.json",
         "--verbose", "0"], cwd=work)
    figures = json.loads((work / "run.json").read_text())
    assert figures["epochs"] == 1 and figures["test_accuracy"] > 0.5  # chance is 0.1


@needs_checkout
def test_import_from_the_unbuilt_source_tree_says_what_to_do(tmp_path):
    """A copy of the package without its compiled extension, first on sys.path as `python -m` puts it."""
    copy = tmp_path / "fastconv"
    copy.mkdir()
    for name in os.listdir(os.path.join(REPO, "fastconv")):
        if name.endswith(".py"):
            (copy / name).write_bytes(open(os.path.join(REPO, "fastconv", name), "rb").read())
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        try:
            import fastconv
        except ImportError as exc:
            print(exc)
        else:
            print("imported", fastconv.__file__)
    """)
    message = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path).stdout
    assert "are not built" in message and "pip install ." in message and "pip install -e ." in message
    assert "circular" not in message


@needs_checkout
def test_python_m_pytest_in_a_source_tree_uses_the_installed_package(tmp_path):
    """`python -m pytest tests` from an unbuilt source tree imports the installed fastconv (conftest.py)."""
    outside = [entry for entry in sys.path if os.path.realpath(entry or os.getcwd()) != os.path.realpath(REPO)]
    if importlib.machinery.PathFinder.find_spec("fastconv", outside) is None:
        pytest.skip("fastconv is installed in place (pip install -e .): there the source tree is the package")
    tree = tmp_path / "tree"
    (tree / "fastconv").mkdir(parents=True)
    (tree / "tests").mkdir()
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(os.path.join(REPO, name), tree / name)
    for path in glob.glob(os.path.join(REPO, "fastconv", "*.py")):  # the sources, no compiled extension
        shutil.copy(path, tree / "fastconv")
    (tree / "tests" / "test_where.py").write_text(
        "import fastconv\n\n\ndef test_installed():\n"
        f"    assert not fastconv.__file__.startswith({str(tree)!r})\n"
        "    assert fastconv.conv2d([[[[1.0]]]], [[[[2.0]]]]).item() == 2.0\n")
    output = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tree)
    assert "1 passed" in output


# Files outside the repository that its text must not send a reader to.
OUTSIDE = re.compile(r"\bAPI\.md\b|/work/|\.\./shared\b|\bshared/data\b")
TEXT_SUFFIXES = (".py", ".pyx", ".md", ".txt", ".toml", ".cfg", ".in", ".c", ".h", ".sh", ".yml", ".yaml")


def repository_text_files():
    skip = {".git", "build", "dist", ".benchmarks", ".hypothesis", ".pytest_cache", "__pycache__"}
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = [d for d in subdirectories if d not in skip and not d.endswith(".egg-info")
                             and not d.startswith(".venv")]
        for name in files:
            if name.endswith(TEXT_SUFFIXES) or os.path.basename(directory) == ".ci":
                yield os.path.join(directory, name)


@needs_checkout
def test_no_file_points_outside_the_repository():
    this_file = os.path.abspath(__file__)
    offenders = []
    for path in repository_text_files():
        if path == this_file or path.endswith("_kernels.c"):  # this test names the patterns; Cython's output
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if OUTSIDE.search(line):
                    offenders.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()[:100]}")
    assert not offenders, "references to files outside the repository:\n" + "\n".join(offenders)
