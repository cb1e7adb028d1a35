"""`fastconv bench`: time every case, print the table as rows complete, optionally save JSON, a bar
chart and the Markdown page (docs/performance.md)."""
import dataclasses
import os
import shlex
import sys

from .. import _io
from . import cases as catalogue
from . import contention, impls, machine, report, timing


def run_bench(args, cases=None, settings=None):
    """Run `fastconv bench` with argparse's `args` (quick, json, plot, markdown, contention; threads
    already applied). With args.contention only the contention case runs (fastconv.benchmarks.contention).

    `cases` / `settings` default to the whole catalogue and QUICK or FULL (tests pass tiny ones)."""
    plt = None
    if args.plot:
        plt = report.load_pyplot()
        if plt is None:  # refuse before a minute of timing, not after
            print("fastconv bench: --plot needs matplotlib: pip install 'fastconv[plot]'", file=sys.stderr)
            return 2
    if getattr(args, "contention", False):
        return _run_contention(args)
    if getattr(args, "onnx", False):
        return _run_onnx(args)
    cases = catalogue.default_cases() if cases is None else cases
    settings = settings or (timing.QUICK if args.quick else timing.FULL)
    if getattr(args, "pairs", 1) > 1:
        settings = dataclasses.replace(settings, pairs=args.pairs)
    torch = impls.load_torch()
    peak = timing.measure_peak(settings)
    info = machine.machine_info(peak, torch, settings.peak_size)
    print("\n".join(report.preamble(info, cases, settings.pairs)) + "\n", flush=True)
    columns = report.table_columns(torch is not None, with_plan=impls.have_plan(), paired=settings.pairs > 1)
    print(report.format_header(columns), flush=True)
    rows = timing.run_cases(cases, settings, torch is not None, peak,
                            on_row=lambda row: print(report.format_row(row, columns), flush=True))
    if args.json:
        _io.write_json(args.json, report.report(info, settings, rows))
        print(f"wrote {args.json}")
    if args.markdown:
        section = report.markdown_section("table", info, report.table_body(info, cases, rows, settings.pairs),
                                          _command_line())
        report.write_markdown(args.markdown, "table", section)
        print(f"wrote {args.markdown}")
    if plt is not None:
        report.plot(rows, args.plot, plt)
        print(f"wrote {args.plot}")
    return 0


def _run_contention(args):
    torch = impls.load_torch()
    info = machine.machine_info(None, torch)
    print(report.machine_line(info), flush=True)
    result = contention.measure(contention.ROUNDS["quick" if args.quick else "full"])
    lines = contention.format_result(result)
    print("\n".join(lines), flush=True)
    if args.json:
        _io.write_json(args.json, {"machine": info, "contention": result})
        print(f"wrote {args.json}")
    if args.markdown:
        body = [report.machine_line(info), *lines]
        report.write_markdown(args.markdown, "contention",
                              report.markdown_section("contention", info, body, _command_line()))
        print(f"wrote {args.markdown}")
    return 0


def _run_onnx(args):
    from . import inference

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("fastconv bench: --onnx needs onnx and onnxruntime: pip install 'fastconv[test]'", file=sys.stderr)
        return 2
    from .. import functional

    rounds, runs = (2, 2) if args.quick else (6, 3)
    images = 2000 if args.quick else inference.IMAGES
    info = machine.machine_info(None, None)
    print(report.machine_line(info), flush=True)
    rows = inference.measure_predict_vs_ort(inference.BATCH_SIZES, images, functional.get_num_threads(), rounds,
                                            runs)
    print("\n".join(inference.format_rows(rows)), flush=True)
    if args.json:
        _io.write_json(args.json, {"machine": info, "onnx_inference": rows})
        print(f"wrote {args.json}")
    return 0


def _command_line(argv=None):
    """The command as the user typed it (for the Markdown page), program name shortened to `fastconv`
    and absolute paths shown relative to the working directory, so the page names no private path."""
    argv = sys.argv if argv is None else argv
    if not argv or "fastconv" not in argv[0]:
        return "fastconv bench"
    return shlex.join(["fastconv"] + [_portable_path(arg) for arg in argv[1:]])


def _portable_path(arg):
    """`arg` relative to the working directory if it is an absolute path under it, its file name if
    it is an absolute path elsewhere, otherwise unchanged."""
    if not os.path.isabs(arg):
        return arg
    relative = os.path.relpath(arg, os.getcwd())
    return relative if not relative.startswith("..") else os.path.basename(arg)
