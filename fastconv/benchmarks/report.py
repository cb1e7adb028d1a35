"""Reporting a run: the text table `fastconv bench` prints, the JSON document, the bar chart and the
Markdown page (docs/performance.md) that `fastconv bench --markdown` writes."""
import dataclasses

from .. import functional
from . import machine as machine_module
from .._io import atomic_write


def report(machine, settings, rows):
    """The JSON document of a run."""
    return {"machine": machine, "settings": dataclasses.asdict(settings), "results": rows}


# (header, width, row -> text); the torch columns are dropped when PyTorch is absent.
def _ms(value):
    return "-" if value is None else (f"{value * 1e3:.4f}" if value < 1e-3 else f"{value * 1e3:.2f}")


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


_BASELINE_LABELS = {"reference": "ref", "numpy": "numpy", "1-thread": "1 thread"}
COLUMNS = [
    ("case", 15, lambda r: r["kind"]),
    ("shape", 17, lambda r: r["shape"]),
    ("fastconv ms", 12, lambda r: _ms(r["fastconv_s"])),
    ("baseline", 9, lambda r: _BASELINE_LABELS.get(r["baseline"], r["baseline"])),
    ("baseline ms", 12, lambda r: _ms(r["reference_s"])),
    ("speed-up", 9, lambda r: _num(r["speedup"], ".2f") + ("x" if r["speedup"] else "")),
    ("torch ms", 10, lambda r: _ms(r.get("torch_s"))),
    ("fc/torch", 9, lambda r: _num(r.get("torch_ratio"), ".2f")),
    ("GFLOP/s", 8, lambda r: _num(r.get("gflops"), ".1f")),
    ("% peak", 7, lambda r: _num(r.get("peak_percent"), ".0f")),
]
_TORCH_COLUMNS = ("torch ms", "fc/torch", "fc/torch min-max")


def _range(key):
    """A ratio's min-max over the paired blocks (`fastconv bench --pairs N`), '-' for an unpaired row."""
    def text(row):
        low_high = row.get(key)
        return "-" if not low_high else f"{low_high[0]:.2f}-{low_high[1]:.2f}"
    return text


# Shown after the ratio they qualify when a run times its blocks in pairs.
PAIRED_COLUMNS = {"speed-up": ("speed-up min-max", 16, _range("speedup_range")),
                  "fc/torch": ("fc/torch min-max", 16, _range("torch_ratio_range"))}


def _kernels(row):
    """The kernels auto ran on a conv row: the forward's, or grad_x's / grad_w's."""
    plan = row.get("plan")
    if not plan:
        return "-"
    return plan["forward"] if row["kind"] == "conv2d-fwd" else f"{plan['grad_x']} / {plan['grad_w']}"


PLAN_COLUMN = ("kernels (auto)", 36, _kernels)
_LEFT_ALIGNED = ("shape", "baseline", PLAN_COLUMN[0])


def table_columns(with_torch, with_plan=False, paired=False):
    """The table's columns: without PyTorch no torch columns; the kernel names when conv2d_plan exists;
    each ratio's min-max over the pairs when the blocks were timed in pairs."""
    columns = []
    for column in COLUMNS:
        columns.append(column)
        if paired and column[0] in PAIRED_COLUMNS:
            columns.append(PAIRED_COLUMNS[column[0]])
    columns = [c for c in columns if with_torch or c[0] not in _TORCH_COLUMNS]
    return columns + [PLAN_COLUMN] if with_plan else columns


def format_row(row, columns):
    first, *rest = columns
    return f"{first[2](row):<{first[1]}} " + " ".join(
        f"{fn(row):<{width}}" if header in _LEFT_ALIGNED else f"{fn(row):>{width}}"
        for header, width, fn in rest)


def format_header(columns):
    first, *rest = columns
    return f"{first[0]:<{first[1]}} " + " ".join(
        f"{h:<{w}}" if h in _LEFT_ALIGNED else f"{h:>{w}}" for h, w, _ in rest)


def format_table(rows, with_torch, paired=False):
    """The whole table as text (the command prints it row by row as they are measured)."""
    columns = table_columns(with_torch, with_plan=any("plan" in row for row in rows), paired=paired)
    return "\n".join([format_header(columns)] + [format_row(r, columns) for r in rows])


def shapes_legend(cases):
    """One line per shape name used by `cases`: what the short names in the table stand for."""
    seen = {}
    for case in cases:
        seen.setdefault(case.shape_name, case.describe())
    return "\n".join(f"  {name:<17} {text}" for name, text in seen.items())


def load_pyplot():
    """matplotlib.pyplot with a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(rows, path, plt):
    """Horizontal bars, one group per row of the table: fastconv, baseline and torch time (log scale)."""
    series = [("fastconv", "fastconv_s", "tab:blue"), ("baseline", "reference_s", "tab:gray"),
              ("torch", "torch_s", "tab:orange")]
    series = [s for s in series if any(r.get(s[1]) for r in rows)]
    height = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    for i, (label, key, color) in enumerate(series):
        positions = [n + i * height for n in range(len(rows))]
        values = [(r.get(key) or 0) * 1e3 for r in rows]
        ax.barh(positions, values, height=height, label=label, color=color)
    ax.set_yticks([n + 0.4 - height / 2 for n in range(len(rows))])
    ax.set_yticklabels([r["name"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median time per call, ms (log scale)")
    ax.set_title(f"fastconv bench ({functional.get_num_threads()} threads, float32)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine_line(machine):
    """fastconv's build, the CPU, threads and cores, numpy's and torch's versions, in one line."""
    info = machine["fastconv"]
    torch_text = f"torch {machine['torch']}" if machine["torch"] else "torch not installed (no torch columns)"
    return (f"fastconv {info.get('version')} ({info.get('simd')}, openmp={info.get('openmp')}) on {machine['cpu']}, "
            f"{machine['threads']} of {machine['cores']} cores; numpy {machine['numpy']}; {torch_text}")


def preamble(machine, cases, pairs=1):
    """The lines above the table: what was measured on, what the short shape names and columns mean."""
    timing_text = "median per call" if pairs == 1 else (
        f"median per call over {pairs} alternating blocks of fastconv and PyTorch / numpy.matmul; "
        f"ratios: median of the {pairs} per-pair ratios (min-max beside them)")
    return [
        machine_line(machine),
        f"float32, {timing_text}; % peak is of {machine['gemm_peak_basis']}: "
        f"{machine['gemm_peak_gflops']:.1f} GFLOP/s",
        machine_module.describe_blas(machine["blas"]),
        *(f"WARNING: {text}" for text in machine["blas_warnings"]),
        "shapes (conv: N x C x H x W * K x C x R x S; gemm: M x K @ K x N):",
        shapes_legend(cases),
        "baseline: fastconv.reference (NumPy), numpy.matmul for gemm, 1 thread for conv2d-threads;",
        "speed-up = baseline / fastconv; fc/torch < 1 means fastconv is faster.",
    ]


# Each kind of run has its section of docs/performance.md between two markers; the rest of the page is kept.
def markers(kind):
    """The (begin, end) markers of a kind of run ("table" or "contention") in the Markdown page."""
    return (f"<!-- fastconv bench --markdown: {kind} begin (rewritten by every such run) -->",
            f"<!-- fastconv bench --markdown: {kind} end -->")


MARKDOWN_TITLE = "# Performance\n\n"


def markdown_section(kind, machine, body_lines, command):
    """A run as Markdown: its markers, when and where, the command, then `body_lines` in a code block."""
    begin, end = markers(kind)
    lines = [begin, f"Run of {machine['date']} (UTC), 1-minute load average {machine['loadavg_1min']}:",
             f"`{command}`", "", "```", *body_lines, "```", end]
    return "\n".join(lines) + "\n"


def table_body(machine, cases, rows, pairs=1):
    """The lines `fastconv bench` prints: preamble, blank line, table."""
    return preamble(machine, cases, pairs) + ["", format_table(rows, any("torch_s" in row for row in rows), pairs > 1)]


def write_markdown(path, kind, section):
    """Put `section` into the Markdown page at `path`: between the page's markers of `kind` if it has
    them, else appended (a new page gets a title)."""
    begin, end = markers(kind)
    try:
        with open(path, encoding="utf-8") as handle:
            page = handle.read()
    except FileNotFoundError:
        page = MARKDOWN_TITLE
    if begin in page and end in page:
        before, rest = page.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        page = before + section + ("\n" + after if after else "")
    else:
        page = page.rstrip("\n") + "\n\n" + section
    with atomic_write(path, "w") as handle:
        handle.write(page)
