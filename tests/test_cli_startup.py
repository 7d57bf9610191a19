"""The command line starts at once: ``--help``, ``lint`` and ``inspect`` import only what they need (issue #13).

Structural, not wall-clock: each command runs in a fresh interpreter and reports which heavy modules ended up in
``sys.modules``. The time ratio itself is a benchmark (``benchmarks/test_bench_cli.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from hailo_qa.config import REPO_ROOT, SHARED_DIR

HEAVY = ("onnxruntime", "onnxslim", "matplotlib", "pytest", "_pytest", "cv2", "PIL", "hypothesis", "scipy", "sympy",
         "hailo_platform", "hailo_sdk_client")
"""Modules none of ``--help``, ``lint`` (of a model with nothing to fold) and ``inspect`` needs."""

PROBE = """
import json, runpy, sys
sys.argv = ["hailo-qa", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("hailo_qa", run_name="__main__")
except SystemExit as e:
    code = e.code
print("\\n@@" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_by(*argv: str) -> tuple[int, set[str]]:
    """(exit code, top-level modules imported) of ``hailo-qa ARGV`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(argv))], capture_output=True, text=True,
                         env=env, cwd=REPO_ROOT, timeout=120)
    report = json.loads(out.stdout.rpartition("\n@@")[2])
    return report["code"], {m.split(".")[0] for m in report["modules"]}


def heavy(mods: set[str]) -> list[str]:
    return sorted(set(HEAVY) & mods)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """A small plain model (Conv-Relu-Conv) with a Constant node: nothing onnxslim would do but hoist it."""
    import numpy as np
    from onnx import numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.full((1, 4, 1, 1), 2, np.float32))),
         helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Mul", ["r", "k"], ["y"])],
        "plain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    path = tmp_path_factory.mktemp("plain") / "plain.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_help_imports_nothing_heavy():
    code, mods = loaded_by("--help")
    assert code == 0 and heavy(mods) == [] and "onnx" not in mods and "numpy" not in mods


def test_lint_of_a_plain_model_imports_nothing_heavy(plain):
    """Nothing to fold: the preparation is the identity (pinning, Constant nodes as initializers), so no onnxslim,
    no ONNX Runtime for its proof."""
    code, mods = loaded_by("lint", str(plain), "--no-dfc")
    assert code == 0 and "onnx" in mods and heavy(mods) == []


def test_lint_of_a_model_that_folds_imports_the_folder(tmp_path):
    """The other side, so the probe above can fail: a shape subgraph is folded (our folder, values by ONNX Runtime)
    and proved (ONNX Runtime) — and still no onnxslim (only a fallback), plotting, pytest or image library."""
    g = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["r"]),
         helper.make_node("Relu", ["r"], ["y"])],
        "shapey", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])])
    path = tmp_path / "shapey.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    code, mods = loaded_by("lint", str(path), "--no-dfc")
    assert code == 0 and "onnxruntime" in mods and "onnxslim" not in mods
    assert heavy(mods - {"onnxruntime", "sympy"}) == []


def test_inspect_imports_nothing_heavy():
    hefs = sorted((SHARED_DIR / "hef").glob("*hailo8_*.hef"))
    if not hefs:
        pytest.skip(f"no HEF in {SHARED_DIR / 'hef'}")
    code, mods = loaded_by("inspect", str(hefs[0]))
    assert code == 0 and heavy(mods) == [] and "onnx" not in mods


def test_subcommand_help_still_lists_every_option():
    from hailo_qa.cli import build_parser, command_names

    parser = build_parser(["lint", "x.onnx"])
    names = command_names()
    assert {"lint", "split", "emulate", "inspect"} <= set(names)
    args = parser.parse_args(["lint", "m.onnx", "--json", "--batch", "2"])
    assert args.json and args.batch == 2 and callable(args._run)
    full = build_parser()  # no argv: every subcommand with its options (for documentation tools)
    assert full.parse_args(["split", "m.onnx", "--out", "d"]).out == "d"
