"""The C sources keep the layout the README describes: its map names every file of src_c/, the x86
target strings are spelled in one header, and the direct-convolution drivers name no SIMD level."""
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src_c")
pytestmark = pytest.mark.skipif(not os.path.isdir(SRC), reason="needs the repository's src_c/")


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def sources():
    return sorted(name for name in os.listdir(SRC) if name.endswith((".c", ".h")))


def test_readme_map_names_every_source_file_and_no_other():
    listed = set(re.findall(r"^src_c/(\S+)", read(os.path.join(REPO, "README.md")), re.M))
    assert listed == set(sources())


def test_target_strings_are_spelled_only_in_simd_targets_h():
    spelled = [name for name in sources() if re.search(r"target\s*\(\s*\"", read(os.path.join(SRC, name)))]
    assert spelled == []   # simd_targets.h builds its strings from the feature lists
    assert '"avx512dq"' in read(os.path.join(SRC, "simd_targets.h"))


def test_direct_drivers_name_no_simd_level():
    drivers = re.sub(r"/\*.*?\*/", "", read(os.path.join(SRC, "conv_direct.c")), flags=re.S)   # code only
    assert not re.search(r"avx2|avx512|AVX2|AVX512|FC_HAVE_X86|immintrin|FCV_", drivers)
