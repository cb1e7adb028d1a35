"""Generate the API reference, docs/api.md, from the docstrings and the command line's argparse help.

    python -m fastconv._apidoc > docs/api.md        # regenerate
    python -m fastconv._apidoc --check docs/api.md  # exit 1 if the page is stale

The docstrings are the one source of truth: tests/test_apidoc.py fails when docs/api.md differs from
what this prints. A module of MODULES that does not exist (e.g. an optional one not written yet) is
left out, so the page follows the package.
"""
import argparse
import importlib
import inspect
import os
import sys

# (module, title, what it is): the order of the page.
MODULES = [
    ("fastconv.functional", "fastconv (kernels)",
     "The stateless kernels; every name here is also importable from `fastconv` itself."),
    ("fastconv.reference", "fastconv.reference", "The NumPy oracle of the kernels: same signatures and results."),
    ("fastconv.layers", "fastconv.layers", "The layers of the Keras-like training API."),
    ("fastconv.model", "fastconv.Sequential", "The model: a stack of layers with fit / evaluate / predict / save."),
    ("fastconv.models", "fastconv.models", "Ready-made models (the zoo)."),
    ("fastconv.optim", "fastconv.optim", "Optimizers and learning-rate schedules."),
    ("fastconv.losses", "fastconv.losses", "Losses and the softmax."),
    ("fastconv.callbacks", "fastconv.callbacks", "Hooks into `Sequential.fit`."),
    ("fastconv.datasets", "fastconv.datasets", "MNIST: reading IDX files, the cache, the download, the bundled sample."),
    ("fastconv.analysis", "fastconv.analysis", "What a trained network computes, as NumPy arrays (no plotting)."),
    ("fastconv.viz", "fastconv.viz", "Pictures of a model and its training (needs matplotlib: `fastconv[plot]`)."),
    ("fastconv.onnx", "fastconv.onnx", "ONNX export and import (needs the `onnx` package: `fastconv[onnx]`)."),
]
HELP_WIDTH = 100
HEADER = """# API reference

Generated from the docstrings by `python -m fastconv._apidoc > docs/api.md`; edit the docstrings, not
this page (`tests/test_apidoc.py` fails when it is stale). The command line is at the end.
"""


def _exists(module_name):
    try:
        return importlib.util.find_spec(module_name) is not None
    except ImportError:
        return False


def _anchor(title):
    return "".join(ch for ch in title.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")


def _signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _doc(obj):
    return inspect.getdoc(obj) or "(no docstring)"


def _value(value):
    """A constant's value as shown on the page (paths of the installed package are not the reader's)."""
    if isinstance(value, str) and os.path.isabs(value):
        return "a path inside the installed package"
    text = repr(value)
    return f"`{text}`" if len(text) <= 200 else f"`{text[:197]}...`"


def _own_methods(cls):
    """Public methods and properties the class itself defines (inherited ones are under the base)."""
    members = []
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if not getattr(member, "__doc__", None) and any(hasattr(base, name) for base in cls.__mro__[1:]):
            continue  # an undocumented override: the base class's entry describes it
        if inspect.isfunction(member) or isinstance(member, property):
            members.append((name, member))
    return members


def _indented(text):
    """`text` with every line after the first indented two spaces (a Markdown list item's body)."""
    return "\n".join(line and "  " + line for line in text.split("\n")).lstrip()


def _method_signature(function):
    return _signature(function).replace("(self, ", "(").replace("(self)", "()").replace("(cls, ", "(")


def _class(name, cls, lines):
    bases = [base.__name__ for base in cls.__bases__ if base is not object]
    lines += [f"### class `{name}{_signature(cls)}`", ""]
    if bases:
        lines += [f"Subclass of {', '.join(f'`{b}`' for b in bases)}.", ""]
    lines += [_doc(cls), ""]
    for method_name, member in _own_methods(cls):
        if isinstance(member, property):
            lines += [_indented(f"- **`{method_name}`** (property): {_doc(member)}"), ""]
        else:
            doc = inspect.getdoc(member)
            lines += [_indented(f"- **`{method_name}{_method_signature(member)}`**" + (f": {doc}" if doc else "")),
                      ""]


def module_section(module_name, title, summary):
    module = importlib.import_module(module_name)
    lines = [f"## {title}", "", f"*{summary}* (`{module_name}`)", "", _doc(module), ""]
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            _class(name, obj, lines)
        elif callable(obj):
            lines += [f"### `{name}{_signature(obj)}`", "", _doc(obj), ""]
        else:
            lines += [f"### `{name}`", "", f"Constant: {_value(obj)}.", ""]
    return lines


def _parsers():
    """(command, parser) for `fastconv` and each of its subcommands."""
    from . import cli

    parser = cli.build_parser()
    found = [("fastconv", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [(f"fastconv {name}", sub) for name, sub in action.choices.items()]
    return found


def cli_section():
    lines = ["## Command line", "",
             "`fastconv COMMAND ...` (also `python -m fastconv COMMAND ...`), as `--help` prints it.", ""]
    for command, parser in _parsers():
        parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=HELP_WIDTH)
        parser.prog = command
        text = parser.format_help().replace("optional arguments:", "options:")  # Python < 3.10 wording
        lines += [f"### `{command}`", "", "```", text.rstrip(), "```", ""]
    return lines


def generate():
    """The whole page as one string."""
    sections = [entry for entry in MODULES if _exists(entry[0])]
    lines = [HEADER, "## Contents", ""]
    lines += [f"- [{title}](#{_anchor(title)})" for _, title, _ in sections]
    lines += ["- [Command line](#command-line)", ""]
    for entry in sections:
        lines += module_section(*entry)
    lines += cli_section()
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastconv._apidoc", description=__doc__.split("\n")[0])
    parser.add_argument("--check", metavar="PATH", help="exit 1 (and say so) if PATH differs from the output")
    args = parser.parse_args(argv)
    page = generate()
    if args.check:
        with open(args.check, encoding="utf-8") as handle:
            if handle.read() != page:
                print(f"{args.check} is stale: regenerate it with `python -m fastconv._apidoc > {args.check}`",
                      file=sys.stderr)
                return 1
        return 0
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
