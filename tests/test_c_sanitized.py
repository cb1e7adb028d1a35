"""The standalone C tests of tests/c/, built with AddressSanitizer + UndefinedBehaviorSanitizer and run.

They check every kernel against naive loops written from the definitions (long double / double), every
SIMD level, 1 vs 2 threads bit for bit, with sentinels around the outputs; under the sanitizers any
out-of-bounds access, use of freed scratch, signed overflow or leak fails the run. Skipped (not failed)
where the tree has no C sources (an installed wheel) or the compiler cannot build a sanitized program.
"""
import concurrent.futures
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC_DIR, TEST_DIR = ROOT / "src_c", ROOT / "tests" / "c"
COMPILER = os.environ.get("CC", "gcc")
FLAGS = ["-O1", "-g", "-std=gnu99", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
# program -> its arguments (the direct-conv test also times itself unless told not to)
PROGRAMS = {"test_block_cache": [], "test_gemm": [], "test_conv_direct": ["200", "--no-bench"], "test_conv_im2col": [], "test_conv_chain": []}


@pytest.fixture(scope="module")
def sanitized_build(tmp_path_factory):
    """A function building tests/c/NAME.c with every src_c/*.c under the sanitizers; skips when impossible."""
    if not SRC_DIR.is_dir() or not TEST_DIR.is_dir():
        pytest.skip("no C sources beside the tests (not a source checkout)")
    if shutil.which(COMPILER) is None:
        pytest.skip(f"no C compiler {COMPILER!r}")
    build_dir = tmp_path_factory.mktemp("sanitized")
    probe = build_dir / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    if subprocess.run([COMPILER, *FLAGS, str(probe), "-o", str(build_dir / "probe")],
                      capture_output=True).returncode != 0:
        pytest.skip(f"{COMPILER} cannot build with -fopenmp -fsanitize=address,undefined here")

    objects = _compile_sources(build_dir)

    def build(name):
        binary = build_dir / name
        result = subprocess.run([COMPILER, *FLAGS, f"-I{SRC_DIR}", f"-I{TEST_DIR}", str(TEST_DIR / f"{name}.c"),
                                 *objects, "-o", str(binary), "-lm"], capture_output=True, text=True)
        assert result.returncode == 0, f"building {name} failed:\n{result.stderr[-4000:]}"
        return binary

    return build


def _compile_sources(build_dir):
    """Every src_c/*.c compiled once for all the programs, as many compilers at a time as there are cores."""
    sources = sorted(SRC_DIR.glob("*.c"))
    objects = [str(build_dir / f"{source.stem}.o") for source in sources]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(lambda pair: subprocess.run([COMPILER, *FLAGS, f"-I{SRC_DIR}", "-c", str(pair[0]),
                                                        "-o", pair[1]], capture_output=True, text=True),
                           zip(sources, objects))
        for source, result in zip(sources, results):
            assert result.returncode == 0, f"compiling {source.name} failed:\n{result.stderr[-4000:]}"
    return objects


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_c_kernels_under_sanitizers(name, sanitized_build):
    binary = sanitized_build(name)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1",
               OMP_NUM_THREADS="2")
    result = subprocess.run([str(binary), *PROGRAMS[name]], capture_output=True, text=True, env=env, timeout=600)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"{name} failed (exit {result.returncode}):\n{output}"
    assert "Sanitizer" not in result.stderr, output
