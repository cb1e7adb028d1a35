"""File and terminal helpers shared by the package: atomic writes and a one-line progress bar.

Checkpoints (model.save), downloads (datasets), run figures (training) and benchmark reports
(benchmarks) all write through atomic_write; training epochs and downloads draw a ProgressBar.
"""
import contextlib
import json
import math
import os
import sys
import tempfile
import time

__all__ = ["atomic_write", "write_json", "ProgressBar", "is_tty"]


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
