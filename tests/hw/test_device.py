"""Device discovery and skip reasons (hailo_qa.hw.device, hailo_qa.pytest_plugin.hw) against the HailoRT contract fake."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from hailo_qa import config
from hailo_qa.errors import DeviceError
from hailo_qa.hw.device import (
    DeviceIdentity,
    DeviceStatus,
    describe_devices,
    hailort_version_reason,
    normalize_arch,
    probe_device,
    version_skew_reason,
)
from hailo_qa.pytest_plugin.hw import mark_hailo8_items
from tests.fakes import install_fake_hailort


@pytest.fixture
def fake_hrt(monkeypatch):
    return install_fake_hailort(monkeypatch)


@pytest.fixture
def no_hailort(monkeypatch):
    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # import raises ImportError


def test_import_does_not_probe():
    code = "import sys, hailo_qa.hw.device, hailo_qa.pytest_plugin.hw, hailo_qa.runners.hailort; " \
           "print('hailo_platform' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("raw, want", [("HAILO8", "hailo8"), ("HAILO8L", "hailo8l"), ("HAILO8_B0", "hailo8"),
                                       ("DeviceArchitectureTypes.HAILO8L", "hailo8l"), ("HAILO15H", "hailo15h"),
                                       ("hailo8r", "hailo8r")])
def test_normalize_arch(raw, want):
    assert normalize_arch(raw) == want


@pytest.mark.parametrize("hef, rt, fragment", [
    ("3.29.0", "4.19.0", None),
    ("3.29.0", "4.23.0", None),                       # older HEF on newer runtime is fine
    ("3.33.0", "4.19.0", "version skew"),             # newer DFC than the runtime's pair
    ("3.33.0", "4.23.0", None),
    ("5.1.0", "4.23.0", "DFC 5.1.0"),                 # Hailo-10/15 DFC
    ("3.29.0", "5.0.0", "supports only Hailo-10/15"),
    (None, "4.23.0", None),
    ("3.29.0", None, None),
])
def test_version_skew_reason(hef, rt, fragment):
    why = version_skew_reason(hef, rt)
    if fragment is None:
        assert why is None
    else:
        assert why and fragment in why and why.startswith("hailo8:")


@pytest.mark.parametrize("version, fragment", [("3.9.0", "predates the InferModel API"),
                                               ("4.17.0", "predates the InferModel API (added in HailoRT 4.18)"),
                                               ("5.0.0", "supports only Hailo-10/15")])
def test_hailort_outside_4_18_to_4_23(version, fragment):
    assert fragment in hailort_version_reason(version)
    assert hailort_version_reason("4.18.0") is None and hailort_version_reason("4.23.0") is None


def test_identity_is_frozen_and_serializable():
    ident = DeviceIdentity("0000:01:00.0", "hailo8", "4.23.0", "S1", "Hailo-8")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.architecture = "hailo8l"  # type: ignore[misc]
    assert ident.to_dict()["serial_number"] == "S1"


def test_probe_without_hailort(no_hailort):
    st = probe_device()
    assert not st.usable and "hailo_platform" in st.reason and "not installed" in st.reason
    assert describe_devices().startswith("none (")


def test_probe_with_fake_device(fake_hrt):
    hp, state = fake_hrt
    st = probe_device()
    assert st.usable, st.reason
    fw = "4.23.0 (release,app,extended context switch buffer)"  # str(identify().firmware_version), as HailoRT
    assert st.identity == DeviceIdentity("0000:01:00.0", "hailo8", fw, "FAKE-SERIAL-0001", "Hailo-8 FAKE",
                                         "FAKE M.2", "4.23.0+fake")
    assert state.open_devices == 0  # identify released the control device
    assert f"hailo8 id=0000:01:00.0 fw={fw}" in describe_devices()


def test_probe_no_device(fake_hrt):
    _, state = fake_hrt
    state.devices = []
    st = probe_device()
    assert st.reason == ("hailo8: no Hailo device found: Device.scan() returned [] (HailoRT 4.23.0+fake) and VDevice() "
                         "failed with status 74 (HAILO_OUT_OF_PHYSICAL_DEVICES); check `hailortcli scan` and the PCIe "
                         "driver (`lsmod | grep hailo_pci`)")


def test_probe_scan_error(fake_hrt):
    hp, state = fake_hrt
    from hailo_platform.pyhailort._pyhailort import HailoRTStatusException  # Device.scan() is not wrapped

    state.scan_error = HailoRTStatusException("36")
    assert "Device.scan() failed: HailoRTStatusException (status 36 HAILO_DRIVER_OPERATION_FAILED)" in \
        probe_device().reason


def test_probe_unknown_device_id(fake_hrt):
    st = probe_device("0000:09:00.0")
    assert "not among the scanned devices" in st.reason and "0000:01:00.0" in st.reason


def test_probe_hailort5(fake_hrt, monkeypatch):
    hp, _ = fake_hrt
    monkeypatch.setattr(hp, "__version__", "5.0.1")
    assert "supports only Hailo-10/15" in probe_device().reason


def test_probe_hailo8l_identity(fake_hrt):
    hp, state = fake_hrt
    from hailo_platform import _fake

    state.devices = [_fake.FakeDevice(arch="HAILO8L", board=b"Hailo-8\x00")]  # 8L boards still say "Hailo-8"
    st = probe_device()
    assert st.usable and st.identity.architecture == "hailo8l"


def test_probe_other_family(fake_hrt):
    from hailo_platform import _fake

    fake_hrt[1].devices = [_fake.FakeDevice(arch="HAILO15H")]
    assert "is a hailo15h, not a Hailo-8/8L" in probe_device().reason


def test_hef_skip_reasons_with_real_hef(fake_hrt):
    hef_mod = pytest.importorskip("hailo_qa.hw.hef", reason="hailo_qa.hw.hef (helper 'hef') has not landed yet")
    from hailo_platform import _fake

    from hailo_qa.hw.device import hef_skip_reason

    hef = config.SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt1.hef"
    if not hef.is_file():
        pytest.skip(f"shared HEF missing at {hef}")
    assert hef_mod.read_hef(hef).sdk_version.startswith("3.29")
    assert hef_skip_reason(probe_device(), hef) is None                       # hailo8 device, DFC 3.29, RT 4.23
    fake_hrt[1].devices = [_fake.FakeDevice(arch="HAILO8L")]
    why = hef_skip_reason(probe_device(), hef)
    assert why and "Hailo-8L" in why
    fake_hrt[1].devices = [_fake.FakeDevice()]
    h10 = config.SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo10h_fmt3.hef"
    assert hef_skip_reason(probe_device(), h10)
    st = DeviceStatus("4.23.0", None, reason="hailo8: no device found by Device.scan()")
    assert hef_skip_reason(st, hef) == st.reason


class _Item:
    def __init__(self, hw: bool):
        self.hw, self.marks = hw, []

    def get_closest_marker(self, name):
        return object() if (self.hw and name == "hailo8") else None

    def add_marker(self, m):
        self.marks.append(m)


def test_mark_hailo8_items_marks_only_hardware_items():
    items = [_Item(True), _Item(False), _Item(True)]
    n = mark_hailo8_items(None, items, probe=lambda cfg: DeviceStatus(None, None, reason="hailo8: because"))
    assert n == 2
    assert [len(i.marks) for i in items] == [1, 0, 1]
    assert items[0].marks[0].kwargs["reason"] == "hailo8: because"


def test_mark_hailo8_items_probes_lazily_and_keeps_usable():
    calls = []
    items = [_Item(False)]
    assert mark_hailo8_items(None, items, probe=lambda cfg: calls.append(1)) == 0 and not calls
    usable = DeviceStatus("4.23.0", DeviceIdentity("x", "hailo8", "4"), ("x",))
    assert mark_hailo8_items(None, [_Item(True)], probe=lambda cfg: usable) == 0


def test_pytest_m_hailo8_skips_with_reason_and_exits_0(tmp_path):
    """End to end: without HailoRT, `pytest -m hailo8` skips every hardware test with the exact reason, exit 0."""
    t = tmp_path / "test_hw_probe.py"
    t.write_text("import pytest\n\n@pytest.mark.hailo8\ndef test_a():\n    raise AssertionError('ran')\n\n"
                 "@pytest.mark.hailo8\ndef test_b(hqa_device):\n    raise AssertionError('ran')\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -ra\n")
    env_code = "import sys; sys.modules['hailo_platform'] = None; import pytest; " \
               f"sys.exit(pytest.main(['-p', 'hailo_qa.pytest_plugin.hw', '-m', 'hailo8', '-p', 'no:cacheprovider', " \
               f"'--rootdir', {str(tmp_path)!r}, {str(t)!r}]))"
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 skipped" in out.stdout
    assert "hailo_platform (HailoRT's Python binding) is not installed" in out.stdout


# --- the real HailoRT 4.23 binding without a device (installed by .ci/run from ../shared/vendor/) ------------------
@pytest.fixture
def real_hp():
    from tests.fakes import real_hailort

    return real_hailort()


def test_real_no_device_path_is_what_hailort_does(real_hp):
    """The three facts issue 9 names, on the real binding, and what hailo-qa makes of each."""
    from hailo_qa.runners.hailort import hailort_errors

    errs = hailort_errors(real_hp)
    assert real_hp.Device.scan() == []
    with pytest.raises(real_hp.HailoRTException) as ei:
        real_hp.VDevice()
    assert errs.status(ei.value) == (74, "HAILO_OUT_OF_PHYSICAL_DEVICES")
    with pytest.raises(errs.raw) as raw:
        real_hp.Device("0000:01:00.0")
    assert not isinstance(raw.value, real_hp.HailoRTException) and errs.status(raw.value)[0] is not None
    assert not hasattr(real_hp, "HailoRTTimeout")  # it lives in hailo_platform.pyhailort.pyhailort


def test_real_no_device_reasons(real_hp):
    from hailo_qa.runners.hailort import HailortRunner, identify

    st = probe_device()
    assert not st.usable and "not installed" not in st.reason
    assert st.reason.startswith("hailo8: no Hailo device found: Device.scan() returned [] (HailoRT 4.23.0) and "
                                "VDevice() failed with status 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)")
    assert probe_device("0000:01:00.0").reason == st.reason
    with pytest.raises(DeviceError, match=r"no Hailo device found: Device\('0000:01:00.0'\) raised "
                                          r"HailoRTStatusException \(status 2 HAILO_INVALID_ARGUMENT\)"):
        identify("0000:01:00.0", real_hp)
    hef = config.SHARED_DIR / "hef" / "hand_landmark_lite_hailo8_fmt0.hef"
    if not hef.is_file():
        pytest.skip(f"shared HEF missing at {hef}")
    runner = HailortRunner(hef)  # the HEF side needs no device
    assert list(runner.output_metadata()) == ["hand_landmark_lite/fc1", "hand_landmark_lite/fc4",
                                              "hand_landmark_lite/fc3", "hand_landmark_lite/fc2"]
    with pytest.raises(DeviceError, match=r"no Hailo device found: VDevice\(params\) raised HailoRTException: "
                                          r"libhailort failed with error: 74"):
        runner.__enter__()
    assert not runner.is_active


def test_real_pytest_m_hailo8_skips_every_device_test_with_status_74(real_hp):
    """`pytest -m hailo8` on the repo's own hardware modules, with the real binding and no device."""
    tests = [str(config.REPO_ROOT / "tests" / f) for f in ("test_hailo8_latency.py", "test_embedding_similarity.py",
                                                            "test_face_recognition.py")]
    out = subprocess.run([sys.executable, "-m", "pytest", "-m", "hailo8", "-q", "-rs", "-p", "no:cacheprovider",
                          *tests], capture_output=True, text=True, cwd=config.REPO_ROOT, timeout=300,
                         env={**__import__("os").environ, "HAILORT_LOGGER_PATH": "NONE"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert " skipped" in summary and "passed" not in summary and "failed" not in summary, summary
    reasons = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all("no Hailo device found" in r and "status 74" in r for r in reasons), reasons
    # the HEF-only ArcFace entry's recognition tests (enrolled against itself) are there, skipped for that reason
    assert any("test_face_recognition.py" in r for r in reasons), reasons


@pytest.mark.parametrize("hef_arch, device, fragment", [
    ("HAILO8P", "hailo8", None), ("HAILO8L", "hailo8", None), ("HAILO8R", "hailo8", None),
    ("HAILO8L", "hailo8l", None),
    ("HAILO8P", "hailo8l", "a Hailo-8L accepts only Hailo-8L HEFs"),
    ("HAILO8", "hailo8", "legacy arch id 0"),
    ("MARS", "hailo8", "HailoRT 5.x-only architecture (HAILO12L)"),
    ("HAILO15H", "hailo8", "Hailo-10/15 family"),
])
def test_arch_reason_follows_hailort_4_23(hef_arch, device, fragment):
    from hailo_qa.hw.device import arch_reason

    why = arch_reason(hef_arch, device)
    assert (why is None) if fragment is None else (fragment in why)
