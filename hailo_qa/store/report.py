"""Reports from the history: a Markdown inventory and a self-contained HTML page with trend plots.

- Inventory: model × precision config × calibration size × compiled (HEF present?) × tested × result, with the
  latest value of each metric and its delta vs the previous run and vs the accepted baseline.
- Comparisons per model: precision configs side by side (INT8 vs INT16), calibration sizes side by side.
- Embedder variants: per face embedder, one row per variant (INT8 baseline first) with its recognition figures and
  a viable / not viable verdict against the manifest's criteria; similarity and pre-norm against face size plots.
- Trends: one PNG per (model, target, config), one panel per metric, value over runs (matplotlib, Agg backend).
  The HTML embeds the PNGs as base64 (one file to open or attach); the PNGs are also written to ``plots/``.
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hailo_qa.store.history import History, MetricRow, check_regression

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class MetricLine:
    """The latest value of one metric key with its deltas."""

    row: MetricRow
    previous: MetricRow | None
    baseline: MetricRow | None
    regressed: bool

    @property
    def delta_prev(self) -> float | None:
        return None if self.previous is None else self.row.value - self.previous.value

    @property
    def delta_base(self) -> float | None:
        return None if self.baseline is None else self.row.value - self.baseline.value


@dataclass(frozen=True)
class InventoryRow:
    """One line of the inventory table."""

    model: str
    config: str
    calib_size: int | None
    compiled: str
    tested: bool
    result: str
    metrics: tuple[MetricLine, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows; built by :func:`build_report`."""

    history_path: Path
    run_id: str | None
    runs: tuple
    inventory: tuple[InventoryRow, ...]
    latest: tuple[MetricRow, ...]  # latest value per key over the whole history
    variants: dict = field(default_factory=dict)  # embedder → tuple[VariantRow, ...] (variant_comparison)


@dataclass(frozen=True)
class Plot:
    title: str
    path: Path
    png: bytes


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    plots: tuple[Path, ...]


def _progress_to(stream: TextIO | None) -> ProgressFn:
    if stream is None:
        return lambda msg: None
    return lambda msg: print(f"hailo-qa report: {msg}", file=stream, flush=True)


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "—"
    if not math.isfinite(v):
        return str(v)
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def _calib(c: int | None) -> str:
    return "—" if c is None else str(c)


def _cfg(c: str) -> str:
    return c or "float"


def build_report(history: History, *, manifest=None, run_id: str | None = None) -> ReportData:
    """Collect the report's data from ``history`` (latest run unless ``run_id``).

    Args:
        history: an open :class:`~hailo_qa.store.history.History`.
        manifest: a loaded manifest to list untested model × config × calib combinations and HEF presence.
            Defaults to none (only what the history holds).
        run_id: the run to report on. Defaults to the latest.
    """
    run_id = run_id or history.latest_run()
    rows = history.rows(run_id=run_id) if run_id else []
    outcomes = history.outcomes(run_id) if run_id else {}
    groups: dict[tuple, list[MetricLine]] = defaultdict(list)
    nodeids: dict[tuple, set[str]] = defaultdict(set)
    latest_per_key: dict[tuple, MetricRow] = {}
    for r in rows:
        latest_per_key[r.key] = r  # rows are in id order: the last one wins
    for r in latest_per_key.values():
        prev = history.previous_for(r.key, before_run=r.run_id)
        base = history.baseline_for(r.key, exclude_run=r.run_id)
        groups[(r.model, r.config, r.calib_size)].append(
            MetricLine(r, prev, base, check_regression(r, base) is not None))
        if r.nodeid:
            nodeids[(r.model, r.config, r.calib_size)].add(r.nodeid)
    hef_models: dict[str, bool] = {}
    combos = set(groups)
    if manifest is not None:
        for spec in manifest:
            hef_models[spec.name] = spec.hef is not None and Path(spec.hef).is_file()
            for cfg in spec.quantization.configs:
                for size in spec.calibration.sizes:
                    combos.add((spec.name, cfg, size))
    inventory = []
    for key in sorted(combos, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
        model, cfg, calib = key
        lines = tuple(sorted(groups.get(key, ()), key=lambda m: (m.row.target, m.row.stage, m.row.metric)))
        if model in hef_models:
            compiled = "yes" if hef_models[model] else "no"
        else:
            compiled = "yes" if any(m.row.target.startswith("hailo8") for m in lines) else "?"
        tested = bool(lines)
        outs = {outcomes[n] for n in nodeids.get(key, ()) if n in outcomes}
        if not tested:
            result = "not tested"
        elif outs & {"failed", "error"}:
            result = "FAIL"
        elif any(m.regressed for m in lines):
            result = "REGRESSED"
        elif outs == {"passed"}:
            result = "pass"
        else:
            result = "recorded"
        inventory.append(InventoryRow(model, cfg, calib, compiled, tested, result, lines))
    everything: dict[tuple, MetricRow] = {}
    all_rows = history.rows()
    for r in all_rows:
        everything[r.key] = r
    return ReportData(history.path, run_id, tuple(history.runs()), tuple(inventory), tuple(everything.values()),
                      variant_comparison(all_rows, manifest))


# ------------------------------------------------------------------------------------------------------ markdown
def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in esc]


def _metric_label(r: MetricRow) -> str:
    parts = [r.target] + [p for p in (r.variant, r.stage) if p]
    return "/".join(parts) + f" {r.metric}"


def comparison_tables(data: ReportData) -> dict[str, dict[str, tuple[list[str], list[list[str]]]]]:
    """Per model: ``configs`` (metric × precision config, same calib size) and ``calib`` (metric × calib size)
    tables of the latest values, as (header, rows). Only tables with at least two columns of values are kept."""
    by_model: dict[str, list[MetricRow]] = defaultdict(list)
    for r in data.latest:
        by_model[r.model].append(r)
    out: dict[str, dict] = {}
    for model, rows in sorted(by_model.items()):
        tables = {}
        # precision configs: rows = (target-family/stage/variant/metric, calib), cols = config
        order = ("int8", "int16_selective", "int16")
        cfgs = sorted({r.config for r in rows if r.config}, key=lambda c: (order.index(c) if c in order else 9, c))
        if len(cfgs) >= 2:
            cells: dict[tuple, dict[str, float]] = defaultdict(dict)
            for r in rows:
                if r.config:
                    fam = re.sub(r"[-_.]?(int8|int16_selective|int16)$", "", r.target)
                    cells[(fam, r.variant, r.stage, r.metric, r.calib_size)][r.config] = r.value
            body = [["/".join(p for p in k[:3] if p) + f" {k[3]}", _calib(k[4])] + [_fmt(v.get(c)) for c in cfgs]
                    for k, v in sorted(cells.items(), key=lambda kv: str(kv[0])) if len(v) >= 2]
            if body:
                tables["configs"] = (["metric", "calib"] + cfgs, body)
        sizes = sorted({r.calib_size for r in rows if r.calib_size is not None})
        if len(sizes) >= 2:
            cells = defaultdict(dict)
            for r in rows:
                if r.calib_size is not None:
                    cells[(r.target, r.variant, r.stage, r.metric, r.config)][r.calib_size] = r.value
            body = [["/".join(p for p in k[:3] if p) + f" {k[3]}", _cfg(k[4])] + [_fmt(v.get(s)) for s in sizes]
                    for k, v in sorted(cells.items(), key=lambda kv: str(kv[0])) if len(v) >= 2]
            if body:
                tables["calib"] = (["metric", "config"] + [f"calib {s}" for s in sizes], body)
        if tables:
            out[model] = tables
    return out


def inventory_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    header = ["model", "config", "calib", "compiled (HEF)", "tested", "result", "metrics (latest, Δprev, Δbaseline)"]
    rows = []
    for inv in data.inventory:
        ms = "; ".join(f"{_metric_label(m.row)}={_fmt(m.row.value)} ({_fmt(m.delta_prev, True)}, "
                       f"{_fmt(m.delta_base, True)}){' REGRESSED' if m.regressed else ''}" for m in inv.metrics)
        rows.append([inv.model, _cfg(inv.config), _calib(inv.calib_size), inv.compiled,
                     "yes" if inv.tested else "no", inv.result, ms or "—"])
    return header, rows


def metrics_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    header = ["model", "target", "config", "calib", "metric", "value", "previous", "Δ prev", "baseline", "Δ baseline",
              "backend"]
    rows = []
    for inv in data.inventory:
        for m in inv.metrics:
            r = m.row
            rows.append([r.model, "/".join(p for p in (r.target, r.variant, r.stage) if p), _cfg(r.config),
                         _calib(r.calib_size), r.metric, _fmt(r.value),
                         _fmt(m.previous.value if m.previous else None), _fmt(m.delta_prev, True),
                         _fmt(m.baseline.value if m.baseline else None), _fmt(m.delta_base, True)
                         + (" **REGRESSED**" if m.regressed else ""),
                         f"{r.backend}@{r.backend_version}" if r.backend else "—"])
    return header, rows


def render_markdown(data: ReportData, plots: Sequence[Plot] = ()) -> str:
    """The Markdown report."""
    lines = ["# hailo-qa report", "",
             f"History: `{data.history_path}` — {len(data.runs)} run(s); reporting run `{data.run_id or 'none'}`.",
             ""]
    accepted = [r.run_id for r in data.runs if r.accepted]
    lines += [f"Accepted baselines: {', '.join(f'`{a}`' for a in accepted) or 'none'}", "", "## Inventory", ""]
    lines += _md_table(*inventory_table(data))
    lines += ["", "## Metrics (latest run)", ""]
    h, rows = metrics_table(data)
    lines += _md_table(h, rows) if rows else ["No metrics recorded."]
    comps = comparison_tables(data)
    lines += ["", "## Precision configs and calibration sizes", ""]
    if not comps:
        lines.append("No model has two precision configs or two calibration sizes recorded.")
    for model, tables in comps.items():
        if "configs" in tables:
            lines += [f"### {model}: INT8 vs INT16", ""] + _md_table(*tables["configs"]) + [""]
        if "calib" in tables:
            lines += [f"### {model}: calibration size", ""] + _md_table(*tables["calib"]) + [""]
    vt = variant_tables(data)
    if vt:
        lines += ["", "## Embedder variants", "",
                  "INT8 baseline first; verdict against the manifest's viability criteria (seed defaults: pre-norm "
                  "falls with distance, same-person ≥ INT8, different-person p95 < 0.30, match rate at a 40-px face "
                  "> 50 %). Figures are float-enrolled where a float model exists.", ""]
        for model, table in vt.items():
            lines += [f"### {model}", ""] + _md_table(*table) + [""]
    if plots:
        lines += ["", "## Trends", ""] + [f"![{p.title}](plots/{p.path.name})" for p in plots]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------------------------------------- plots
def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


def trend_plots(history: History, out_dir: Path, *, progress: ProgressFn | None = None,
                max_panels: int = 12) -> list[Plot]:
    """One PNG per (model, target, config): a panel per metric, one line per (variant, stage, calib) series,
    x = runs in chronological order; accepted baselines are dashed vertical lines. Written to ``out_dir``.
    """
    from matplotlib.figure import Figure  # the OO API renders with Agg and never touches pyplot's global state

    progress = progress or (lambda m: None)
    summaries = history.runs()
    runs = [r.run_id for r in summaries]
    runs_acc = [r.accepted for r in summaries]
    index = {r: i for i, r in enumerate(runs)}
    series: dict[tuple, dict[str, dict[tuple, dict[int, float]]]] = defaultdict(lambda: defaultdict(dict))
    for r in history.rows():
        s = series[(r.model, r.target, r.config)][r.metric].setdefault((r.variant, r.stage, r.calib_size), {})
        s[index[r.run_id]] = r.value  # last value of a run wins
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for n, ((model, target, cfg), metrics) in enumerate(sorted(series.items()), 1):
        title = f"{model} / {target} / {_cfg(cfg)}"
        progress(f"plot {n}/{len(series)}: {title}")
        names = sorted(metrics)[:max_panels]
        fig = Figure(figsize=(7, 2.2 * len(names) + 0.6), dpi=90)
        axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
        for ax, metric in zip(axes, names):
            for (variant, stage, calib), pts in sorted(metrics[metric].items(), key=lambda kv: str(kv[0])):
                xs = sorted(pts)
                label = "/".join(p for p in (variant, stage, f"calib {calib}" if calib is not None else "") if p)
                ax.plot(xs, [pts[x] for x in xs], marker="o", label=label or metric)
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
            if len(metrics[metric]) > 1:
                ax.legend(fontsize=7)
        axes[-1].set_xlabel("run (chronological)")
        used = sorted({x for m in names for pts in metrics[m].values() for x in pts})
        accepted = [i for i in used if runs_acc[i]]
        for ax in axes:
            for i in accepted:  # accepted baselines: dashed vertical lines
                ax.axvline(i, color="grey", linestyle="--", linewidth=0.8)
            ax.set_xticks(used)
            ax.set_xticklabels([runs[i][:15] for i in used] if len(used) <= 8 else [str(i) for i in used],
                               fontsize=7, rotation=20)
        fig.suptitle(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        png = buf.getvalue()
        path = out_dir / f"{_slug(model)}__{_slug(target)}__{_slug(_cfg(cfg))}.png"
        tmp = path.with_suffix(".png.tmp")
        tmp.write_bytes(png)
        tmp.replace(path)
        plots.append(Plot(title, path, png))
    return plots


# ------------------------------------------------------------------------------------------ embedder variants
VIABILITY_DEFAULTS = {"max_different_similarity": 0.30, "min_same_vs_baseline": 0.0, "min_medium_match_rate": 0.5,
                      "medium_face_px": 40.0, "min_pre_norm_distance_drop": 0.0}
"""The seed's success criteria for a face-embedder variant (``[models.<m>.thresholds.viability]`` overrides):
pre-norm varies with distance (drop > 0 from the largest to the smallest face), same-person similarity ≥ the INT8
baseline's, different-person similarity < 0.30 (read on the 95th percentile of impostor pairs), match rate at medium
distance (a 40-px face) > 50 %."""

VARIANT_COLUMNS = ("variant", "backend", "pre-norm", "pre-norm ×float", "same mean", "same min", "diff p95",
                   "diff max", "margin", "TAR", "FAR", "TAR@FAR", "rank-1", "smallest face px", "medium match",
                   "session spread", "latency p95 ms", "verdict")


@dataclass(frozen=True)
class VariantRow:
    """One embedder variant's latest recognition figures (float-enrolled where recorded, else self-enrolled)."""

    model: str
    variant: str
    target: str
    backend: str
    figures: dict
    viable: bool | None  # None: the float reference (not judged)
    reasons: tuple[str, ...]
    curve: tuple[tuple[int, float, float], ...]  # (face px, similarity mean, pre-norm mean), largest first

    def cells(self) -> list[str]:
        f = self.figures.get
        verdict = "reference" if self.viable is None else ("viable" if self.viable else "NOT viable: "
                                                           + "; ".join(self.reasons))
        return [self.variant, self.backend, _fmt(f("pre_norm_mean")), _fmt(f("pre_norm_ratio_mean")),
                _fmt(f("mean_same")), _fmt(f("min_same")), _fmt(f("diff_p95")), _fmt(f("max_diff")),
                _fmt(f("margin")), _fmt(f("tar")), _fmt(f("far")), _fmt(f("tar_at_far")), _fmt(f("rank1")),
                _fmt(f("smallest_passing_face_px")), _fmt(f("medium_match_rate")),
                _fmt(f("session_similarity_spread")), _fmt(f("latency_p95_ms")), verdict]


def _viability(manifest, model: str) -> dict[str, float]:
    crit = dict(VIABILITY_DEFAULTS)
    if manifest is not None:
        try:
            crit.update(manifest.get(model).thresholds.get("viability", {}))
        except Exception:  # noqa: BLE001 - a model no longer in the manifest keeps the seed's criteria
            pass
    return crit


def variant_comparison(rows: Sequence[MetricRow], manifest=None) -> dict[str, tuple[VariantRow, ...]]:
    """Per embedder: one row per variant from the ``recognition.*`` history rows (the latest value of each figure
    over the whole history, so emulator rows from the build host and device rows from the Pi meet in one table),
    the INT8 baseline first, each variant judged against the manifest's viability criteria."""
    by: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(
        lambda: {"fig": {}, "stage": {}, "target": "", "backend": "", "config": "", "order": 0}))
    for n, r in enumerate(rows):
        if not r.metric.startswith("recognition.") or not r.variant:
            continue
        v = by[r.model][r.variant]
        name = r.metric[len("recognition."):]
        # float-enrolled figures win over self-enrolled ones (the deployed app enrolls with the float model)
        if v["stage"].get(name) == "float-enrolled" and r.stage != "float-enrolled":
            continue
        v["fig"][name], v["stage"][name] = r.value, r.stage
        v["target"], v["config"], v["order"] = r.target, r.config, v["order"] or n + 1
        v["backend"] = f"{r.backend}@{r.backend_version}" if r.backend else "—"
    for r in rows:  # latency where measured for the same model and variant
        if r.model in by and r.variant in by[r.model] and "p95" in r.metric and "ms" in r.metric:
            by[r.model][r.variant]["fig"]["latency_p95_ms"] = r.value
    out = {}
    for model, variants in sorted(by.items()):
        crit = _viability(manifest, model)
        medium = int(crit["medium_face_px"])
        order = []
        if manifest is not None:
            try:
                order = [v.id for v in manifest.get(model).variants]
            except Exception:  # noqa: BLE001
                order = []
        quant = [k for k, v in variants.items() if v["target"] != "float"]
        base = next((k for k in order if k in quant and variants[k]["config"] == "int8"), None) or next(
            (k for k in sorted(quant, key=lambda k: variants[k]["order"]) if variants[k]["config"] == "int8"), None)
        ranked = sorted(quant, key=lambda k: (k != base, order.index(k) if k in order else len(order),
                                               variants[k]["order"]))
        ranked += [k for k, v in variants.items() if v["target"] == "float"]
        base_same = variants[base]["fig"].get("mean_same") if base else None
        rows_out = []
        for k in ranked:
            v = variants[k]
            f = dict(v["fig"])
            f["medium_match_rate"] = f.get(f"distance.{medium}px.match_rate")
            curve = tuple(sorted(((int(m.split(".")[1][:-2]), f.get(f"distance.{m.split('.')[1]}.similarity_mean"),
                                   f.get(f"distance.{m.split('.')[1]}.pre_norm_mean"))
                                  for m in f if m.startswith("distance.") and m.endswith(".match_rate")),
                                 reverse=True))
            if v["target"] == "float":
                rows_out.append(VariantRow(model, k, v["target"], v["backend"], f, None, (), curve))
                continue
            why = []
            drop = f.get("pre_norm_distance_drop")
            if drop is None or not drop > crit["min_pre_norm_distance_drop"]:
                why.append(f"pre-norm does not fall with distance (drop {_fmt(drop)})")
            same = f.get("mean_same")
            if same is None or (base_same is not None and same < base_same + crit["min_same_vs_baseline"]):
                why.append(f"same-person {_fmt(same)} < INT8 baseline {_fmt(base_same)}")
            diff = f.get("diff_p95")
            if diff is None or not diff < crit["max_different_similarity"]:
                why.append(f"different-person p95 {_fmt(diff)} ≥ {crit['max_different_similarity']:g}")
            mm = f.get("medium_match_rate")
            if mm is None or not mm > crit["min_medium_match_rate"]:
                why.append(f"match rate at {medium} px {_fmt(mm)} ≤ {crit['min_medium_match_rate']:g}")
            rows_out.append(VariantRow(model, k, v["target"], v["backend"], f, not why, tuple(why), curve))
        out[model] = tuple(rows_out)
    return out


def variant_plots(comparison: dict[str, tuple[VariantRow, ...]], out_dir: Path) -> list[Plot]:
    """Per embedder: similarity and pre-norm against face size (px), one line per variant."""
    from matplotlib.figure import Figure

    plots = []
    for model, vrows in comparison.items():
        drawn = [v for v in vrows if v.curve]
        if not drawn:
            continue
        fig = Figure(figsize=(9, 3.4), dpi=90)
        ax_s, ax_n = fig.subplots(1, 2)
        for v in drawn:
            px = [c[0] for c in v.curve]
            ax_s.plot(px, [c[1] for c in v.curve], marker="o", label=v.variant)
            ax_n.plot(px, [c[2] for c in v.curve], marker="o", label=v.variant)
        for ax, label in ((ax_s, "similarity to the reference"), (ax_n, "pre-norm")):
            ax.set_xlabel("face width (px)")
            ax.set_ylabel(label)
            ax.set_xscale("log")
            ax.grid(True, alpha=0.3)
        ax_s.axhline(0.30, color="grey", linestyle="--", linewidth=0.8)
        ax_n.legend(fontsize=7)
        fig.suptitle(f"{model}: recognition against face size")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{_slug(model)}__variants_vs_face_size.png"
        tmp = path.with_suffix(".png.tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
        plots.append(Plot(f"{model}: similarity and pre-norm vs face size", path, buf.getvalue()))
    return plots


def variant_tables(data: "ReportData") -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per embedder: the variant comparison as (header, rows)."""
    return {m: (list(VARIANT_COLUMNS), [v.cells() for v in vrows]) for m, vrows in data.variants.items()}


# ---------------------------------------------------------------------------------------------------------- html
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0}td.bad{background:#fdd;font-weight:bold}td.ok{background:#dfd}img{max-width:100%}"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cls(c: str) -> str:
        if any(w in c for w in ("REGRESSED", "FAIL", "NOT viable")):
            return ' class="bad"'
        return ' class="ok"' if c in ("pass", "viable") else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{cls(str(c))}>{html.escape(str(c).replace('**', ''))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: ReportData, plots: Sequence[Plot] = ()) -> str:
    """A self-contained HTML page (PNG plots embedded as base64)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hailo-qa report</title>"
             f"<style>{_CSS}</style></head><body><h1>hailo-qa report</h1>",
             f"<p>History <code>{html.escape(str(data.history_path))}</code>: {len(data.runs)} run(s); reporting run "
             f"<code>{html.escape(data.run_id or 'none')}</code>.</p>",
             "<h2>Inventory</h2>", _html_table(*inventory_table(data)), "<h2>Metrics (latest run)</h2>",
             _html_table(*metrics_table(data)), "<h2>Precision configs and calibration sizes</h2>"]
    for model, tables in comparison_tables(data).items():
        if "configs" in tables:
            parts += [f"<h3>{html.escape(model)}: INT8 vs INT16</h3>", _html_table(*tables["configs"])]
        if "calib" in tables:
            parts += [f"<h3>{html.escape(model)}: calibration size</h3>", _html_table(*tables["calib"])]
    vt = variant_tables(data)
    if vt:
        parts.append("<h2>Embedder variants</h2><p>INT8 baseline first; verdict against the manifest's viability "
                     "criteria.</p>")
        for model, table in vt.items():
            parts += [f"<h3>{html.escape(model)}</h3>", _html_table(*table)]
    parts.append("<h2>Trends</h2>")
    for p in plots:
        b64 = base64.b64encode(p.png).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(p.title)}' src='data:image/png;base64,{b64}'>"
                     f"<figcaption>{html.escape(p.title)}</figcaption></figure>")
    parts.append("<h2>Runs</h2>")
    parts.append(_html_table(["run", "started", "rows", "git", "accepted"],
                             [[r.run_id, r.started, str(r.rows), r.git_commit[:10], "yes" if r.accepted else ""]
                              for r in data.runs]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(history: History, out_dir: str | Path, *, manifest=None, run_id: str | None = None,
                 progress: TextIO | None = sys.stderr) -> ReportFiles:
    """Build and write ``report.md``, ``report.html`` and ``plots/*.png`` into ``out_dir``.

    Args:
        history: an open History.
        out_dir: output directory (created).
        manifest: see :func:`build_report`. Defaults to none.
        run_id: see :func:`build_report`. Defaults to the latest run.
        progress: where progress lines go. Defaults to stderr; None silences them.
    """
    say = _progress_to(progress)
    out = Path(out_dir)
    from hailo_qa.errors import InputFileError

    if out.exists() and not out.is_dir():
        raise InputFileError(f"report output '{out}' is not a directory", note="expected a directory (created when "
                             "absent) for report.md, report.html and plots/", hint="pass --out DIR elsewhere; the "
                             "file was left as it is")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "plots").mkdir(exist_ok=True)
    except OSError as err:
        raise InputFileError(f"cannot create the report directory '{out}': {err.strerror}",
                             note="expected a writable directory", hint="pass --out DIR elsewhere") from None
    say(f"reading {history.path}")
    data = build_report(history, manifest=manifest, run_id=run_id)
    plots = variant_plots(data.variants, out / "plots") + trend_plots(history, out / "plots", progress=say)
    md, page = out / "report.md", out / "report.html"
    for path, text in ((md, render_markdown(data, plots)), (page, render_html(data, plots))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    say(f"wrote {md} and {page} ({len(plots)} plot(s))")
    return ReportFiles(md, page, tuple(p.path for p in plots))
