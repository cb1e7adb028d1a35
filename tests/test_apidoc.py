"""docs/api.md is generated from the docstrings (python -m fastconv._apidoc): it must be current, and
the generator must cover every public name of the listed modules and every command of the CLI."""
import importlib
import os
import subprocess
import sys

import pytest

from fastconv import _apidoc, cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(REPO, "docs", "api.md")


@pytest.mark.skipif(not os.path.exists(PAGE), reason="needs the repository's docs/")
def test_docs_api_md_is_current():
    with open(PAGE, encoding="utf-8") as handle:
        page = handle.read()
    assert page == _apidoc.generate(), "docs/api.md is stale: run `python -m fastconv._apidoc > docs/api.md`"


def test_every_public_name_and_command_is_documented():
    page = _apidoc.generate()
    for module_name, title, _ in _apidoc.MODULES:
        if not _apidoc._exists(module_name):
            continue
        assert f"## {title}\n" in page
        for name in importlib.import_module(module_name).__all__:
            assert f"`{name}" in page, f"{module_name}.{name} is missing"
    for command in ("train", "bench", "compare", "info"):
        assert f"### `fastconv {command}`" in page
    assert "0x" not in page, "an object address would make the page differ between runs"


def test_missing_modules_are_left_out_and_present_ones_included(monkeypatch):
    monkeypatch.setattr(_apidoc, "MODULES", [("fastconv.no_such_module", "Nothing", "absent"),
                                             ("fastconv.losses", "Losses here", "present")])
    page = _apidoc.generate()
    assert "Nothing" not in page and "## Losses here" in page and "[Losses here](#losses-here)" in page


def test_check_option_reports_a_stale_page(tmp_path):
    stale = tmp_path / "api.md"
    stale.write_text("# old\n")
    command = [sys.executable, "-m", "fastconv._apidoc", "--check", str(stale)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and "is stale" in result.stderr
    stale.write_text(_apidoc.generate())
    assert subprocess.run(command, capture_output=True, cwd=tmp_path).returncode == 0


def test_help_width_does_not_follow_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    narrow = _apidoc.cli_section()
    monkeypatch.setenv("COLUMNS", "250")
    assert _apidoc.cli_section() == narrow
    assert cli.build_parser().prog == "fastconv"
