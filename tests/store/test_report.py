"""Report rendering from a history built here: inventory rows, deltas, comparisons, embedded plots."""
from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hailo_qa.store import history as H
from hailo_qa.store import report as R

PNG = b"\x89PNG\r\n\x1a\n"


def add(h, run, model, metric, value, *, target="emulator", config="int8", calib=64, nodeid=""):
    h.record(H.make_row(run_id=run, model=model, metric=metric, value=value, target=target, config=config,
                        calib_size=calib, git="deadbeef", toolchain={"onnxruntime": "x"}, nodeid=nodeid,
                        host="build-host"))


@pytest.fixture
def hist(tmp_path):
    with H.History(tmp_path / "history.sqlite") as h:
        # run 1 (accepted), run 2, run 3 (latest): yunet snr drifts down, mtcnn improves
        for run, snr, cos in (("r1", 30.0, 0.990), ("r2", 31.0, 0.991), ("r3", 25.0, 0.995)):
            add(h, run, "yunet", "snr_db", snr, nodeid="t::yunet8")
            add(h, run, "yunet", "cosine", cos, nodeid="t::yunet8")
            add(h, run, "yunet", "snr_db", snr + 10, config="int16", nodeid="t::yunet16")
            add(h, run, "yunet", "snr_db", snr - 2, calib=16, nodeid="t::yunet8c16")
            add(h, run, "mtcnn", "latency_ms", 5.0 if run != "r3" else 4.0, target="hailo8", config="int8",
                calib=64, nodeid="t::mtcnn")
            if run == "r1":
                h.accept("r1")
        h.record_outcome("r3", "t::yunet8", "passed")
        h.record_outcome("r3", "t::yunet16", "failed")
        h.record_outcome("r3", "t::mtcnn", "passed")
        yield h


def inv(data, model, config, calib):
    (row,) = [i for i in data.inventory if (i.model, i.config, i.calib_size) == (model, config, calib)]
    return row


def test_inventory_rows_deltas_and_results(hist):
    data = R.build_report(hist)
    assert data.run_id == "r3"
    y8 = inv(data, "yunet", "int8", 64)
    snr = [m for m in y8.metrics if m.row.metric == "snr_db"][0]
    assert snr.row.value == 25.0 and snr.previous.value == 31.0 and snr.baseline.value == 30.0
    assert snr.delta_prev == pytest.approx(-6.0) and snr.delta_base == pytest.approx(-5.0) and snr.regressed
    assert y8.result == "REGRESSED" and y8.tested
    assert inv(data, "yunet", "int16", 64).result == "FAIL"
    m = inv(data, "mtcnn", "int8", 64)
    assert m.result == "pass" and m.compiled == "yes"  # hailo8 rows mean a HEF ran
    assert inv(data, "yunet", "int8", 16).result == "REGRESSED"


def test_manifest_adds_untested_combinations_and_hef_presence(hist, tmp_path):
    hef = tmp_path / "m.hef"
    hef.write_bytes(b"hef")
    spec = lambda name, hef_path: SimpleNamespace(
        name=name, hef=hef_path, quantization=SimpleNamespace(configs=("int8", "int16")),
        calibration=SimpleNamespace(sizes=(64, 256)))
    data = R.build_report(hist, manifest=[spec("yunet", None), spec("mtcnn", hef), spec("new", None)])
    assert inv(data, "new", "int16", 256).result == "not tested"
    assert not inv(data, "new", "int8", 64).tested
    assert inv(data, "mtcnn", "int8", 64).compiled == "yes"
    assert inv(data, "yunet", "int8", 64).compiled == "no"


def test_markdown_opens_on_the_summary_then_plots_then_tables(hist, tmp_path):
    data = R.build_report(hist)
    plots = R.report_plots(data, tmp_path / "plots")
    md = R.render_markdown(data, plots)
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads[:3] == ["## Summary", "## Plots", "## Latest value of every figure"]
    lines = md.splitlines()
    summary = lines[lines.index("## Summary"):lines.index("## Plots")]
    (y,) = [ln for ln in summary if ln.startswith("| yunet |")]
    assert "| FAIL |" in y and "snr_db emulator/int8/calib 64: baseline 30 → 25" in y  # int16 test failed
    (m,) = [ln for ln in summary if ln.startswith("| mtcnn |")]
    assert "| pass |" in m and "latency_ms hailo8/int8/calib 64: 5 → 4" in m and "build-host: ? (hailo8)" in m
    inv_rows = [ln for ln in lines if ln.startswith("| yunet | int8 | 64 |")]
    assert len(inv_rows) == 1 and "REGRESSED" in inv_rows[0] and "snr_db=25 (-6, -5)" in inv_rows[0]
    assert any(ln.startswith("| yunet | int16 | 64 | ? | yes | FAIL |") for ln in lines)
    metric_rows = [ln for ln in lines if ln.startswith("| yunet | emulator | int8 | 64 | snr_db |")]
    assert metric_rows == ["| yunet | emulator | int8 | 64 | snr_db | 25 | 31 | -6 | 30 | -5 **REGRESSED** | — | build-host | r3 |"]
    assert "### yunet: INT8 vs INT16" in md and "| emulator snr_db | 64 | 25 | 35 |" in md
    assert "### yunet: calibration size" in md and "| emulator snr_db | int8 | 23 | 25 |" in md
    assert "`r1`" in md  # accepted baseline listed


def test_partial_run_keeps_the_other_models_latest_figures(hist):
    """After a run that touched only one model, the others still show their last numbers, not "not tested"."""
    add(hist, "r4", "yunet", "snr_db", 30.5, nodeid="t::yunet8")
    data = R.build_report(hist)
    assert data.run_id == "r4"
    m = inv(data, "mtcnn", "int8", 64)
    assert m.tested and m.result == "pass" and m.metrics[0].row.run_id == "r3"
    y8 = [x for x in inv(data, "yunet", "int8", 64).metrics if x.row.metric == "snr_db"][0]
    assert (y8.row.value, y8.previous.value, y8.regressed) == (30.5, 25.0, False)
    assert R.build_report(hist, run_id="r2").inventory  # an older run on its own
    with pytest.raises(H.HistoryError, match="run 'r9' has no rows"):
        R.build_report(hist, run_id="r9")


def test_write_report_embeds_plots(hist, tmp_path):
    err = io.StringIO()
    files = R.write_report(hist, tmp_path / "out", progress=err)
    # trends: SNR, cosine (latency_ms is no P95); INT8 vs INT16; no calibration knee (2 sizes) or variants
    titles = [ln.split(": ", 2)[2] for ln in err.getvalue().splitlines() if ": plot " in ln]
    assert titles == ["Trend: SNR", "Trend: cosine", "INT8 vs INT16: snr_db"]
    for p in files.plots:
        assert p.read_bytes().startswith(PNG) and p.stat().st_size > 5000
    page = files.html.read_text()
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(imgs) == 3 and all(base64.b64decode(i).startswith(PNG) for i in imgs)
    assert "<td class=\"bad\">REGRESSED</td>" in page and "INT8 vs INT16" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.index("id='summary'") < page.index("id='plots'") < page.index("id='tables'")
    assert page.index("<h3>Trend: SNR</h3>") < page.index("<img")  # captions above their plot
    md = files.markdown.read_text()
    assert "![Trend: SNR](plots/01_Trend_SNR.png)" in md


def test_constant_figures_are_not_plotted_as_trends(tmp_path):
    with H.History(tmp_path / "h.sqlite") as h:
        for k in range(5):
            add(h, f"r{k}", "m", "snr_db", 30.0)  # never changes
            add(h, f"r{k}", "m", "node_count", 10.0)
        data = R.build_report(h)
    assert R.report_plots(data, tmp_path / "p") == []
    assert "| m | — | recorded | no change |" in R.render_markdown(data)


def test_empty_history_renders(tmp_path):
    with H.History(tmp_path / "h.sqlite") as h:
        files = R.write_report(h, tmp_path / "out", progress=None)
    assert files.plots == () and "No metrics recorded." in Path(files.markdown).read_text()


def test_thousand_runs_plot_on_a_time_axis_with_knee_and_variants(tmp_path):
    from tests.store import synth

    with H.History(tmp_path / "h.sqlite") as h:
        synth.fill(h, 120)
        err = io.StringIO()
        files = R.write_report(h, tmp_path / "out", progress=err)
    titles = [ln.split(": ", 2)[2] for ln in err.getvalue().splitlines() if ": plot " in ln]
    assert titles == ["Trend: SNR", "Trend: cosine", "Trend: TAR", "Trend: latency P95", "INT8 vs INT16: snr_db",
                      "snr_db against calibration size", "Variants side by side: tar_at_far1e-3"]
    md = files.markdown.read_text()
    assert "★ marks the knee" in md and "yunet int8: " in md
    assert "node_count" not in "".join(t for t in titles)
    summary = md[md.index("## Summary"):md.index("## Plots")]
    assert "build-host: ort-emulator@0.1 (emulator)" in summary and "pi-5: hailort@4.23 (hailo8 0000:01:00.0)" in summary


# -- embedder variants (issue 11 item 5) ---------------------------------------------------------------------------
def _rec(h, run, variant, figs, *, target="emulator", config="int8", calib=16, stage="float-enrolled",
         backend=("ort-emulator", "1.0")):
    for k, v in figs.items():
        h.record(H.make_row(run_id=run, model="mfn", metric=f"recognition.{k}", value=v, target=target,
                            config=config, calib_size=calib, variant=variant, stage=stage, git="x", toolchain={},
                            backend=SimpleNamespace(name=backend[0], version=backend[1], hailo=backend[0] == "hailort",
                                                    details={}, config=config)))


GOOD = {"pre_norm_mean": 16.6, "mean_same": 0.68, "min_same": 0.43, "diff_p95": 0.20, "max_diff": 0.44,
        "margin": -0.015, "tar": 1.0, "far": 0.016, "tar_at_far": 1.0, "rank1": 1.0, "pre_norm_distance_drop": 4.0,
        "distance.112px.match_rate": 1.0, "distance.112px.similarity_mean": 0.71, "distance.112px.pre_norm_mean": 17.3,
        "distance.40px.match_rate": 1.0, "distance.40px.similarity_mean": 0.67, "distance.40px.pre_norm_mean": 16.1,
        "distance.20px.match_rate": 0.88, "distance.20px.similarity_mean": 0.47, "distance.20px.pre_norm_mean": 13.3,
        "smallest_passing_face_px": 20, "session_similarity_spread": 0.0}


@pytest.fixture
def variant_hist(tmp_path):
    with H.History(tmp_path / "history.sqlite") as h:
        # build host run: float, INT8 and INT16-selective on the emulator
        _rec(h, "host", "float", {**GOOD, "mean_same": 0.70}, target="float", config="", calib=None,
             backend=("onnxruntime", "1.0"))
        _rec(h, "host", "int16_selective-calib2048@emulator", {**GOOD, "mean_same": 0.66}, config="int16_selective",
             calib=2048)
        _rec(h, "host", "int8-calib16@emulator", GOOD)
        _rec(h, "host", "int8-calib16@emulator", {**GOOD, "mean_same": 0.10}, stage="self-enrolled")  # ignored
        # the Pi's run, same history: a HEF whose sessions drift and whose quality score does not fall
        _rec(h, "pi", "int8@hailo8", {**GOOD, "pre_norm_distance_drop": 0.0, "distance.40px.match_rate": 0.25,
                                      "diff_p95": 0.35, "session_similarity_spread": 0.38,
                                      "session_match_spread": 4}, target="hailo8", calib=None,
             backend=("hailort", "4.23.0"))
        for metric, value in (("p95_ms", 3.4), ("core_p95_ms", 2.9)):  # as tests/test_hailo8_latency.py records
            h.record(H.make_row(run_id="pi", model="mfn", metric=metric, value=value, target="hailo8",
                                variant="int8@hailo8", git="x", toolchain={}))
        yield h


def test_variant_comparison_orders_judges_and_meets_device_and_emulator_rows(variant_hist, tmp_path):
    data = R.build_report(variant_hist)
    rows = data.variants["mfn"]
    assert [r.variant for r in rows] == ["int8-calib16@emulator", "int16_selective-calib2048@emulator", "int8@hailo8",
                                         "float"]
    base, sel, dev, flt = rows
    assert base.viable and base.figures["mean_same"] == 0.68  # float-enrolled wins over self-enrolled
    assert not sel.viable and sel.reasons == ("same-person 0.66 < INT8 baseline 0.68",)
    assert not dev.viable and len(dev.reasons) == 4 and dev.backend == "hailort@4.23.0"
    assert "sessions disagree (match count spread 4, best similarity spread 0.38)" in dev.reasons
    assert any("match rate at 40 px 0.25" in r for r in dev.reasons)
    assert dev.figures["latency_p95_ms"] == 3.4 and flt.viable is None  # end to end, not the device-only P95
    assert "latency_p95_ms" not in base.figures  # no latency where none was measured
    assert base.curve[0] == (112, 0.71, 17.3) and base.curve[-1][0] == 20
    header, body = R.variant_tables(data)["mfn"]
    assert header[0] == "variant" and body[0][-1] == "viable" and body[1][-1].startswith("NOT viable: same-person")
    files = R.write_report(variant_hist, tmp_path / "rep", progress=None)
    md = files.markdown.read_text()
    assert "## Embedder variants" in md and "| int8@hailo8 | hailort@4.23.0 |" in md
    page = files.html.read_text()
    assert "NOT viable" in page and 'class="bad"' in page
    assert any(p.name == "mfn__variants_vs_face_size.png" and p.read_bytes().startswith(PNG) for p in files.plots)


def test_viability_criteria_come_from_the_manifest(variant_hist):
    spec = SimpleNamespace(thresholds={"viability": {"min_same_vs_baseline": -0.05, "medium_face_px": 20}},
                           variants=())
    manifest = SimpleNamespace(get=lambda name: spec)
    rows = {r.variant: r for r in R.variant_comparison(variant_hist.rows(), manifest)["mfn"]}
    assert rows["int16_selective-calib2048@emulator"].viable  # 0.66 ≥ 0.68 − 0.05
    assert rows["int8-calib16@emulator"].figures["medium_match_rate"] == 0.88  # read at 20 px now
def test_random_vs_real_calibration_side_by_side(tmp_path):
    """Rows tagged calib=real / calib=random (hailo-qa checklist --compare-random-calib) become one table."""
    with H.History(tmp_path / "h.sqlite") as h:
        for source, acc in (("real", 0.936), ("random", 0.901)):
            h.record(H.make_row(run_id="r1", model="fsq", metric="deploy.accuracy", value=acc, target="emulator",
                                config="int8", stage=f"checklist:calib={source}"))
        h.record(H.make_row(run_id="r1", model="fsq", metric="deploy.ece", value=0.01, target="emulator",
                            config="int8", stage="checklist:calib=real"))  # only one source: not in the table
        data = R.build_report(h)
        tables = R.calibration_source_tables(data)
        header, rows = tables["fsq"]
        assert header[2:4] == ["real calib", "random calib"]
        assert len(rows) == 1 and rows[0][0] == "emulator/checklist deploy.accuracy"
        assert rows[0][2:] == [R._fmt(0.936), R._fmt(0.901), R._fmt(0.901 - 0.936, True)]
        md = R.render_markdown(data)
        assert "### fsq: real vs random calibration data" in md
        assert "real vs random calibration data" in R.render_html(data)
