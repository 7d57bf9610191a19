"""hailo-qa's HEF reader against the real HailoRT 4.23 (binding and ``hailortcli parse-hef``), fact by fact.

Runs where the real binding is installed (``.ci/run`` installs it from ``../shared/vendor/``) and the shared HEFs are
present; otherwise it skips with the reason. Every fact HailoRT exposes without a device is compared: network group
and network names, vstream and stream names and order, host (vstream) and padded device (stream) shapes, format
types and orders, per-tensor quantization (qp_zp, qp_scale, limvals), original names, sys_index, data bytes and the
bottleneck FPS. A mutated reader result must fail the comparison (last test).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from hailo_qa import config
from hailo_qa.hw.hef import parse_hef_description, read_hef
from tests.fakes import hailortcli_exe, real_hailort

HEF_DIR = config.SHARED_DIR / "hef"
HEFS = sorted(p.name for p in HEF_DIR.glob("*.hef")) if HEF_DIR.is_dir() else []
needs_hefs = pytest.mark.skipif(len(HEFS) < 4, reason=f"the four shared HEFs are not under {HEF_DIR}")


def _enum_name(value) -> str:
    return getattr(value, "name", None) or str(value).split(".")[-1]


def hailort_facts(hp, path) -> list[tuple[str, object]]:
    """Every device-free fact HailoRT 4.23 gives about ``path``, as (key, value) pairs in a stable order."""
    hef = hp.HEF(str(path))
    facts: list[tuple[str, object]] = [("network_groups", tuple(hef.get_network_group_names()))]
    for g in hef.get_network_group_names():
        facts.append((f"{g}.networks", tuple(hef.get_networks_names(g))))
        facts.append((f"{g}.bottleneck_fps", float(hef.bottleneck_fps(g))))
        facts.append((f"{g}.sorted_outputs", tuple(hef.get_sorted_output_names(g))))
        vins, vouts = hef.get_input_vstream_infos(g), hef.get_output_vstream_infos(g)
        facts.append((f"{g}.vstreams", tuple(v.name for v in (*vins, *vouts))))
        for v in (*vins, *vouts):
            q = v.quant_info
            facts += [(f"{v.name}.vstream.shape", tuple(v.shape)),
                      (f"{v.name}.vstream.format_type", _enum_name(v.format.type)),
                      (f"{v.name}.vstream.format_order", _enum_name(v.format.order)),
                      (f"{v.name}.qp_zp", float(q.qp_zp)), (f"{v.name}.qp_scale", float(q.qp_scale)),
                      (f"{v.name}.limvals", (float(q.limvals_min), float(q.limvals_max))),
                      (f"{v.name}.original_names", tuple(hef.get_original_names_from_vstream_name(v.name)))]
        sins, souts = hef.get_input_stream_infos(g), hef.get_output_stream_infos(g)
        facts.append((f"{g}.streams", tuple(s.name for s in (*sins, *souts))))
        for s in (*sins, *souts):
            facts += [(f"{s.name}.stream.shape", tuple(s.shape)),
                      (f"{s.name}.stream.format_type", _enum_name(s.format.type)),
                      (f"{s.name}.stream.format_order", _enum_name(s.format.order)),
                      (f"{s.name}.stream.data_bytes", int(s.data_bytes)),
                      (f"{s.name}.stream.sys_index", int(s.sys_index))]
    return facts


def reader_facts(info) -> list[tuple[str, object]]:
    """The same facts from hailo-qa's reader (``hailo_qa.hw.hef``), in HailoRT's terms."""
    facts: list[tuple[str, object]] = [("network_groups", tuple(g.name for g in info.network_groups))]
    for g in info.network_groups:
        facts.append((f"{g.name}.networks", tuple(f"{g.name}/{n}" for n in g.network_names)))
        facts.append((f"{g.name}.bottleneck_fps", g.bottleneck_fps))
        facts.append((f"{g.name}.sorted_outputs", tuple(g.sorted_output_names)))
        facts.append((f"{g.name}.vstreams", tuple(s.name for s in (*g.inputs, *g.outputs))))
        for s in (*g.inputs, *g.outputs):
            facts += [(f"{s.name}.vstream.shape", s.host_shape),
                      (f"{s.name}.vstream.format_type", s.format_type),
                      (f"{s.name}.vstream.format_order", s.format_order),
                      (f"{s.name}.qp_zp", s.qp_zp), (f"{s.name}.qp_scale", s.qp_scale),
                      (f"{s.name}.limvals", s.limvals),
                      (f"{s.name}.original_names", s.original_names)]
        facts.append((f"{g.name}.streams", g.stream_names))
        by_name = {s.name: s for s in (*g.inputs, *g.outputs)}
        for name in g.stream_names:
            s = by_name[name]
            facts += [(f"{name}.stream.shape", s.device_shape),
                      (f"{name}.stream.format_type", s.format_type),
                      (f"{name}.stream.format_order", s.device_format_order),
                      (f"{name}.stream.data_bytes", s.data_bytes),
                      (f"{name}.stream.sys_index", s.sys_index)]
    return facts


def differences(ours, theirs) -> list[str]:
    """Fact-by-fact differences (key order too): empty when the reader agrees with HailoRT."""
    out = []
    ours_d, theirs_d = dict(ours), dict(theirs)
    if [k for k, _ in ours] != [k for k, _ in theirs]:
        out.append(f"fact keys differ: only hailo-qa {sorted(set(ours_d) - set(theirs_d))}, only HailoRT "
                   f"{sorted(set(theirs_d) - set(ours_d))}")
    for key, want in theirs:
        got = ours_d.get(key, "<missing>")
        if got != want:
            out.append(f"{key}: hailo-qa {got!r} != HailoRT {want!r}")
    return out


@pytest.fixture(scope="module")
def hp():
    return real_hailort()


@needs_hefs
@pytest.mark.parametrize("name", HEFS)
def test_reader_agrees_with_hailort_fact_by_fact(hp, name):
    path = HEF_DIR / name
    theirs = hailort_facts(hp, path)
    assert len(theirs) >= 20  # the comparison covers every stream, not just the group
    assert differences(reader_facts(read_hef(path)), theirs) == []


@needs_hefs
def test_padded_device_shapes_and_qualified_network_names(hp):
    """The two places where HailoRT's view differs from the HEF's vstream view (issue 9): checked explicitly."""
    info = read_hef(HEF_DIR / "hand_landmark_lite_hailo8_fmt0.hef")
    g = info.network_group()
    fc1 = g.stream("hand_landmark_lite/fc1")
    fc4 = g.stream("hand_landmark_lite/fc4")
    assert (fc1.host_shape, fc1.device_shape, fc4.host_shape, fc4.device_shape) == ((63,), (64,), (1,), (8,))
    assert hp.HEF(str(info.path)).get_networks_names() == ["hand_landmark_lite/hand_landmark_lite"]


def _parse_hef_cli(path):
    env = dict(os.environ, HAILORT_LOGGER_PATH="NONE")
    out = subprocess.run([hailortcli_exe(), "parse-hef", str(path), "--parse-streams", "--parse-vstreams"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return parse_hef_description(out.stdout)


@needs_hefs
@pytest.mark.parametrize("name", HEFS)
def test_reader_agrees_with_hailortcli_parse_hef(name):
    path = HEF_DIR / name
    arch, groups = _parse_hef_cli(path)
    info = read_hef(path)
    assert arch == info.device_family  # HailoRT prints the device family: HAILO8 for a HAILO8P HEF
    assert [c.name for c in groups] == [g.name for g in info.network_groups]
    for cli, g in zip(groups, info.network_groups):
        assert cli.contexts == ("Single Context" if g.context_count == 1 else f"Multi Context - Number of "
                                f"contexts: {g.context_count}")
        assert cli.network_names == tuple(f"{g.name}/{n}" for n in g.network_names)
        vstreams = [(s.direction, s.name, s.format_type, s.format_order, s.host_shape)
                    for s in (*g.inputs, *g.outputs)]
        assert [(c.direction, c.name, c.format_type, c.format_order, c.shape) for c in cli.vstreams] == vstreams
        by_name = {s.name: s for s in (*g.inputs, *g.outputs)}
        streams = [(by_name[n].direction, n, by_name[n].format_type, by_name[n].device_format_order,
                    by_name[n].device_shape) for n in g.stream_names]
        assert [(c.direction, c.name, c.format_type, c.format_order, c.shape) for c in cli.streams] == streams


@needs_hefs
def test_comparison_fails_on_a_wrong_reader_fact(hp):
    """The comparison can fail: one mutated fact (a padded shape, a zero point, an order) is reported by name."""
    path = HEF_DIR / "hand_landmark_lite_hailo8_fmt0.hef"
    info = read_hef(path)
    theirs = hailort_facts(hp, path)
    g = info.network_group()
    bad_out = dataclasses.replace(g.outputs[0], padded_shape=(1, 1, 63), qp_zp=53.0)
    bad_group = dataclasses.replace(g, outputs=(bad_out, *g.outputs[1:]),
                                    stream_names=tuple(reversed(g.stream_names)))
    diffs = differences(reader_facts(dataclasses.replace(info, network_groups=(bad_group,))), theirs)
    assert any("hand_landmark_lite/fc1.stream.shape" in d for d in diffs)
    assert any("hand_landmark_lite/fc1.qp_zp" in d for d in diffs)
    assert any("hand_landmark_lite.streams" in d for d in diffs)


def test_parse_hef_description_rejects_garbage():
    from hailo_qa.hw.hef import HefError

    with pytest.raises(HefError, match="no architecture line"):
        parse_hef_description("[HailoRT] [error] Failed to parse HEF\n")
