"""What fastconv.keras shares between its modules: the "cannot map" error and Keras argument checks."""

__all__ = ["UnsupportedError", "unsupported", "reject_unknown", "reject_non_default"]


class UnsupportedError(ValueError):
    """A Keras layer, argument or value that fastconv cannot reproduce (raised instead of computing
    something different from Keras)."""


def unsupported(what, supported):
    """The error for `what` (e.g. "Conv2D(dilation_rate=(2, 2))"), saying what fastconv supports instead."""
    return UnsupportedError(f"fastconv.keras does not support {what}; {supported}")


def reject_unknown(owner, kwargs):
    """TypeError for keyword arguments Keras does not know either (as Python would raise)."""
    if kwargs:
        names = ", ".join(repr(name) for name in sorted(kwargs))
        raise TypeError(f"{owner} got unexpected keyword argument(s) {names}")


def reject_non_default(owner, values, supported):
    """UnsupportedError for the first Keras argument given a value other than its only supported one.

    values: {name: (given, supported default)}; equal-to-default values pass."""
    for name, (given, default) in values.items():
        if not _same(given, default):
            raise unsupported(f"{owner}({name}={given!r})", supported.get(name, f"it supports {name}={default!r} only"))


def _same(given, default):
    if isinstance(default, tuple) and isinstance(given, (int, list, tuple)) and not isinstance(given, bool):
        given = (given,) * len(default) if isinstance(given, int) else tuple(given)
    return given == default
