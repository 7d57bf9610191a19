"""pytest-xdist: model groups, one work folder for the run, ONNX Runtime threads per worker (pytester, real xdist)."""
from __future__ import annotations

import json
import textwrap
from types import SimpleNamespace

import pytest

from hailo_qa.pytest_plugin import parallel
from hailo_qa.pytest_plugin.parallel import model_of, pytest_xdist_make_scheduler, unit_of, worker_threads
from tests.pytest_plugin.test_plugin import ENTRY, _manifest

pytest_plugins = ("pytester",)

PROBE = textwrap.dedent("""
    import json, os
    import pytest

    def _log(request, what):
        from hailo_qa.runners.onnxrt import default_threads
        row = {"test": request.node.name, "what": what, "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
               "threads": default_threads(), "work_dir": str(request.getfixturevalue("hqa").work_dir)}
        with open(os.environ["HQA_PROBE_LOG"], "a") as f:
            f.write(json.dumps(row) + "\\n")

    @pytest.mark.parametrize("i", range(4))
    def test_model(hqa_model, request, i):
        _log(request, hqa_model.name)

    @pytest.mark.parametrize("i", range(4))
    def test_plain(request, i):
        _log(request, None)
""")


def test_n2_groups_each_model_on_one_worker_with_one_cache_and_split_threads(pytester, monkeypatch):
    pytest.importorskip("xdist")
    log = pytester.path / "probe.jsonl"
    monkeypatch.setenv("HQA_PROBE_LOG", str(log))
    monkeypatch.delenv("HAILO_QA_ORT_THREADS", raising=False)
    path = _manifest(pytester, "".join(ENTRY.format(name=n, task="embedding") for n in ("alpha", "beta", "gamma")))
    pytester.makepyfile(test_probe=PROBE)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--hqa-manifest={path}", "--hqa-history=off",
                                      "--hqa-work-dir=cache", "-n", "2")
    r.assert_outcomes(passed=16)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    for name in ("alpha", "beta", "gamma"):
        mine = [r for r in rows if r["what"] == name]
        assert len(mine) == 4 and len({r["worker"] for r in mine}) == 1, f"{name} ran on several workers: {mine}"
    assert len({r["worker"] for r in rows}) == 2
    # one cache for the run, decided by the controller: the relative --hqa-work-dir made absolute, same everywhere
    assert {r["work_dir"] for r in rows} == {str(pytester.path / "cache")}
    assert {r["threads"] for r in rows} == {worker_threads(2)}


@pytest.mark.parametrize(("nodeid", "model"), [
    ("tests/test_emulator_quant.py::test_emulator_quant[int8-calib16-yunet]", "yunet"),
    ("tests/test_emulator_quant.py::test_emulator_quant[int16_selective-calib64-deimv2_atto]", "deimv2_atto"),
    ("tests/test_face_recognition.py::test_recognition[mobilefacenet[int8-calib16@emulator]]", "mobilefacenet"),
    ("tests/test_x.py::test_y[arcface_mobilefacenet_hef[int8@hailo8]]", "arcface_mobilefacenet_hef"),
    ("tests/runners/test_calib_ranges.py::test_registered[mtcnn_onet]", "mtcnn_onet"),
    ("tests/test_x.py::test_y[yunet_v2-int8]", "yunet_v2"),  # the longest name that is a whole id wins
    ("tests/test_x.py::test_y[yunet_v2x]", None),  # a name is never matched inside another id
    ("tests/test_x.py::test_y", None), ("tests/yunet/test_x.py::test_y[3]", None),
])
def test_model_of_reads_the_model_from_the_test_id(nodeid, model):
    names = ("yunet", "yunet_v2", "deimv2_atto", "mobilefacenet", "arcface_mobilefacenet_hef", "mtcnn_onet")
    assert model_of(nodeid, names) == model


def test_a_unit_is_one_module_on_one_model():
    names = ("yunet", "deimv2_atto")
    assert unit_of("tests/test_a.py::test_x[int8-yunet]", names) == "tests/test_a.py::hqa-yunet"
    assert unit_of("tests/test_a.py::test_y[yunet]", names) == "tests/test_a.py::hqa-yunet"
    assert unit_of("tests/test_b.py::test_x[yunet]", names) == "tests/test_b.py::hqa-yunet"
    assert unit_of("tests/test_a.py::test_x[int8-deimv2_atto]", names) == "tests/test_a.py::hqa-deimv2_atto"
    assert unit_of("tests/test_a.py::test_z[3]", names) == "tests/test_a.py::test_z[3]"


def _config(argv_dist="no", distload=False):
    return SimpleNamespace(known_args_namespace=SimpleNamespace(dist=argv_dist, distload=distload))


@pytest.mark.parametrize("cfg", [_config(argv_dist="load"), _config(argv_dist="worksteal"), _config(distload=True)],
                         ids=["--dist load", "--dist worksteal", "-d"])
def test_a_chosen_dist_mode_keeps_xdist_scheduler(cfg):
    assert pytest_xdist_make_scheduler(cfg, log=None) is None


def test_a_serial_run_keeps_ort_default_threads(monkeypatch):
    calls = []
    monkeypatch.setattr("hailo_qa.runners.onnxrt.set_default_threads", calls.append)
    parallel.pytest_configure(SimpleNamespace())  # no workerinput: not an xdist worker
    assert calls == []
    worker = SimpleNamespace(workerinput={"workercount": 2}, stash={})
    monkeypatch.setattr("hailo_qa.pytest_plugin.plugin.get_session", lambda cfg: SimpleNamespace())
    parallel.pytest_configure(worker)
    assert calls == [worker_threads(2)]


@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 8, 4), (4, 6, 1)])
def test_worker_threads_share_the_cores(workers, cores, threads):
    assert worker_threads(workers, cores) == threads
