"""Reports from the history: a Markdown file and a self-contained HTML page that open on a summary.

Order of the page (the same in Markdown):

1. **Summary** — per model and variant: pass / FAIL / REGRESSED against the accepted baseline, what changed since
   the previous run of each figure, and which machines (``host``) and backends produced the numbers.
2. **Plots**, in a grid in view: a trend per key metric (SNR, cosine, TAR, latency P95) over time, INT8 vs INT16
   per model, metric against calibration size with the knee, variants side by side. Captions sit above their plot.
3. **Tables**: the latest value of every figure (with previous run, baseline, machine, backend), the inventory
   (manifest model × config × calibration size), precision-config and calibration-size tables, the embedder
   variants (one row per variant, INT8 baseline first, viable / not viable against the manifest's criteria, with
   similarity and pre-norm against face size plots), the runs.

Each figure's *latest* value is used (from whichever run last measured it), so after a partial run the untouched
models keep their last numbers instead of reading "not tested". The history is read once (one query), so a report
of thousands of runs takes seconds; trends use a time axis (labels never crowd) and series that never change are
listed instead of plotted.
"""
from __future__ import annotations

import base64
import functools
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

from hailo_qa.store.history import (
    History,
    HistoryError,
    MetricRow,
    check_regression,
    tolerance_for,
)

ProgressFn = Callable[[str], None]

KEY_METRICS = (("SNR", ("snr",)), ("cosine", ("cosine",)), ("TAR", ("tar_", ".tar", "tar@")),
               ("latency P95", ("p95",)))
"""The metric families plotted as trends: (title, substrings of the metric name)."""

MAX_SERIES = 10
"""Lines per trend plot (the ones with most points); the rest are in the tables."""


@dataclass(frozen=True)
class MetricLine:
    """The latest value of one metric key with its deltas."""

    row: MetricRow
    previous: MetricRow | None
    baseline: MetricRow | None
    regressed: bool
    outcome: str | None = None

    @property
    def delta_prev(self) -> float | None:
        return None if self.previous is None else self.row.value - self.previous.value

    @property
    def delta_base(self) -> float | None:
        return None if self.baseline is None else self.row.value - self.baseline.value

    @property
    def changed(self) -> bool:
        """Moved since the previous run by more than the metric's tolerance."""
        d = self.delta_prev
        return d is not None and abs(d) > tolerance_for(self.row.metric, self.row.extra).allowed(self.previous.value)


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
class SummaryRow:
    """One line of the summary: a model and variant."""

    model: str
    variant: str
    status: str
    last_run: str
    last_time: str
    figures: int
    changes: tuple[str, ...]
    regressions: tuple[str, ...]
    sources: tuple[str, ...]  # "host: backend (target)" for every machine/backend that produced a figure


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows; built by :func:`build_report`."""

    history_path: object
    run_id: str | None
    runs: tuple
    inventory: tuple[InventoryRow, ...]
    latest: tuple[MetricRow, ...]  # latest value per key over the whole history
    lines: tuple[MetricLine, ...] = ()
    summary: tuple[SummaryRow, ...] = ()
    backend: str = "sqlite"
    rows: tuple[MetricRow, ...] = ()
    variants: dict = field(default_factory=dict)  # embedder → tuple[VariantRow, ...] (variant_comparison)


@dataclass(frozen=True)
class Plot:
    title: str
    path: Path
    png: bytes
    caption: str = ""


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


def _source(r: MetricRow) -> str:
    be = f"{r.backend}@{r.backend_version}" if r.backend and r.backend_version else (r.backend or "?")
    dev = f" {r.device}" if r.device else ""
    return f"{r.host or '?'}: {be} ({r.target}{dev})"


def _where(r: MetricRow) -> str:
    return "/".join(x for x in (r.target, r.stage, _cfg(r.config), f"calib {r.calib_size}"
                                if r.calib_size is not None else "") if x)


def build_report(history: History, *, manifest=None, run_id: str | None = None) -> ReportData:
    """Collect the report's data from ``history`` in one read.

    Args:
        history: an open :class:`~hailo_qa.store.history.History`.
        manifest: a loaded manifest to list untested model × config × calib combinations and HEF presence.
            Defaults to none (only what the history holds).
        run_id: report the figures of this run only. Defaults to the latest value of every figure.

    Raises:
        HistoryError: ``run_id`` is not in the history.
    """
    rows = history.rows()
    summaries = history.runs()
    order = {s.run_id: i for i, s in enumerate(summaries)}
    if run_id is not None and run_id not in order:
        from hailo_qa.errors import did_you_mean

        ids = [s.run_id for s in summaries]
        raise HistoryError(f"run '{run_id}' has no rows in history '{history.location}'",
                           note=f"latest runs: {', '.join(ids[-5:]) or 'none'}",
                           hint=did_you_mean(run_id, ids) or "list runs with 'hailo-qa baseline show'")
    accepted = {s.run_id for s in summaries if s.accepted}
    outcomes = history.outcomes()
    per_key: dict[tuple, list[MetricRow]] = defaultdict(list)
    for r in rows:  # id order: within a key, later rows are newer
        per_key[r.key].append(r)
    lines: list[MetricLine] = []
    for key, rs in per_key.items():
        if run_id is not None:
            upto = [r for r in rs if order[r.run_id] <= order[run_id]]
            if not upto or upto[-1].run_id != run_id:
                continue
            rs = upto
        cur = rs[-1]
        prev = next((r for r in reversed(rs) if r.run_id != cur.run_id), None)
        base = next((r for r in reversed(rs) if r.run_id in accepted and r.run_id != cur.run_id), None)
        lines.append(MetricLine(cur, prev, base, check_regression(cur, base) is not None,
                                outcomes.get((cur.run_id, cur.nodeid))))
    lines.sort(key=lambda m: (m.row.model, m.row.variant, m.row.target, m.row.stage, m.row.config,
                              -1 if m.row.calib_size is None else m.row.calib_size, m.row.metric))
    latest = tuple(m.row for m in lines)
    groups: dict[tuple, list[MetricLine]] = defaultdict(list)
    for m in lines:
        groups[(m.row.model, m.row.config, m.row.calib_size)].append(m)
    hef_models: dict[str, bool] = {}
    combos = set(groups)
    manifest_models: list[str] = []
    if manifest is not None:
        for spec in manifest:
            manifest_models.append(spec.name)
            hef_models[spec.name] = spec.hef is not None and Path(spec.hef).is_file()
            for cfg in spec.quantization.configs:
                for size in spec.calibration.sizes:
                    combos.add((spec.name, cfg, size))
    inventory = []
    for key in sorted(combos, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
        model, cfg, calib = key
        ls = tuple(groups.get(key, ()))
        if model in hef_models:
            compiled = "yes" if hef_models[model] else "no"
        else:
            compiled = "yes" if any(m.row.target.startswith("hailo8") for m in ls) else "?"
        inventory.append(InventoryRow(model, cfg, calib, compiled, bool(ls), _result(ls), ls))
    summary = _summary(lines, manifest_models)
    return ReportData(history.location, run_id or (summaries[-1].run_id if summaries else None), tuple(summaries),
                      tuple(inventory), latest, tuple(lines), summary, history.kind, tuple(rows),
                      variant_comparison(rows, manifest))


def _result(lines: Sequence[MetricLine]) -> str:
    if not lines:
        return "not tested"
    outs = {m.outcome for m in lines if m.outcome}
    if outs & {"failed", "error"}:
        return "FAIL"
    if any(m.regressed for m in lines):
        return "REGRESSED"
    if outs == {"passed"}:
        return "pass"
    return "recorded"


def _summary(lines: Sequence[MetricLine], manifest_models: Sequence[str]) -> tuple[SummaryRow, ...]:
    by: dict[tuple, list[MetricLine]] = defaultdict(list)
    for m in lines:
        by[(m.row.model, m.row.variant)].append(m)
    out = []
    for (model, variant), ls in sorted(by.items()):
        newest = max(ls, key=lambda m: m.row.time)
        changed = sorted((m for m in ls if m.changed), key=lambda m: -abs(m.delta_prev / (m.previous.value or 1)))
        changes = tuple(f"{m.row.metric} {_where(m.row)}: {_fmt(m.previous.value)} → {_fmt(m.row.value)}"
                        for m in changed)
        regs = tuple(f"{m.row.metric} {_where(m.row)}: baseline {_fmt(m.baseline.value)} → {_fmt(m.row.value)}"
                     for m in ls if m.regressed)
        sources = tuple(sorted({_source(m.row) for m in ls}))
        out.append(SummaryRow(model, variant, _result(ls), newest.row.run_id, newest.row.time, len(ls), changes,
                              regs, sources))
    seen = {s.model for s in out}
    for name in manifest_models:
        if name not in seen:
            out.append(SummaryRow(name, "", "not tested", "", "", 0, (), (), ()))
    order = {"FAIL": 0, "REGRESSED": 1, "recorded": 2, "pass": 3, "not tested": 4}
    return tuple(sorted(out, key=lambda s: (order.get(s.status, 9), s.model, s.variant)))


# ------------------------------------------------------------------------------------------------------ tables
def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in esc]


def _metric_label(r: MetricRow) -> str:
    parts = [r.target] + [p for p in (r.variant, r.stage) if p]
    return "/".join(parts) + f" {r.metric}"


def summary_table(data: ReportData, *, max_items: int = 3) -> tuple[list[str], list[list[str]]]:
    header = ["model", "variant", "status", "changed since previous run", "machines and backends", "last run"]
    rows = []
    for s in data.summary:
        ch = list(s.regressions[:max_items])  # regressions first, then the biggest moves
        ch += [c for c in s.changes if c not in ch][:max(0, max_items - len(ch))]
        more = len(set(s.changes) | set(s.regressions)) - len(ch)
        change = "; ".join(ch) + (f"; +{more} more" if more > 0 else "") if ch else (
            "no change" if s.figures else "—")
        rows.append([s.model, s.variant or "—", s.status, change, "; ".join(s.sources) or "—",
                     f"{s.last_run} ({s.figures} figures)" if s.last_run else "—"])
    return header, rows


def comparison_tables(data: ReportData) -> dict[str, dict[str, tuple[list[str], list[list[str]]]]]:
    """Per model: ``configs`` (metric × precision config, same calib size) and ``calib`` (metric × calib size)
    tables of the latest values, as (header, rows). Only tables with at least two columns of values are kept."""
    by_model: dict[str, list[MetricRow]] = defaultdict(list)
    for r in data.latest:
        by_model[r.model].append(r)
    out: dict[str, dict] = {}
    for model, rows in sorted(by_model.items()):
        tables = {}
        cfgs = _configs(rows)
        if len(cfgs) >= 2:
            cells: dict[tuple, dict[str, float]] = defaultdict(dict)
            for r in rows:
                if r.config:
                    cells[(_family(r.target), r.variant, r.stage, r.metric, r.calib_size)][r.config] = r.value
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


def _configs(rows: Sequence[MetricRow]) -> list[str]:
    order = ("int8", "int16_selective", "int16")
    return sorted({r.config for r in rows if r.config}, key=lambda c: (order.index(c) if c in order else 9, c))


def _family(target: str) -> str:
    return re.sub(r"[-_.]?(int8|int16_selective|int16)$", "", target)


_CALIB_STAGE = re.compile(r"^(?P<stage>.*?):?calib=(?P<source>random|real)$")


def calibration_source_tables(data: ReportData) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per model: real vs random calibration data side by side (the DFC's ``--use-random-calib-set`` against a
    real set), from rows whose ``stage`` ends in ``calib=real`` / ``calib=random`` (``hailo-qa checklist
    --compare-random-calib``). Only metrics measured with both sources are shown."""
    cells: dict[str, dict[tuple, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in data.latest:
        m = _CALIB_STAGE.match(r.stage)
        if m:
            cells[r.model][(r.target, r.variant, m["stage"], r.config, r.metric)][m["source"]] = r.value
    out = {}
    for model, by_key in sorted(cells.items()):
        body = [["/".join(p for p in (k[0], k[1], k[2]) if p) + f" {k[4]}", _cfg(k[3]), _fmt(v["real"]),
                 _fmt(v["random"]), _fmt(v["random"] - v["real"], True)]
                for k, v in sorted(by_key.items(), key=lambda kv: str(kv[0])) if len(v) == 2]
        if body:
            out[model] = (["metric", "config", "real calib", "random calib", "Δ (random − real)"], body)
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
              "backend", "machine", "run"]
    rows = []
    for m in data.lines:
        r = m.row
        rows.append([r.model, "/".join(p for p in (r.target, r.variant, r.stage) if p), _cfg(r.config),
                     _calib(r.calib_size), r.metric, _fmt(r.value),
                     _fmt(m.previous.value if m.previous else None), _fmt(m.delta_prev, True),
                     _fmt(m.baseline.value if m.baseline else None), _fmt(m.delta_base, True)
                     + (" **REGRESSED**" if m.regressed else ""),
                     f"{r.backend}@{r.backend_version}" if r.backend else "—",
                     (r.host or "—") + (f" ({r.device})" if r.device else ""), r.run_id])
    return header, rows


def runs_table(data: ReportData, *, last: int = 30) -> tuple[list[str], list[list[str]]]:
    return (["run", "started", "rows", "machines", "git", "accepted"],
            [[r.run_id, r.started, str(r.rows), ", ".join(getattr(r, "hosts", ())) or "—", r.git_commit[:10],
              "yes" if r.accepted else ""] for r in list(data.runs)[-last:]][::-1])


def _header(data: ReportData) -> str:
    hosts = sorted({h for r in data.runs for h in getattr(r, "hosts", ()) if h})
    acc = [r.run_id for r in data.runs if r.accepted]
    return (f"History `{data.history_path}` ({data.backend}): {len(data.runs)} run(s) from "
            f"{len(hosts)} machine(s) ({', '.join(hosts) or '—'}); latest run `{data.run_id or 'none'}`; "
            f"accepted baselines: {', '.join(f'`{a}`' for a in acc[-5:]) or 'none'}.")


def render_markdown(data: ReportData, plots: Sequence[Plot] = ()) -> str:
    """The Markdown report: summary, plots, then tables."""
    lines = ["# hailo-qa report", "", _header(data), "", "## Summary", ""]
    h, rows = summary_table(data)
    lines += _md_table(h, rows) if rows else ["No metrics recorded."]
    if plots:
        lines += ["", "## Plots", ""]
        for p in plots:
            lines += [f"**{p.title}**" + (f" — {p.caption}" if p.caption else ""), "",
                      f"![{p.title}](plots/{p.path.name})", ""]
    lines += ["", "## Latest value of every figure", ""]
    h, rows = metrics_table(data)
    lines += _md_table(h, rows) if rows else ["No metrics recorded."]
    lines += ["", "## Inventory", ""] + _md_table(*inventory_table(data))
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
    for model, table in calibration_source_tables(data).items():
        lines += ["", f"### {model}: real vs random calibration data", ""] + _md_table(*table)
    lines += ["", f"## Runs (latest {min(30, len(data.runs))} of {len(data.runs)})", ""] + _md_table(*runs_table(data))
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------------------------------------- plots
def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


@functools.lru_cache(maxsize=65536)
def _time(s: str):
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(s)
    except (TypeError, ValueError):
        return None


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _series_label(r: MetricRow, *, with_metric: bool = True) -> str:
    parts = [r.model, r.variant, r.target, _cfg(r.config), f"c{r.calib_size}" if r.calib_size is not None else "",
             r.host]
    return "/".join(p for p in parts if p) + (f" {r.metric}" if with_metric else "")


def _trend_figures(data: ReportData, Figure) -> list[tuple[str, str, object]]:
    out = []
    for title, needles in KEY_METRICS:
        series: dict[tuple, list[tuple]] = defaultdict(list)
        for r in data.rows:
            m = r.metric.lower()
            if any(n in m for n in needles):
                t = _time(r.time)
                if t is not None:
                    series[r.key + (r.host,)].append((t, r.value, r))
        if not series:
            continue
        moving = {k: v for k, v in series.items() if len(v) >= 2 and max(p[1] for p in v) - min(p[1] for p in v)
                  > 1e-9 * max(1.0, abs(v[0][1]))}
        constant = [k for k, v in series.items() if k not in moving]
        shown = sorted(moving, key=lambda k: (-len(moving[k]), str(k)))[:MAX_SERIES]
        notes = []
        if constant:
            notes.append(f"{len(constant)} series never changed (or ran once) and are in the tables, not plotted")
        if len(moving) > len(shown):
            notes.append(f"{len(moving) - len(shown)} more series are in the tables")
        if not shown:
            continue
        fig, ax = _figure(Figure)
        many = max(len(moving[k]) for k in shown) > 60
        for k in shown:
            pts = sorted(moving[k], key=lambda p: p[0])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=None if many else "o", markersize=3,
                    linewidth=1.2, label=_series_label(pts[-1][2]))
        import matplotlib.dates as mdates

        loc = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_ylabel(title)
        ax.grid(True, alpha=0.3)
        _legend(fig, ax)
        out.append((f"Trend: {title}", "; ".join(notes) or f"{len(shown)} series over time", fig))
    return out


def _figure(Figure):
    """One plot per figure, 9 × 4.2 in: the axes on the left, the legend in a column on the right (fixed margins,
    no layout engine: one draw per figure)."""
    fig = Figure(figsize=(9, 4.2), dpi=100)
    fig.subplots_adjust(left=0.08, right=0.64, top=0.95, bottom=0.16)
    return fig, fig.add_subplot()


def _legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                  borderaxespad=0)


def _bars(ax, groups: list[str], bars: list[str], values: dict[tuple[str, str], float]) -> None:
    import numpy as np

    x = np.arange(len(groups))
    w = 0.8 / max(1, len(bars))
    for i, b in enumerate(bars):
        ys = [values.get((g, b), np.nan) for g in groups]
        ax.bar(x + (i - (len(bars) - 1) / 2) * w, ys, w, label=b)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, fontsize=7, rotation=20 if len(groups) > 4 else 0, ha="right" if len(groups) > 4
                       else "center")
    ax.grid(True, axis="y", alpha=0.3)


def _pick_metric(rows: Sequence[MetricRow], want: Callable[[list[MetricRow]], bool]) -> str | None:
    """The key metric (SNR first) for which ``want`` holds on its rows."""
    by: dict[str, list[MetricRow]] = defaultdict(list)
    for r in rows:
        by[r.metric].append(r)
    for _, needles in KEY_METRICS:
        for metric in sorted(by, key=lambda m: (-len(by[m]), m)):
            if any(n in metric.lower() for n in needles) and want(by[metric]):
                return metric
    return None


def _config_figure(data: ReportData, Figure):
    latest = [r for r in data.latest if r.config]
    metric = _pick_metric(latest, lambda rs: any(len({r.config for r in rs if r.model == m}) >= 2
                                                 for m in {r.model for r in rs}))
    if metric is None:
        return None
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in latest:
        if r.metric == metric:
            values[(f"{r.model}" + (f"/{r.variant}" if r.variant else "") + f"\n{_family(r.target)}",
                    r.config)].append(r.value)
    groups = sorted({g for g, _ in values if len({c for g2, c in values if g2 == g}) >= 2})
    cfgs = _configs([r for r in latest if r.metric == metric])
    fig, ax = _figure(Figure)
    # several calibration sizes per config: the largest (best-calibrated) value is shown
    _bars(ax, groups, cfgs, {k: max(v) for k, v in values.items()})
    ax.set_ylabel(metric)
    _legend(fig, ax)
    return (f"INT8 vs INT16: {metric}", "latest value per model and precision config (best calibration size)", fig)


def _calib_figure(data: ReportData, Figure):
    from hailo_qa.quant.evaluation import DEFAULT_KNEE_TOL_DB, knee_size
    from hailo_qa.store.history import metric_direction

    rows = [r for r in data.latest if r.calib_size is not None]
    curves: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in rows:
        curves[(r.model, r.variant, r.target, r.config, r.metric)][r.calib_size] = r.value
    metric = _pick_metric(rows, lambda rs: any(len(curves[(r.model, r.variant, r.target, r.config, r.metric)]) >= 3
                                               for r in rs))
    if metric is None:
        return None
    keys = sorted(k for k, v in curves.items() if k[4] == metric and len(v) >= 3)[:MAX_SERIES]
    fig, ax = _figure(Figure)
    knees = []
    for k in keys:
        sizes = sorted(curves[k])
        vals = [curves[k][s] for s in sizes]
        line, = ax.plot(sizes, vals, marker="o", markersize=4, label="/".join(p for p in (k[0], k[1], k[2],
                                                                                        _cfg(k[3])) if p))
        sign = -1.0 if metric_direction(metric) == "lower" else 1.0
        tol = DEFAULT_KNEE_TOL_DB if "snr" in metric.lower() else 0.01 * max(abs(v) for v in vals)
        knee = knee_size(sizes, [sign * v for v in vals], tol_db=tol)
        if knee is not None:
            ax.plot([knee], [curves[k][knee]], marker="*", markersize=14, color=line.get_color(),
                    markeredgecolor="black")
            knees.append(f"{k[0]} {_cfg(k[3])}: {knee}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("calibration size (images)")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    _legend(fig, ax)
    return (f"{metric} against calibration size", "★ marks the knee (smallest size within "
            + ("0.5 dB" if "snr" in metric.lower() else "1 %") + " of the best): " + ", ".join(knees), fig)


def _variant_figure(data: ReportData, Figure):
    latest = [r for r in data.latest if r.variant]
    metric = _pick_metric(data.latest, lambda rs: any(len({r.variant for r in rs if r.model == m}) >= 2
                                                      for m in {r.model for r in rs}))
    if metric is None:
        return None
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in data.latest:
        if r.metric == metric:
            values[(f"{r.model}\n{r.target}/{_cfg(r.config)}", r.variant or "(none)")].append(r.value)
    groups = sorted({g for g, _ in values if len({v for g2, v in values if g2 == g}) >= 2})
    variants = sorted({v for _, v in values})
    fig, ax = _figure(Figure)
    _bars(ax, groups, variants, {k: max(v) for k, v in values.items()})
    ax.set_ylabel(metric)
    _legend(fig, ax)
    del latest
    return (f"Variants side by side: {metric}", "latest value per model variant", fig)


def report_plots(data: ReportData, out_dir: Path, *, progress: ProgressFn | None = None) -> list[Plot]:
    """The report's plots (PNG, written to ``out_dir``): trends per key metric, INT8 vs INT16, metric against
    calibration size with the knee, variants side by side. Only plots with something to compare are made."""
    from matplotlib.figure import (
        Figure,  # the OO API renders with Agg and never touches pyplot's global state
    )

    progress = progress or (lambda m: None)
    figs = _trend_figures(data, Figure)
    for make in (_config_figure, _calib_figure, _variant_figure):
        f = make(data, Figure)
        if f is not None:
            figs.append(f)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for n, (title, caption, fig) in enumerate(figs, 1):
        progress(f"plot {n}/{len(figs)}: {title}")
        png = _png(fig)
        path = out_dir / f"{n:02d}_{_slug(title)}.png"
        tmp = path.with_suffix(".png.tmp")
        tmp.write_bytes(png)
        tmp.replace(path)
        plots.append(Plot(title, path, png, caption))
    return plots


# ------------------------------------------------------------------------------------------ embedder variants
VIABILITY_DEFAULTS = {"max_different_similarity": 0.30, "min_same_vs_baseline": 0.0, "min_medium_match_rate": 0.5,
                      "medium_face_px": 40.0, "min_pre_norm_distance_drop": 0.0, "max_session_match_spread": 0.0}
"""The seed's success criteria for a face-embedder variant (``[models.<m>.thresholds.viability]`` overrides):
pre-norm varies with distance (drop > 0 from the largest to the smallest face), same-person similarity ≥ the INT8
baseline's, different-person similarity < 0.30 (read on the 95th percentile of impostor pairs), match rate at medium
distance (a 40-px face) > 50 %, and identical sessions give the same answer (the match count does not change between
sessions; judged where sessions were measured). The best-similarity spread between sessions is judged against the
manifest's ``recognition.max_session_spread`` (or ``viability.max_session_spread``) where one is set."""

LATENCY_METRICS = ("p95_ms", "core_p95_ms")
"""The variant table's latency: end-to-end P95 (``tests/test_hailo8_latency.py``), else the device-only P95."""

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
            t = manifest.get(model).thresholds
        except Exception:  # noqa: BLE001 - a model no longer in the manifest keeps the seed's criteria
            return crit
        # the session gate the recognition tests apply (best-similarity spread) is a success criterion too
        if "max_session_spread" in t.get("recognition", {}):
            crit["max_session_spread"] = t["recognition"]["max_session_spread"]
        crit.update(t.get("viability", {}))
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
    for r in rows:  # latency where measured for the same model and variant: end to end, else device only
        if r.model in by and r.variant in by[r.model] and r.metric in LATENCY_METRICS:
            fig = by[r.model][r.variant]["fig"]
            if r.metric == LATENCY_METRICS[0] or fig.get("latency_metric") != LATENCY_METRICS[0]:
                fig["latency_p95_ms"], fig["latency_metric"] = r.value, r.metric
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
            spread, sim_spread = f.get("session_match_spread"), f.get("session_similarity_spread")
            if (spread is not None and spread > crit["max_session_match_spread"]) or (
                    sim_spread is not None and sim_spread > crit.get("max_session_spread", float("inf"))):
                why.append(f"sessions disagree (match count spread {_fmt(spread)}, best similarity spread "
                           f"{_fmt(f.get('session_similarity_spread'))})")
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
        sizes = sorted({c[0] for v in drawn for c in v.curve})
        for ax, label in ((ax_s, "similarity to the reference"), (ax_n, "pre-norm")):
            ax.set_xlabel("face width (px)")
            ax.set_ylabel(label)
            ax.set_xscale("log")
            ax.set_xticks(sizes, [str(p) for p in sizes])
            ax.minorticks_off()
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
_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1600px;padding:0 1em;color:#222}
h1{margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ddd}.meta{color:#555}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
vertical-align:top}th{background:#f0f0f0;position:sticky;top:0}td.bad{background:#fdd;font-weight:bold}
td.ok{background:#dfd}td.warn{background:#ffe9c2}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,620px),1fr));gap:1.2em}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:.6em;background:#fff}
figure h3{margin:0 0 .2em;font-size:15px}figure p{margin:0 0 .4em;color:#555;font-size:13px}
figure img{width:100%;height:auto;display:block}details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, tid: str = "") -> str:
    def cls(c: str) -> str:
        if c in ("FAIL", "REGRESSED") or any(w in c for w in ("REGRESSED", "NOT viable")):
            return ' class="bad"'
        if c == "not tested":
            return ' class="warn"'
        return ' class="ok"' if c in ("pass", "viable") else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{cls(str(c))}>{html.escape(str(c).replace('**', ''))}</td>" for c in r)
                   + "</tr>" for r in rows)
    idattr = f" id='{tid}'" if tid else ""
    return f"<table{idattr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: ReportData, plots: Sequence[Plot] = ()) -> str:
    """A self-contained HTML page (PNG plots embedded as base64): summary, plots in a grid, tables."""
    header = html.escape(_header(data)).replace("`", "")
    h, rows = summary_table(data)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>hailo-qa report</title>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<style>{_CSS}</style></head><body><h1>hailo-qa report</h1>", f"<p class='meta'>{header}</p>",
             "<section id='summary'><h2>Summary</h2>",
             _html_table(h, rows, tid="summary-table") if rows else "<p>No metrics recorded.</p>", "</section>",
             "<section id='plots'><h2>Plots</h2><div class='plots'>"]
    for p in plots:
        b64 = base64.b64encode(p.png).decode("ascii")
        parts.append(f"<figure><h3>{html.escape(p.title)}</h3><p>{html.escape(p.caption)}</p>"
                     f"<img alt='{html.escape(p.title)}' src='data:image/png;base64,{b64}'></figure>")
    if not plots:
        parts.append("<p>Nothing to plot yet: trends need a figure that changed over two runs or more.</p>")
    parts.append("</div></section><section id='tables'><h2>Latest value of every figure</h2>")
    h, rows = metrics_table(data)
    parts.append(_html_table(h, rows) if rows else "<p>No metrics recorded.</p>")
    parts += ["<h2>Inventory</h2>", _html_table(*inventory_table(data)),
              "<h2>Precision configs and calibration sizes</h2>"]
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
    for model, table in calibration_source_tables(data).items():
        parts += [f"<h3>{html.escape(model)}: real vs random calibration data</h3>", _html_table(*table)]
    parts += [f"<details><summary>Runs (latest {min(30, len(data.runs))} of {len(data.runs)})</summary>",
              _html_table(*runs_table(data)), "</details></section></body></html>"]
    return "\n".join(parts)


def write_report(history: History, out_dir: str | Path, *, manifest=None, run_id: str | None = None,
                 progress: TextIO | None = sys.stderr) -> ReportFiles:
    """Build and write ``report.md``, ``report.html`` and ``plots/*.png`` into ``out_dir``.

    Args:
        history: an open History (read only is enough).
        out_dir: output directory (created).
        manifest: see :func:`build_report`. Defaults to none.
        run_id: see :func:`build_report`. Defaults to the latest value of every figure.
        progress: where progress lines go. Defaults to stderr; None silences them.

    Raises:
        InputFileError: ``out_dir`` is a file or cannot be created.
        HistoryError: ``run_id`` is not in the history.
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
    say(f"reading {history.location}")
    data = build_report(history, manifest=manifest, run_id=run_id)
    say(f"{len(data.rows)} rows, {len(data.runs)} runs, {len(data.lines)} figures")
    for old in (out / "plots").glob("*.png"):  # plots of an earlier report
        old.unlink()
    plots = report_plots(data, out / "plots", progress=say) + variant_plots(data.variants, out / "plots")
    md, page = out / "report.md", out / "report.html"
    for path, text in ((md, render_markdown(data, plots)), (page, render_html(data, plots))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    say(f"wrote {md} and {page} ({len(plots)} plot(s))")
    return ReportFiles(md, page, tuple(p.path for p in plots))
