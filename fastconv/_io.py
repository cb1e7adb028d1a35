"""File and terminal helpers shared by the package: atomic writes, checked .npz reads and a one-line
progress bar.

Checkpoints (model.save), downloads (datasets), run figures (training) and benchmark reports
(benchmarks) all write through atomic_write; every .npz the package saves (Sequential, training
checkpoints, fastconv.keras models) is read back through read_npz and read_json_record; training
epochs and downloads draw a ProgressBar.
"""
import contextlib
import json
import math
import os
import sys
import tempfile
import time
import zipfile
import zlib

__all__ = ["atomic_write", "write_json", "read_npz", "read_json_record", "ProgressBar", "is_tty"]


def read_npz(path, what, missing="file"):
    """Every array of the .npz at `path`, read (and CRC-checked) now: FileNotFoundError ("no such
    {missing}") if there is no such file, ValueError naming `what` it should be if it is damaged or not
    an .npz."""
    import numpy as np

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such {missing}: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable {what} (damaged or not an .npz file): {exc}") from None


def read_json_record(arrays, key, path, what, file_format, version, missing_hint=""):
    """The dict stored as JSON under `key` of an .npz's arrays, checked to be `what` of `file_format`
    at `version`; ValueError naming the file otherwise (missing_hint ends the no-record message)."""
    if key not in arrays:
        raise ValueError(f"{path} is not a {what} (no {key!r} record{missing_hint})")
    try:
        record = json.loads(str(arrays[key][()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{path}: the {what}'s record is not valid JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != file_format:
        raise ValueError(f"{path} is not a {what}")
    if record.get("version") != version:
        raise ValueError(f"{path}: {what} format version {record.get('version')!r} is not supported "
                         f"(this fastconv reads version {version})")
    return record


@contextlib.contextmanager
def atomic_write(path, mode="wb", suffix=".tmp"):
    """Yield a file open for writing beside `path`; on success it is synced and renamed to `path`,
    on any exception it is removed, so `path` never holds half a file. Creates missing directories."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    text = {} if "b" in mode else {"encoding": "utf-8"}
    handle = tempfile.NamedTemporaryFile(mode, dir=directory, prefix="." + os.path.basename(path) + ".",
                                         suffix=suffix, delete=False, **text)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)


def write_json(path, data):
    """Write `data` as indented JSON to `path`, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def is_tty(stream):
    """True when `stream` is an interactive terminal (False for files, pipes and closed streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """One line of progress: redrawn in place on a terminal, at most every REFRESH_SECONDS.

    `update(done, render)` redraws with render() (called only when a redraw is due, so building the
    line costs nothing between redraws); `close(final_line)` ends the line, printing final_line
    even off a terminal (one line per task in a log). With enabled=False or off a terminal
    nothing is redrawn.
    """

    REFRESH_SECONDS = 0.1

    def __init__(self, total, stream=None, enabled=True, width=24):
        self.stream = stream or sys.stdout
        self.total = total
        self.width = width
        self.live = bool(enabled) and is_tty(self.stream)
        self._last_draw = -math.inf

    def bar(self, done):
        """The bar itself, e.g. "=====>......" for `done` of `total`."""
        filled = self.width if not self.total else int(self.width * min(done / self.total, 1.0))
        return "=" * filled + (">" if filled < self.width else "") + "." * max(self.width - filled - 1, 0)

    def update(self, done, render):
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last_draw < self.REFRESH_SECONDS and done < self.total:
            return
        self._last_draw = now
        self.stream.write("\r" + render())
        self.stream.flush()

    def close(self, final_line=None):
        if final_line is not None:
            self.stream.write(("\r" if self.live else "") + final_line + "\n")
        elif self.live and self._last_draw > -math.inf:
            self.stream.write("\n")
        self.stream.flush()
