"""``hailo-qa inspect FILE.hef``: what a compiled HEF targets and holds, read without HailoRT.

Prints the target architecture and the devices it runs on, the DFC version, compile time, checksum status, and each
network group with its input/output streams and quantization. ``--json`` prints :meth:`HefInfo.to_dict` instead.
``--device-arch`` checks the HEF against a device and exits 1, saying why, when HailoRT would refuse it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "show what a compiled .hef targets and contains (architecture, SDK, checksums, streams, quantization)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hef", type=Path, help="the .hef file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device-arch", choices=("hailo8", "hailo8l"), default=None,
                   help="exit 1 if the HEF cannot run on this device architecture")


def run(args: argparse.Namespace) -> int:
    from hailo_qa.hw.hef import read_hef

    info = read_hef(args.hef)
    problem = info.incompatibility(args.device_arch) if args.device_arch else None
    if args.json:
        doc = info.to_dict()
        if args.device_arch:
            doc["device_check"] = {"device_arch": args.device_arch, "runs": problem is None,
                                   "reason": str(problem) if problem else None}
        print(json.dumps(doc, indent=2))
    else:
        print(format_info(info))
        if args.device_arch and problem is None:
            print(f"\nOK: runs on {args.device_arch}.")
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def _num(value: float | None, fmt: str = ".6g") -> str:
    return "-" if value is None else format(value, fmt)


def format_info(info) -> str:
    """The human-readable report for a :class:`~hailo_qa.hw.hef.HefInfo`."""
    ts = info.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC") if info.timestamp else "-"
    rows = [
        ("HEF", f"{info.name} ({info.file_size:,} bytes, header format v{info.header_version})"),
        ("Architecture", f"{info.hw_arch} (hw_arch {info.hw_arch_id}) -> device family {info.device_family}"),
        ("Runs on", ", ".join(info.runs_on) or "no known device"),
        ("SDK (DFC)", info.sdk_version + (f"  [{info.sdk_version_raw}]" if info.sdk_version_raw != info.sdk_version
                                          else "")),
        ("Compiled", ts),
    ]
    rows += [("Checksum" if i == 0 else "", str(c)) for i, c in enumerate(info.checksums)]
    rows.append(("Extensions", ", ".join(e.name for e in info.extensions) or "-"))
    rows.append(("Optional ext.", ", ".join(e.name for e in info.optional_extensions) or "-"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    for g in info.network_groups:
        lat = f"{g.latency_s * 1e3:.3f} ms" if g.latency_s is not None else "-"
        fps = f"{g.bottleneck_fps:.1f} fps" if g.bottleneck_fps is not None else "-"
        extra = f", {g.layouts} layouts" if g.layouts else ""
        lines += ["", f"Network group {g.name!r}: bottleneck {fps}, simulated latency {lat}, "
                      f"{g.context_count} context(s){extra}"]
        header = ("dir", "name", "shape HxWxC", "type", "order", "zp", "scale", "limvals", "original names")
        table = [header]
        for s in (*g.inputs, *g.outputs):
            lim = f"[{s.limvals[0]:.4g}, {s.limvals[1]:.4g}]" if s.limvals else "-"
            zp = _num(s.qp_zp) + (" (per-feature)" if s.per_feature_quant else "")
            table.append(("in" if s.direction == "input" else "out", s.name, "x".join(map(str, s.shape)),
                          s.format_type, s.format_order, zp, _num(s.qp_scale), lim,
                          ", ".join(s.original_names) or "-"))
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines)
