"""The pytest plugin surface: options, markers, header, manifest parametrization, usage errors (pytester)."""
from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ("pytester",)


def test_help_lists_hqa_options(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*hailo-qa: Hailo-8 model validation*", "*--hqa-manifest=PATH*",
                                 "*--hqa-emulator=BACKEND*", "*--hqa-update-golden*", "*--hqa-fail-on-regression*"])


def test_markers_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.emulator:*", "*@pytest.mark.hailo8:*", "*@pytest.mark.slow:*"])


def _hailort_in_header() -> str:
    """What the header must say about HailoRT, found independently of hailo_qa.toolchain."""
    try:
        import hailo_platform
    except ImportError:
        return "hailort=absent"
    return f"hailort={hailo_platform.__version__}"


def test_header_names_toolchain_and_emulator(pytester):
    pytester.makepyfile("def test_ok():\n    assert 1\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([f"*hailo_qa: dfc=absent {_hailort_in_header()}*",
                                 "*hailo_qa: emulator=ort (hailo-qa built-in*"])


def test_header_says_hailort_absent_when_it_is(pytester):
    """The other branch, whatever this machine has: HailoRT hidden from a subprocess → ``hailort=absent``."""
    pytester.makepyfile("def test_ok():\n    assert 1\n")
    pytester.makeconftest("import sys\nsys.modules['hailo_platform'] = None\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*hailo_qa: dfc=absent hailort=absent*"])


def test_bad_option_values_are_usage_errors(pytester):
    result = pytester.runpytest("--hqa-emulator=tpu")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*Could not parse value: 'tpu'. Expected one of auto, dfc, ort*"])
    result = pytester.runpytest("--hqa-update-golden", "--hqa-regen-all")
    result.stderr.fnmatch_lines(["*exclusive*"])


def _manifest(pytester, body):
    (pytester.path / "m.onnx").write_bytes(b"not read by this test")
    return pytester.makefile(".toml", models=body)


ENTRY = """[models.{name}]
file = "m.onnx"
task = "{task}"
[[models.{name}.inputs]]
name = "x"
shape = [1, 3, 8, 8]
"""


def test_hqa_model_parametrized_from_external_manifest(pytester):
    path = _manifest(pytester, ENTRY.format(name="alpha", task="embedding") + ENTRY.format(name="beta", task="detection"))
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        def test_all(hqa_model):
            assert hqa_model.name in ("alpha", "beta")
        @pytest.mark.hqa_select(task="embedding")
        def test_emb(hqa_model):
            assert hqa_model.task == "embedding"
    """))
    result = pytester.runpytest(f"--hqa-manifest={path}", "-v")
    for line in ("*test_all?alpha? PASSED*", "*test_all?beta? PASSED*", "*test_emb?alpha? PASSED*"):
        result.stdout.fnmatch_lines([line])  # module-scoped parametrization groups by model, so check each alone
    result.assert_outcomes(passed=3)
    result = pytester.runpytest(f"--hqa-manifest={path}", "--hqa-models=beta", "-v")
    result.assert_outcomes(passed=1, skipped=1)


def test_broken_manifest_is_a_usage_error_naming_the_key(pytester):
    path = _manifest(pytester, ENTRY.format(name="alpha", task="embedding").replace('task =', 'colour = 3\ntask ='))
    pytester.makepyfile("def test_x(hqa_model):\n    pass\n")
    result = pytester.runpytest(f"--hqa-manifest={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown key 'models.alpha.colour'*"])
