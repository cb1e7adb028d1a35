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
_TORCH_COLUMNS = ("torch ms", "fc/torch")


def table_columns(with_torch):
    return [c for c in COLUMNS if with_torch or c[0] not in _TORCH_COLUMNS]


def format_row(row, columns):
    first, *rest = columns
    return f"{first[2](row):<{first[1]}} " + " ".join(
        f"{fn(row):<{width}}" if header in ("shape", "baseline") else f"{fn(row):>{width}}"
        for header, width, fn in rest)


def format_header(columns):
    first, *rest = columns
    return f"{first[0]:<{first[1]}} " + " ".join(
        f"{h:<{w}}" if h in ("shape", "baseline") else f"{h:>{w}}" for h, w, _ in rest)


def format_table(rows, with_torch):
    """The whole table as text (the command prints it row by row as they are measured)."""
    columns = table_columns(with_torch)
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


def preamble(machine, cases):
    """The lines above the table: what was measured on, what the short shape names and columns mean."""
    return [
        machine_line(machine),
        f"float32, median per call; % peak is of {machine['gemm_peak_basis']}: "
        f"{machine['gemm_peak_gflops']:.1f} GFLOP/s",
        machine_module.describe_blas(machine["blas"]),
        *(f"WARNING: {text}" for text in machine["blas_warnings"]),
        "shapes (conv: N x C x H x W * K x C x R x S; gemm: M x K @ K x N):",
        shapes_legend(cases),
        "baseline: fastconv.reference (NumPy), numpy.matmul for gemm, 1 thread for conv2d-threads;",
        "speed-up = baseline / fastconv; fc/torch < 1 means fastconv is faster.",
    ]


# The run's section of docs/performance.md sits between these markers; the rest of the page is kept.
MARKDOWN_BEGIN = "<!-- fastconv bench --markdown: begin (this part is rewritten by every run) -->"
MARKDOWN_END = "<!-- fastconv bench --markdown: end -->"
MARKDOWN_TITLE = "# Performance\n\n"


def markdown_section(machine, cases, rows, command):
    """The run as Markdown: when, where, the command, then the preamble and table in a code block."""
    with_torch = any("torch_s" in row for row in rows)
    lines = [MARKDOWN_BEGIN, f"Run of {machine['date']} (UTC), 1-minute load average {machine['loadavg_1min']}:",
             f"`{command}`", "", "```"]
    lines += preamble(machine, cases) + ["", format_table(rows, with_torch), "```", MARKDOWN_END]
    return "\n".join(lines) + "\n"


def write_markdown(path, section):
    """Put `section` into the Markdown page at `path`: between the markers if the page has them, else
    appended (a new page gets a title)."""
    try:
        with open(path, encoding="utf-8") as handle:
            page = handle.read()
    except FileNotFoundError:
        page = MARKDOWN_TITLE
    if MARKDOWN_BEGIN in page and MARKDOWN_END in page:
        before, rest = page.split(MARKDOWN_BEGIN, 1)
        after = rest.split(MARKDOWN_END, 1)[1].lstrip("\n")
        page = before + section + ("\n" + after if after else "")
    else:
        page = page.rstrip("\n") + "\n\n" + section
    with atomic_write(path, "w") as handle:
        handle.write(page)
