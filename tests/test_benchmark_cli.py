"""The machinery of `fastconv bench` (fastconv.benchmarks) on tiny cases: no timing is asserted.

Checked: the case list holds the issue's shapes; every implementation of a case computes the same
thing (so the suite compares like with like); the runner's rows, table, JSON and plot; the CLI wiring.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np
import pytest

import fastconv
from fastconv import cli, models, optim, reference
from fastconv.benchmarks import cases as catalogue
from fastconv.benchmarks import command, contention, impls, machine, report, timing

TINY = timing.Settings(budget_s=0.0, max_rounds=2, baseline_max_rounds=1, min_round_s=1e-4, peak_size=32,
                    settle_s=0.0)
CONV = catalogue.ConvShape(2, 3, 7, 6, 4, 3, 2, 1)
POOL = catalogue.PoolShape(2, 3, 6, 8, 2, 2)


def tiny_cases():
    """One small case of every kind fastconv bench runs."""
    cases = [catalogue.Case(kind, "tiny", CONV) for kind in catalogue.CONV_KINDS]
    cases += [catalogue.Case(kind, "tiny-pool", POOL) for kind in catalogue.POOL_KINDS]
    cases += [catalogue.Case("gemm", "5x7x6", catalogue.GemmShape(5, 6, 7)), catalogue.Case("conv2d-threads", "tiny", CONV)]
    cases += [catalogue.Case(kind, "16img", catalogue.LeNetRun(16, 8)) for kind in catalogue.LENET_KINDS]
    return cases


def as_arrays(result):
    """A kernel's result (array, tuple of arrays, nested tuples, torch tensors) as a flat list of arrays."""
    if isinstance(result, (tuple, list)):
        return [a for item in result for a in as_arrays(item)]
    if hasattr(result, "detach"):
        result = result.detach().numpy()
    return [np.asarray(result, dtype=np.float64)]


def namespace(**overrides):
    values = dict(quick=True, json=None, threads=None, plot=None, markdown=None, contention=False)
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setattr(impls, "load_torch", lambda: None)


# ---- the cases ------------------------------------------------------------------------------------

def test_issue_shapes_are_defined():
    issue = {"lenet-c1": (64, 1, 28, 28, 6, 5, 1, 2), "lenet-c3": (64, 6, 14, 14, 16, 5, 1, 0),
             "seed000-c2": (100, 25, 13, 13, 50, 3, 1, 0), "seed002-c4": (64, 64, 10, 10, 128, 3, 1, 0),
             "vgg-ish": (32, 64, 32, 32, 128, 3, 1, 1), "strided": (32, 32, 31, 31, 64, 3, 2, 1)}
    assert {name: tuple(vars(shape).values()) for name, shape in catalogue.CONV_SHAPES.items()} == issue
    assert catalogue.PoolShape(64, 6, 28, 28, 2, 2) in catalogue.POOL_SHAPES.values()
    names = [case.name for case in catalogue.default_cases()]
    assert len(names) == len(set(names)), "case names must be unique (they are the JSON keys)"
    for shape in catalogue.CONV_SHAPES:
        assert f"conv2d-fwd {shape}" in names and f"conv2d-bwd {shape}" in names


@pytest.mark.parametrize("name", sorted(catalogue.CONV_SHAPES))
def test_conv_geometry_matches_the_kernel(name):
    """out_hw and the im2col GEMM shape agree with what conv2d itself produces (batch 0: no work)."""
    s = catalogue.CONV_SHAPES[name]
    y = fastconv.conv2d(np.zeros((0, s.c, s.h, s.w), np.float32), np.zeros((s.k, s.c, s.kernel, s.kernel),
                        np.float32), stride=s.stride, padding=s.pad)
    assert y.shape[2:] == s.out_hw
    assert s.gemm_shape == (s.k, y.shape[2] * y.shape[3], s.c * s.kernel**2)


def test_suite_parameters_have_unique_ids_and_skip_auto():
    params = catalogue.suite_parameters(catalogue.default_cases())
    ids = [(case.kind, name) for (case, _), name in params]
    assert len(ids) == len(set(ids))
    assert all(impl not in catalogue.SUITE_SKIPS for (_, impl), _ in params)


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="implementation"):
        impls.prepare(catalogue.Case("gemm", "g", catalogue.GemmShape(2, 2, 2)), "blas")


# ---- every implementation computes the same thing -------------------------------------------------

@pytest.mark.parametrize("case", [c for c in tiny_cases() if not c.kind.startswith("lenet")], ids=lambda c: c.kind)
def test_implementations_agree(case):
    results = {}
    for impl in case.implementations:
        try:
            results[impl] = as_arrays(impls.prepare(case, impl).fn())
        except impls.Unavailable:
            assert impl == "torch"  # the only optional implementation of the kernel cases
    baseline = results.pop(case.roles[1])
    assert results, "nothing to compare against the baseline"
    for impl, arrays in results.items():
        assert len(arrays) == len(baseline), impl
        for got, want in zip(arrays, baseline):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=impl)


def test_thread_case_restores_the_thread_count():
    before = fastconv.get_num_threads()
    impls.prepare(catalogue.Case("conv2d-threads", "tiny", CONV), "1-thread").fn()
    assert fastconv.get_num_threads() == before


def lenet_steps(model, x, y, steps, lr=0.05):
    """`steps` SGD steps (momentum 0.9) of `model` on the batch (x, y); returns the losses."""
    optimizer = optim.SGD(lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        loss, _ = model.loss_and_gradients(x, y)
        optimizer.step(model.parameters(), model.gradients())
        losses.append(loss)
    return losses


@pytest.mark.parametrize("name, algo", [("lenet5", "direct"), ("lenet5", "im2col"), ("lenet5_classic", "auto")])
def test_reference_backend_takes_the_same_steps_as_fastconv(name, algo):
    """The reference row times the very same model and work as the fastconv rows, on NumPy kernels."""
    x, y = impls.lenet_data(8)
    fast, slow = models.get(name, seed=1, algo=algo), models.get(name, seed=1)
    slow.backend = "reference"
    assert all(layer.kernels is reference for layer in slow.layers)
    assert lenet_steps(fast, x, y, 3) == pytest.approx(lenet_steps(slow, x, y, 3), rel=1e-4)
    for (name, got), (_, want) in zip(fast.named_parameters(), slow.named_parameters()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


def test_reference_lenet_learns():
    """Repeated steps on one small batch memorise it: the loss falls well below its first value."""
    x, y = impls.lenet_data(8)
    model = models.lenet5(seed=0)
    model.backend = "reference"
    losses = lenet_steps(model, x, y, 40, lr=0.01)
    assert losses[-1] < 0.8 * losses[0]


def test_reference_lenet_matches_torch():
    """The model's step (on either backend) is PyTorch's step: same weights in, same weights out."""
    torch = pytest.importorskip("torch")
    x, y = impls.lenet_data(8)
    model, torch_model = models.lenet5(seed=0), impls.torch_lenet5(torch)
    model.backend = "reference"
    ours = [layer for layer in model.layers if layer.params]
    theirs = [m for m in torch_model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    as_torch = lambda layer, w: w if w.ndim == 4 else w.T.copy()  # noqa: E731  Dense keeps (in, out)
    with torch.no_grad():
        for layer, twin in zip(ours, theirs):
            twin.weight.copy_(torch.from_numpy(as_torch(layer, layer.params["weight"])))
            twin.bias.copy_(torch.from_numpy(layer.params["bias"]))
    optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.05, momentum=0.9)
    torch_losses = []
    for _ in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch_model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        torch_losses.append(loss.item())
    assert lenet_steps(model, x, y, 2) == pytest.approx(torch_losses, rel=1e-4)
    for layer, twin in zip(ours, theirs):
        np.testing.assert_allclose(layer.params["weight"], as_torch(layer, twin.weight.detach().numpy()),
                                   rtol=1e-3, atol=1e-5, err_msg=layer.name)


def test_backend_is_checked_and_not_saved(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        models.lenet5(seed=0).backend = "numpy"
    model = fastconv.Sequential([fastconv.layers.Dense(3)], input_shape=(4,), backend="reference")
    model.save(tmp_path / "m.npz")
    assert fastconv.Sequential.load(tmp_path / "m.npz").backend == "fastconv"


# ---- the runner -----------------------------------------------------------------------------------

def test_measure_counts_rounds_and_warms_up():
    calls = {"fn": 0, "warmup": 0}

    def fn():
        calls["fn"] += 1

    def warmup():
        calls["warmup"] += 1

    result = timing.measure(impls.Bench(fn, warmup), budget_s=0.0, max_rounds=3, min_round_s=1e-4)
    assert calls["warmup"] == 1
    assert 1 <= result["rounds"] <= 3
    assert calls["fn"] >= result["rounds"]
    assert 0 < result["min_s"] <= result["median_s"]


def check_row(row, case, peak):
    assert row["name"] == case.name and row["kind"] == case.kind and row["dims"] == case.describe()
    assert row["fastconv_s"] > 0 and row["reference_s"] > 0
    assert row["speedup"] == pytest.approx(row["reference_s"] / row["fastconv_s"])
    if case.flops():
        assert row["gflops"] == pytest.approx(case.flops() / row["fastconv_s"] / 1e9)
        assert row["peak_percent"] == pytest.approx(100 * row["gflops"] / peak)
    else:
        assert "gflops" not in row


def test_run_cases_rows_without_torch():
    cases = tiny_cases()
    seen = []
    rows = timing.run_cases(cases, TINY, torch_available=False, peak_gflops=10.0, on_row=seen.append)
    assert seen == rows and len(rows) == len(cases)
    for row, case in zip(rows, cases):
        check_row(row, case, 10.0)
        assert "torch_s" not in row and "torch_ratio" not in row


def test_run_cases_rows_with_torch():
    pytest.importorskip("torch")
    cases = [c for c in tiny_cases() if c.kind in ("conv2d-fwd", "conv2d-bwd", "max_pool2d-fwd")]
    for row, case in zip(timing.run_cases(cases, TINY, True, 10.0), cases):
        check_row(row, case, 10.0)
        assert row["torch_s"] > 0
        assert row["torch_ratio"] == pytest.approx(row["fastconv_s"] / row["torch_s"])


def test_pairs_alternate_blocks_and_take_the_median_of_paired_ratios(monkeypatch):
    """--pairs N: fastconv and its comparisons alternate N times (the slow reference runs once) and a
    ratio is the median of the per-pair ratios, not the ratio of the medians."""
    per_impl = {"auto": iter([1.0, 2.0, 10.0]), "torch": iter([2.0, 1.0, 20.0]),
                "reference": iter([50.0]), "fastconv": iter([1.0, 2.0, 10.0]), "numpy": iter([1.0, 4.0, 30.0])}
    order = []

    def fake_block(bench, impl, settings):
        order.append(impl)
        return next(per_impl[impl])

    monkeypatch.setattr(timing, "_time_block", fake_block)
    monkeypatch.setattr(impls, "prepare", lambda case, impl: impl)
    settings = dataclasses.replace(TINY, pairs=3)
    conv = catalogue.Case("conv2d-fwd", "tiny", CONV)
    row = timing.run_case(conv, settings, torch_available=True, peak_gflops=None)
    assert order == ["auto", "torch", "reference", "auto", "torch", "auto", "torch"]
    assert row["fastconv_s"] == 2.0 and row["torch_s"] == 2.0
    assert row["torch_ratio"] == 0.5 and row["torch_ratio_range"] == [0.5, 2.0]
    assert row["speedup"] == 25.0 and "speedup_range" not in row
    order.clear()
    gemm = catalogue.Case("gemm", "5x7x6", catalogue.GemmShape(5, 6, 7))
    row = timing.run_case(gemm, settings, torch_available=True, peak_gflops=None)
    assert order == ["fastconv", "numpy"] * 3
    assert row["speedup"] == 2.0 and row["speedup_range"] == [1.0, 3.0]
    columns = report.table_columns(with_torch=True, paired=True)
    headers = [c[0] for c in columns]
    assert headers.index("speed-up min-max") == headers.index("speed-up") + 1
    assert report.format_row(row, columns).split()[6] == "1.00-3.00"


def test_cli_pairs_reach_the_settings(monkeypatch, capsys, no_torch):
    seen = {}

    def fake_run_cases(cases, settings, torch_available, peak, on_row=None):
        seen["pairs"] = settings.pairs
        return []

    monkeypatch.setattr(timing, "run_cases", fake_run_cases)
    monkeypatch.setattr(timing, "measure_peak", lambda settings: 1.0)
    assert cli.main(["bench", "--quick", "--pairs", "3"]) == 0
    assert seen["pairs"] == 3 and "3 alternating blocks" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["bench", "--pairs", "0"])


def test_table_has_one_aligned_line_per_row():
    rows = timing.run_cases(tiny_cases()[:3], TINY, False, 10.0)
    for with_torch in (False, True):
        lines = report.format_table(rows, with_torch).splitlines()
        assert len(lines) == 1 + len(rows)
        assert ("torch ms" in lines[0]) == with_torch and "% peak" in lines[0]
        assert len({len(line) for line in lines}) == 1, "columns must line up"


# ---- the command ----------------------------------------------------------------------------------

def test_run_bench_prints_table_and_writes_json(tmp_path, capsys, no_torch):
    path = tmp_path / "bench.json"
    cases = tiny_cases()
    assert command.run_bench(namespace(json=str(path)), cases=cases, settings=TINY) == 0
    out = capsys.readouterr().out
    assert "fastconv ms" in out and "torch ms" not in out
    data = json.loads(path.read_text())
    machine = data["machine"]
    for key in ("cpu", "cores", "threads", "fastconv", "numpy", "torch", "date", "gemm_peak_gflops"):
        assert key in machine
    assert machine["torch"] is None and machine["threads"] == fastconv.get_num_threads()
    assert machine["fastconv"]["version"] == fastconv.__version__
    assert [r["name"] for r in data["results"]] == [c.name for c in cases]
    for row, case in zip(data["results"], cases):
        check_row(row, case, machine["gemm_peak_gflops"])
        assert row["kind"] in out


def test_cli_bench_threads_and_quick(tmp_path, monkeypatch, no_torch):
    """`fastconv bench --quick --threads 1 --json PATH` through the real argument parser."""
    cases = tiny_cases()[:2]
    monkeypatch.setattr(catalogue, "default_cases", lambda: cases)
    monkeypatch.setattr(timing, "QUICK", TINY)
    path = tmp_path / "quick.json"
    before = fastconv.get_num_threads()
    try:
        assert cli.main(["bench", "--quick", "--threads", "1", "--json", str(path)]) == 0
    finally:
        fastconv.set_num_threads(before)
    data = json.loads(path.read_text())
    assert data["settings"] == dataclasses.asdict(TINY)
    assert data["machine"]["threads"] == 1
    assert [r["name"] for r in data["results"]] == [c.name for c in cases]


def test_plot_without_matplotlib_fails_before_timing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "never.json"
    args = namespace(json=str(path), plot=str(tmp_path / "plot.png"))
    assert command.run_bench(args, cases=tiny_cases(), settings=TINY) == 2
    assert "fastconv[plot]" in capsys.readouterr().err
    assert not path.exists()


def test_plot_writes_png(tmp_path, no_torch):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    assert command.run_bench(namespace(plot=str(path)), cases=tiny_cases()[:3], settings=TINY) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_page_keeps_the_hand_written_text(tmp_path, no_torch):
    """`--markdown PAGE` writes the run between the page's markers and leaves the rest as it was."""
    page = tmp_path / "performance.md"
    begin, end = report.markers("table")
    page.write_text(f"# Performance\n\nintro\n\n{begin}\nold run\n{end}\n\nnotes\n")
    chosen = tiny_cases()[:2]
    assert command.run_bench(namespace(markdown=str(page)), cases=chosen, settings=TINY) == 0
    text = page.read_text()
    assert text.startswith("# Performance\n\nintro\n\n") and text.endswith("\nnotes\n")
    assert "old run" not in text and text.count(begin) == 1
    for case in chosen:
        assert case.kind in text
    new_page = tmp_path / "new.md"
    assert command.run_bench(namespace(markdown=str(new_page)), cases=chosen, settings=TINY) == 0
    assert new_page.read_text().startswith("# Performance\n\n" + begin)


def test_recorded_command_names_no_private_path(tmp_path, monkeypatch):
    """The page records the command with paths relative to the working directory, or as a bare file
    name when they lie outside it, so a committed page never names the writer's own directories."""
    monkeypatch.chdir(tmp_path)
    inside = str(tmp_path / "docs" / "performance.md")
    outside = os.path.join(os.path.dirname(str(tmp_path)), "elsewhere", "page.md")
    assert command._command_line(["/venv/bin/fastconv", "bench", "--markdown", inside]) == \
        "fastconv bench --markdown docs/performance.md"
    assert command._command_line(["/venv/bin/fastconv", "bench", "--markdown", outside]) == \
        "fastconv bench --markdown page.md"
    assert command._command_line(["python", "-c"]) == "fastconv bench"


# ---- the numpy baseline's BLAS kernel -------------------------------------------------------------

def test_blas_overrides_are_warned_about():
    blas = [{"internal_api": "openblas", "version": "0.3", "architecture": "Haswell", "threading_layer": "pthreads",
             "num_threads": 2}]
    warnings = machine.blas_warnings({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576",
                                      "HOME": "/root"}, blas)
    assert len(warnings) == 2
    assert warnings[0].startswith("OPENBLAS_CORETYPE=Haswell") and "openblas Haswell" in warnings[0]
    assert warnings[1].startswith("OPENBLAS_L2_SIZE=1048576") and "unset it" in warnings[1]
    assert machine.blas_warnings({"OPENBLAS_CORETYPE": ""}, blas) == []
    assert machine.describe_blas(blas) == "numpy BLAS: openblas 0.3 (Haswell kernels, pthreads, 2 threads)"


def test_missing_threadpoolctl_is_said(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl -> ImportError
    assert machine.blas_info() is None
    assert "fastconv[bench]" in machine.describe_blas(None)


def test_preamble_and_json_carry_the_blas_kernel_and_warnings(tmp_path, capsys, monkeypatch, no_torch):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # read by the report only: numpy is already loaded
    path = tmp_path / "bench.json"
    assert command.run_bench(namespace(json=str(path)), cases=tiny_cases()[:1], settings=TINY) == 0
    out = capsys.readouterr().out
    data = json.loads(path.read_text())["machine"]
    assert "numpy BLAS: " in out and "WARNING: OPENBLAS_CORETYPE=Haswell" in out
    assert data["blas"] == machine.blas_info() and data["blas_warnings"][0].startswith("OPENBLAS_CORETYPE=Haswell")


# ---- contention -----------------------------------------------------------------------------------

def cpu_seconds(pid):
    """User + system CPU time of a live process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_busy_neighbour_burns_cpu_and_is_stopped():
    with contention.busy_neighbour() as process:
        assert process.poll() is None
        if os.path.exists(f"/proc/{process.pid}/stat"):
            before = cpu_seconds(process.pid)
            time.sleep(0.5)
            assert cpu_seconds(process.pid) - before > 0.05  # it computes (at least a tenth of a core here)
    assert process.poll() is not None


def test_contention_measures_alternating_rounds(monkeypatch):
    starts = []
    real = contention.busy_neighbour
    monkeypatch.setattr(contention, "busy_neighbour", lambda: starts.append(1) or real())
    result = contention.measure(rounds=2, run=catalogue.LeNetRun(16, 8), with_torch=False)
    assert len(starts) == 2 and len(result["idle_s"]) == len(result["loaded_s"]) == 2
    assert result["idle_images_per_s"] == pytest.approx(16 / np.median(result["idle_s"]))
    assert result["loaded_over_idle"] == pytest.approx(result["loaded_images_per_s"] / result["idle_images_per_s"])
    assert "torch_idle_images_per_s" not in result
    lines = contention.format_result(result)
    assert "loaded / idle" in lines[2] and "not measured" in lines[3]


def test_cli_contention_writes_json_and_markdown(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(contention, "RUN", catalogue.LeNetRun(16, 8))
    monkeypatch.setattr(contention, "ROUNDS", {"quick": 1, "full": 1})
    path, page = tmp_path / "contention.json", tmp_path / "performance.md"
    table_begin, table_end = report.markers("table")
    page.write_text(f"# Performance\n\n{table_begin}\nthe table\n{table_end}\n")
    assert cli.main(["bench", "--contention", "--quick", "--json", str(path), "--markdown", str(page)]) == 0
    text = page.read_text()
    assert "the table" in text and "beside 1 busy process" in text.split(report.markers("contention")[0])[1]
    data = json.loads(path.read_text())
    assert data["contention"]["rounds"] == 1 and data["contention"]["loaded_images_per_s"] > 0
    assert "beside 1 busy process" in capsys.readouterr().out
    if impls.load_torch() is not None:
        assert data["contention"]["idle_over_torch"] == pytest.approx(
            data["contention"]["idle_images_per_s"] / data["contention"]["torch_idle_images_per_s"])


def test_contention_report_warns_when_idle_was_not_idle():
    result = {"dims": "16 images, batch 8", "rounds": 3, "idle_images_per_s": 1000.0, "loaded_images_per_s": 600.0,
              "loaded_over_idle": 0.6, "torch_idle_images_per_s": 400.0, "idle_over_torch": 2.5,
              "loadavg_1min_before": 3.0, "cores": 2}
    lines = contention.format_result(result)
    assert "0.60 (meets the target >= 0.55)" in lines[2] and "2.50x (meets the target >= 2.0x)" in lines[3]
    assert lines[-1].startswith("WARNING: the machine was already busy")
    result.update(loaded_over_idle=0.3, loadavg_1min_before=0.2)
    lines = contention.format_result(result)
    assert "MISSES" in lines[2] and not lines[-1].startswith("WARNING")


# ---- the kernels auto runs (fastconv.conv2d_plan) -------------------------------------------------

def fake_plan(x_shape, w_shape, stride, padding, dtype):
    assert dtype == "float32" and x_shape[1] == w_shape[1]
    return {"forward": f"fwd-k{w_shape[0]}", "grad_x": "gx", "grad_w": f"gw-s{stride}"}


def test_conv_rows_name_their_kernels(tmp_path, capsys, monkeypatch, no_torch):
    monkeypatch.setattr(fastconv.functional, "conv2d_plan", fake_plan, raising=False)
    path = tmp_path / "bench.json"
    chosen = tiny_cases()[:4]  # conv2d-fwd, conv2d-bwd, then two pooling cases
    assert command.run_bench(namespace(json=str(path)), cases=chosen, settings=TINY) == 0
    rows = json.loads(path.read_text())["results"]
    plan = {"forward": "fwd-k4", "grad_x": "gx", "grad_w": "gw-s2"}
    assert rows[0]["plan"] == rows[1]["plan"] == plan and "plan" not in rows[2]
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("case"))
    assert "kernels (auto)" in lines[header]
    assert lines[header + 1].rstrip().endswith("fwd-k4") and lines[header + 2].rstrip().endswith("gx / gw-s2")
    assert lines[header + 3].rstrip().endswith("-")
    assert len({len(line) for line in lines[header:header + 5]}) == 1, "columns must line up"


def test_no_kernel_column_without_conv2d_plan(monkeypatch):
    monkeypatch.delattr(fastconv.functional, "conv2d_plan", raising=False)
    assert impls.conv_plan(CONV) is None
    assert all(column[0] != "kernels (auto)" for column in report.table_columns(True, impls.have_plan()))


@pytest.mark.parametrize("name", sorted(catalogue.CONV_SHAPES))
def test_conv_plan_reports_what_conv2d_plan_says(name):
    shape = catalogue.CONV_SHAPES[name]
    want = fastconv.conv2d_plan((shape.n, shape.c, shape.h, shape.w), (shape.k, shape.c, shape.kernel, shape.kernel),
                                shape.stride, shape.pad, "float32")
    assert impls.conv_plan(shape) == {"forward": want.forward, "grad_x": want.grad_x, "grad_w": want.grad_w}


def test_bench_onnx_compares_predict_with_onnx_runtime(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="fastconv bench --onnx needs onnxruntime (the test extra)")
    path = tmp_path / "onnx.json"
    assert cli.main(["bench", "--onnx", "--quick", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["onnx_inference"]
    assert [row["batch_size"] for row in rows] == [256, 1024]
    for row in rows:
        assert row["max_abs_diff"] <= 1e-5            # both sides computed the same probabilities
        assert len(row["fastconv_seconds"]) == len(row["ort_seconds"]) == row["rounds"] * row["runs"]
        assert row["ratio"] == pytest.approx(row["fastconv_median_seconds"] / row["ort_median_seconds"])
        assert row["ratio_min"] == pytest.approx(min(row["fastconv_seconds"]) / min(row["ort_seconds"]))
    out = capsys.readouterr().out
    assert "fastconv/ORT" in out and "LeNet-5 predict vs ONNX Runtime" in out
