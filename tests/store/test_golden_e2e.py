"""The issue's scenario on a real model, as a user runs it: a first run creates the golden and says so, a second
run passes, a deliberately perturbed model fails with a readable message (with the diff) and a history row."""
from __future__ import annotations

import shutil
import sqlite3

import numpy  # noqa: F401  (loaded once here; pytester runs in-process)
import onnx
import onnxruntime  # noqa: F401
from onnx import numpy_helper

from hailo_qa.manifest import load_manifest

pytest_plugins = ("pytester",)

TEST = '''
import numpy as np
from hailo_qa.manifest import load_manifest
from hailo_qa.runners.onnxrt import OnnxrtRunner
from hailo_qa.inputs import random_feeds

def test_onet_golden(hqa_golden, hqa_history):
    spec = load_manifest("models.toml").get("onet")
    feeds = random_feeds(spec, np.random.default_rng(0))
    with OnnxrtRunner(spec.file) as r:
        out = r.infer(feeds)
        backend = r.backend
    hqa_history.record(model="onet", metric="softmax_max", value=float(out["softmax_2"].max()), target="float",
                       backend=backend)
    hqa_golden.check(out, model=spec, target="float", name="random0", backend=backend)
'''

MANIFEST = '''
[models.onet]
file = "onet.onnx"
[[models.onet.inputs]]
name = "input_3"
shape = [1, 48, 48, 3]
layout = "NHWC"
range = [-1.0, 1.0]
'''


def test_first_run_creates_second_passes_perturbed_fails(pytester):
    src = load_manifest().get("mtcnn_onet").file
    shutil.copy(src, pytester.path / "onet.onnx")
    (pytester.path / "models.toml").write_text(MANIFEST)
    pytester.makepyfile(test_onet=TEST)
    db = pytester.path / "h.sqlite"
    args = ["-p", "no:cacheprovider", "--hqa-golden-dir", str(pytester.path / "golden"), "--hqa-history", str(db)]

    first = pytester.runpytest(*args)
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*golden created:*random0.npz; re-run to compare*"])
    pytester.runpytest(*args).assert_outcomes(passed=1)

    m = onnx.load(str(pytester.path / "onet.onnx"))  # perturb one weight tensor by 5 %
    w = next(t for t in m.graph.initializer if numpy_helper.to_array(t).ndim == 4)
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 1.05, w.name))
    onnx.save(m, str(pytester.path / "onet.onnx"))
    third = pytester.runpytest(*args)
    third.assert_outcomes(failed=1)
    third.stdout.fnmatch_lines(["*refusing to compare with golden*model_sha256*",
                                "*For information only*", "*softmax_2*", "*Hint:*--hqa-update-golden*"])
    rows = sqlite3.connect(db).execute("select run_id, value from metrics where model = 'onet'").fetchall()
    assert len({r[0] for r in rows}) == 3  # one history row per run, the failing run included
