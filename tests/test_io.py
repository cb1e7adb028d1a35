"""fastconv._io: the atomic writer every file-writing path uses, and the shared progress bar."""
import io
import json
import os

import pytest

from fastconv import _io


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "out.json"  # the missing directory is created
    _io.write_json(path, {"a": 1})
    _io.write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert os.listdir(path.parent) == ["out.json"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with _io.atomic_write(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.npz"], "the temporary file must be removed"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_is_silent_off_a_terminal_but_prints_the_final_line():
    stream = io.StringIO()
    bar = _io.ProgressBar(10, stream)
    for done in range(1, 11):
        bar.update(done, lambda: pytest.fail("render must not be called off a terminal"))
    bar.close("done")
    assert stream.getvalue() == "done\n"


def test_progress_bar_redraws_in_place_on_a_terminal():
    stream = Terminal()
    bar = _io.ProgressBar(4, stream, width=4)
    assert [bar.bar(done) for done in (0, 2, 4)] == [">...", "==>.", "===="]
    bar.update(1, lambda: "one")
    bar.update(2, lambda: "two")  # within REFRESH_SECONDS: skipped
    bar.update(4, lambda: "four")  # the last one is always drawn
    bar.close()
    assert stream.getvalue() == "\rone\rfour\n"


def test_disabled_progress_bar_draws_nothing_on_a_terminal():
    stream = Terminal()
    bar = _io.ProgressBar(4, stream, enabled=False)
    bar.update(4, lambda: "x")
    bar.close()
    assert stream.getvalue() == ""
