"""The bad-input corpus: every kind of bad input × its cases, each with the first line of the error it must give.

One module generates the whole corpus (:data:`CASES`, kinds × cases). Each case runs the command line in-process
(``hailo_qa.cli.main``, no subprocess) against a workspace of bad files built once, and must end in the suite's
error form — ``error: <what>`` then ``Note:``/``Hint:`` lines — with exit code 2 and no traceback. The expected
first line is written beside each case (``{ws}`` is the workspace folder); a case passes when the printed first
line starts with it, so the sentence is pinned while OS details after it (``strerror`` text) may vary.

Kinds: ``option`` (command-line values: batch, shape, limits, counts), ``graph`` (--shape against the model,
--cut, --input, end nodes), ``model-file``, ``rules`` (--rules table), ``out`` (--out/--work-dir that is a file),
``manifest``, ``samples`` (corrupt .npy/.npz, decompression bombs), ``calibration``, ``hef``, ``toolchain``.
"""
from __future__ import annotations

import io
import sqlite3
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hailo_qa.cli import main
from tests.graph.models import conv_topk, save


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    argv: tuple[str, ...]  # "{ws}" is replaced by the workspace folder
    first_line: str  # the printed error's first line starts with this ("{ws}" replaced)
    state: str | None = None  # the state folder (HAILO_QA_STATE_DIR) for this case; default: a fresh one

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def _value_error(opt: str, value: str) -> str:
    return f"error: argument {opt}: Could not parse value: {value!r}"


# ---------------------------------------------------------------------------------------------------- option values
MODEL = "{ws}/dyn.onnx"  # images[N,3,8,8] -> ... (dynamic batch)
STATIC = "{ws}/static.onnx"  # images[1,3,8,8]
MANIFEST = "{ws}/good.toml"  # one model 'm' (STATIC), samples + calibration from .npy

COMMANDS: dict[str, tuple[str, ...]] = {
    "lint": ("lint", MODEL),
    "split": ("split", MODEL, "--out", "{ws}/out"),
    "calib": ("calib", "m", "--manifest", MANIFEST),
    "emulate": ("emulate", "m", "--manifest", MANIFEST, "--backend", "ort"),
    "sweep-calib": ("sweep-calib", "m", "--manifest", MANIFEST, "--backend", "ort"),
    "validate": ("validate", "--manifest", MANIFEST, "--history", "off"),
}

# option -> (commands, bad values). Every value here must be refused by the option's parser.
INT_OPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "--batch": (("lint", "split"), ("0", "-1", "-2147483648", "4097", "2147483648", "99999999999999999999", "1.5",
                                    "abc", "", "1e3", "nan")),
    "--limit": (("lint",), ("-1", "abc", "1.5", "")),
    "--verify": (("split",), ("-1", "1001", "1e9", "abc", "")),
    "--size": (("calib",), ("0", "-1", "100000000", "65537", "abc", "")),
    "--calib-size": (("emulate", "validate"), ("0", "-5", "100000000", "abc")),
    "--seed": (("calib", "emulate", "sweep-calib"), ("-1", "abc", "4294967296", "18446744073709551616")),
    "--n-eval": (("emulate", "sweep-calib"), ("0", "-1", "abc", "100000000", "65537")),
    "--knee-tol": (("sweep-calib",), ("-0.5", "nan", "abc", "inf")),
    "--suggest-int16": (("emulate",), ("0", "-1", "x")),
}


def _option_cases() -> list[Case]:
    out = []
    for opt, (cmds, values) in INT_OPTIONS.items():
        for cmd in cmds:
            for v in values:
                out.append(Case("option", f"{cmd} {opt} {v!r}", (*COMMANDS[cmd], opt, v), _value_error(opt, v)))
    for cmd in ("lint", "split"):
        for v in ("images=", "=1,3,8,8", "images", "images=1,3,x,8", "images=0,3,8,8", "images=-1,3,8,8",
                  "images=2147483648,3,8,8", "images=1,3,100000,100000", "images=99999999999999999999,3,8,8",
                  "images=1,3,8,8,"):
            out.append(Case("option", f"{cmd} --shape {v!r}", (*COMMANDS[cmd], "--shape", v),
                            _value_error("--shape", v)))
    for v in ("", ",", " , "):
        out.append(Case("option", f"split --cut {v!r}", (*COMMANDS["split"], "--cut", v), _value_error("--cut", v)))
        out.append(Case("option", f"split --end-nodes {v!r}", (*COMMANDS["split"], "--end-nodes", v),
                        _value_error("--end-nodes", v)))
    for v in ("0", "16,0", "-4", "abc", "", "100000000", "16,,64"):
        out.append(Case("option", f"sweep-calib --sizes {v!r}", (*COMMANDS["sweep-calib"], "--sizes", v),
                        f"error: calibration sizes {v!r} are not a list of positive integers"))
    out += [
        Case("option", "validate --models ','", (*COMMANDS["validate"], "--models", ","),
             "error: --models ',' names no model"),
        Case("option", "validate --models unknown", (*COMMANDS["validate"], "--models", "nope"),
             "error: model 'nope' is not in the manifest"),
        Case("option", "emulate --config int4", (*COMMANDS["emulate"], "--config", "int4"),
             "error: argument --config: invalid choice: 'int4'"),
        Case("option", "lint without a model", ("lint",), "error: the following arguments are required: model"),
        Case("option", "split without --out", ("split", MODEL), "error: the following arguments are required: --out"),
        Case("option", "lint --shape twice for one input", (*COMMANDS["lint"], "--shape", "images=1,3,8,8", "--shape",
                                                            "images=2,3,8,8"),
             "error: --shape is given twice for input 'images' ([1, 3, 8, 8] and [2, 3, 8, 8])"),
        Case("option", "split --shape twice for one input", (*COMMANDS["split"], "--shape", "images=1,3,8,8",
                                                             "--shape", "images=1,3,8,8"),
             "error: --shape is given twice for input 'images'"),
        Case("option", "validate --models m,m", (*COMMANDS["validate"], "--models", "m,m"),
             "error: --models 'm,m' names 'm' more than once"),
        Case("option", "sweep-calib --sizes 65537", (*COMMANDS["sweep-calib"], "--sizes", "65537"),
             "error: calibration sizes '65537' are not a list of positive integers"),
        Case("option", "checklist --calib-size 0", ("checklist", "m", "--manifest", MANIFEST, "--calib-size", "0"),
             "error: --calib-size 0 is not positive"),
        Case("option", "checklist --md is a folder", ("checklist", "m", "--manifest", MANIFEST, "--md", "{ws}/adir"),
             "error: --md '{ws}/adir' is a folder"),
        Case("option", "checklist --md under a file", ("checklist", "m", "--manifest", MANIFEST, "--md",
                                                       "{ws}/afile/c.md"),
             "error: --md's folder '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
    ]
    return out


# ------------------------------------------------------------------------------------------------- graph / model file
def _graph_cases() -> list[Case]:
    split, lint = COMMANDS["split"], COMMANDS["lint"]
    out = [
        Case("graph", "--shape fixed batch conflicts", ("lint", STATIC, "--shape", "images=2,3,8,8"),
             "error: --shape images=2,3,8,8 conflicts with the model: axis 0 is fixed at 1, not 2"),
        Case("graph", "--shape fixed H conflicts", ("lint", STATIC, "--shape", "images=1,3,16,8"),
             "error: --shape images=1,3,16,8 conflicts with the model: axis 2 is fixed at 8, not 16"),
        Case("graph", "--shape fixed C conflicts (split)", ("split", STATIC, "--out", "{ws}/out", "--shape",
                                                            "images=1,1,8,8"),
             "error: --shape images=1,1,8,8 conflicts with the model: axis 1 is fixed at 3, not 1"),
        Case("graph", "--shape wrong rank", (*lint, "--shape", "images=1,3,8"),
             "error: input 'images' has rank 4 but the shape given is [1, 3, 8]"),
        Case("graph", "--shape unknown input", (*lint, "--shape", "image=1,3,8,8"),
             "error: input shape given for 'image', which is not a model input"),
        Case("graph", "--cut is the input", (*split, "--cut", "images"), "error: cut tensor 'images' is a graph input"),
        Case("graph", "--cut input among others", (*split, "--cut", "r,images"),
             "error: cut tensor 'images' is a graph input"),
        Case("graph", "--cut unknown tensor", (*split, "--cut", "rr"), "error: cut tensor 'rr' does not exist"),
        Case("graph", "--end-nodes unknown", (*split, "--end-nodes", "nope"), "error: end node 'nope' does not exist"),
        Case("graph", "--end-nodes is the input", (*split, "--end-nodes", "images"),
             "error: end node 'images' does not exist"),
        Case("graph", "--input unknown (split)", (*split, "--input", "zz"), "error: 'zz' is not an input of"),
        Case("graph", "--input unknown (lint)", (*lint, "--input", "zz"), "error: 'zz' is not an input of"),
        Case("graph", "--cut at a graph output leaves rejected ops on the device", (*split, "--cut", "vals"),
             "error: the explicit Stage 1 holds 2 node(s) the Hailo-8 rules reject"),
    ]
    files = {"missing": ("{ws}/missing.onnx", "error: ONNX model '{ws}/missing.onnx' does not exist"),
             "a folder": ("{ws}/adir", "error: '{ws}/adir' is a directory, not an ONNX file"),
             "empty": ("{ws}/empty.bin", "error: ONNX model '{ws}/empty.bin' is empty (0 bytes)"),
             "garbage": ("{ws}/garbage.bin", "error: '{ws}/garbage.bin' could not be parsed as ONNX"),
             "truncated": ("{ws}/truncated.onnx", "error: '{ws}/truncated.onnx' could not be parsed as ONNX"),
             "a TOML file": ("{ws}/good.toml", "error: '{ws}/good.toml' could not be parsed as ONNX")}
    for what, (path, line) in files.items():
        out.append(Case("model-file", f"lint: {what}", ("lint", path), line))
        out.append(Case("model-file", f"split: {what}", ("split", path, "--out", "{ws}/out"), line))
    return out


# -------------------------------------------------------------------------------------------------------- rules table
RULES = {
    "missing": ("{ws}/nope.toml", "error: rule table '{ws}/nope.toml' cannot be read (No such file or directory)"),
    "a folder": ("{ws}/adir", "error: rule table '{ws}/adir' cannot be read"),
    "binary": ("{ws}/dyn.onnx", "error: rule table '{ws}/dyn.onnx' cannot be read"),
    "malformed": ("{ws}/rules_malformed.toml", "error: rule table '{ws}/rules_malformed.toml' is not valid TOML"),
    "empty": ("{ws}/empty.bin", "error: rule table '{ws}/empty.bin' has no [ops.*] tables"),
    "wrong schema": ("{ws}/rules_schema.toml",
                     "error: rule table '{ws}/rules_schema.toml' has no [ops.*] tables (unknown top-level keys"),
    "bad status": ("{ws}/rules_status.toml",
                   "error: rule table '{ws}/rules_status.toml' bad entry ops.Conv (unknown keys [], status 'maybe')"),
    "unknown key": ("{ws}/rules_key.toml",
                    "error: rule table '{ws}/rules_key.toml' bad entry ops.Conv (unknown keys ['colour']"),
    "unknown check": ("{ws}/rules_check.toml",
                      "error: rule table '{ws}/rules_check.toml' ops.Relu uses unknown check 'rank_exact'"),
    "op not a table": ("{ws}/rules_scalar.toml", "error: rule table '{ws}/rules_scalar.toml' ops.Conv is not a table"),
    "conditions not a list": ("{ws}/rules_conds.toml",
                              "error: rule table '{ws}/rules_conds.toml' ops.Relu.conditions is not a list of tables"),
}


def _rules_cases() -> list[Case]:
    out = []
    for what, (path, line) in RULES.items():
        out.append(Case("rules", f"lint: {what}", (*COMMANDS["lint"], "--rules", path), line))
    return out


# ------------------------------------------------------------------------------------------------ output folders
def _out_cases() -> list[Case]:
    return [
        Case("out", "split --out is a file", ("split", MODEL, "--out", "{ws}/afile"),
             "error: --out '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        Case("out", "split --out under a file", ("split", MODEL, "--out", "{ws}/afile/sub"),
             "error: --out '{ws}/afile/sub' is not a folder: '{ws}/afile' is a file"),
        Case("out", "sweep-calib --out is a file", (*COMMANDS["sweep-calib"], "--sizes", "4", "--out", "{ws}/afile"),
             "error: --out '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        Case("out", "emulate --work-dir is a file", (*COMMANDS["emulate"], "--work-dir", "{ws}/afile"),
             "error: --work-dir '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        Case("out", "sweep-calib --work-dir under a file", (*COMMANDS["sweep-calib"], "--work-dir",
                                                            "{ws}/afile/w"),
             "error: --work-dir '{ws}/afile/w' is not a folder: '{ws}/afile' is a file"),
        Case("out", "validate --work-dir is a file", (*COMMANDS["validate"], "--work-dir", "{ws}/afile"),
             "error: --work-dir '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        # refused before the DFC check: a bad --out needs no toolchain to be seen
        Case("out", "compile --out is a file", ("compile", "m", "--manifest", MANIFEST, "--out", "{ws}/afile"),
             "error: --out '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        Case("out", "compile --out under a file", ("compile", "m", "--manifest", MANIFEST, "--out",
                                                   "{ws}/afile/c"),
             "error: --out '{ws}/afile/c' is not a folder: '{ws}/afile' is a file"),
        Case("out", "report --out is a file", ("report", "--history", "{ws}/nohist.sqlite", "--out", "{ws}/afile"),
             "error: --out '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        Case("out", "checklist --work-dir is a file", ("checklist", "m", "--manifest", MANIFEST, "--work-dir",
                                                       "{ws}/afile"),
             "error: --work-dir '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
        Case("out", "validate --summary-dir is a file", (*COMMANDS["validate"], "--summary-dir", "{ws}/afile"),
             "error: --summary-dir '{ws}/afile' is not a folder: '{ws}/afile' is a file"),
    ]


# ------------------------------------------------------------------------- the state folder (HAILO_QA_STATE_DIR)
def _state_cases() -> list[Case]:
    """Every command that uses the state folder, with the state folder a file (or under one)."""
    m = ("--manifest", MANIFEST)
    elsewhere = ("--work-dir", "{ws}/w-ok")
    out = []
    for state, blocker in (("{ws}/afile", "{ws}/afile"), ("{ws}/afile/hqa", "{ws}/afile")):
        def folder(sub: str) -> str:
            return (f"error: the {sub} folder under HAILO_QA_STATE_DIR '{state}/{sub}' is not a folder: '{blocker}' "
                    "is a file")
        where = "is a file" if state == blocker else "under a file"
        hist = f"error: history '{state}/history.sqlite' cannot be opened: '{blocker}' is a file, not a folder"
        cases = {
            "lint (the preparation cache)": (COMMANDS["lint"], folder("work")),
            "split (the preparation cache)": (COMMANDS["split"], folder("work")),
            "emulate": (("emulate", "m", *m, "--backend", "ort"), folder("work")),
            "sweep-calib": (("sweep-calib", "m", *m, "--backend", "ort"), folder("sweeps/m-int8")),
            "validate": (("validate", *m), folder("work")),
            "validate --work-dir elsewhere": (("validate", *m, *elsewhere, "--history", "off"), folder("validate")),
            "validate --work-dir --summary-dir elsewhere": (
                ("validate", *m, *elsewhere, "--summary-dir", "{ws}/s-ok"),
                f"error: the state folder (HAILO_QA_STATE_DIR) '{state}' is not a folder: '{blocker}' is a file"),
            "checklist": (("checklist", "m", *m), folder("work")),
            "checklist --work-dir elsewhere": (
                ("checklist", "m", *m, *elsewhere),
                f"error: the state folder (HAILO_QA_STATE_DIR) '{state}' is not a folder: '{blocker}' is a file"),
            "compile (before the DFC check)": (("compile", "m", *m), folder("compile")),
            "report": (("report",), folder("report")),
            "report --out elsewhere": (("report", "--out", "{ws}/r-ok"), hist),
            "baseline show": (("baseline", "show"), hist),
            "baseline accept": (("baseline", "accept", "--latest"), hist),
            "history push": (("history", "push", "--to", "{ws}/push.sqlite"), hist),
        }
        out += [Case("state", f"{name}: state folder {where}", argv, line, state=state)
                for name, (argv, line) in cases.items()]
    return out


# ----------------------------------------------------------------------------------------------------------- manifest
GOOD_INPUT = 'name = "images"\nshape = [1, 3, 8, 8]\nrange = [0.0, 1.0]\n'


def _manifest_text(*, inputs: str = GOOD_INPUT, model: str = "", calib: str = "", top: str = "",
                   thresholds: str = "") -> str:
    return (f'{top}[models.m]\nfile = "static.onnx"\nsamples = ["samples/*.npy"]\n{model}\n'
            f'[[models.m.inputs]]\n{inputs}\n[models.m.calibration]\nsource = "calib"\n{calib}\n{thresholds}')


MANIFESTS: dict[str, tuple[str, str]] = {
    # name -> (TOML text, expected first line after "error: {ws}/man_<name>.toml: ")
    "range nan": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = [nan, 1.0]\n'),
                  "models.m.inputs[0].range is [nan, 1.0]"),
    "range inf": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = [0.0, inf]\n'),
                  "models.m.inputs[0].range is [0.0, inf]"),
    "range -inf": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = [-inf, 0.0]\n'),
                   "models.m.inputs[0].range is [-inf, 0.0]"),
    "range reversed": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = [1.0, 0.0]\n'),
                       "models.m.inputs[0].range is [1.0, 0.0]"),
    "range of 3": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = [0.0, 0.5, 1.0]\n'),
                   "models.m.inputs[0].range is [0.0, 0.5, 1.0]"),
    "range strings": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = ["0", "1"]\n'),
                      "models.m.inputs[0].range is ['0', '1']"),
    "shape zero": (_manifest_text(inputs='name = "images"\nshape = [0, 3, 8, 8]\n'),
                   "models.m.inputs[0].shape is [0, 3, 8, 8]"),
    "shape empty": (_manifest_text(inputs='name = "images"\nshape = []\n'), "models.m.inputs[0].shape is []"),
    "shape float": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8.5, 8]\n'),
                    "models.m.inputs[0].shape is [1, 3, 8.5, 8]"),
    "dtype unknown": (_manifest_text(inputs=GOOD_INPUT + 'dtype = "float8"\n'), "models.m.inputs[0].dtype is 'float8'"),
    "layout unknown": (_manifest_text(inputs=GOOD_INPUT + 'layout = "CHWN"\n'),
                       "models.m.inputs[0].layout is 'CHWN'"),
    "float for an int input": (_manifest_text(inputs=GOOD_INPUT) + '[[models.m.inputs]]\nname = "size"\nshape = [1, 2]'
                               '\ndtype = "int64"\nrole = "host"\nvalue = [640.0, 640.5]\n',
                               "models.m.inputs[1].value holds a float ([640.0, 640.5]) for a int64 input"),
    "sizes empty": (_manifest_text(calib="sizes = []"), "models.m.calibration.sizes is []"),
    "sizes zero": (_manifest_text(calib="sizes = [0]"), "models.m.calibration.sizes is [0]"),
    "sizes negative": (_manifest_text(calib="sizes = [16, -4]"), "models.m.calibration.sizes is [16, -4]"),
    "sizes 10**8": (_manifest_text(calib="sizes = [100000000]"), "models.m.calibration.sizes is [100000000]"),
    "sizes strings": (_manifest_text(calib='sizes = ["16"]'), "models.m.calibration.sizes is ['16']"),
    "max_samples negative": (_manifest_text(calib="max_samples = -1"), "models.m.calibration.max_samples is -1"),
    "max_samples zero": (_manifest_text(calib="max_samples = 0"), "models.m.calibration.max_samples is 0"),
    "max_samples float": (_manifest_text(calib="max_samples = 1.5"),
                          "models.m.calibration.max_samples has the wrong type (float 1.5)"),
    "seed negative": (_manifest_text(calib="seed = -3"), "models.m.calibration.seed is -3"),
    "calibration unknown key": (_manifest_text(calib="size = 64"), "unknown key 'models.m.calibration.size'"),
    "threshold nan": (_manifest_text(thresholds="[models.m.thresholds.emulator.int8]\nmin_snr_db = nan\n"),
                      "models.m.thresholds.emulator.int8.min_snr_db is nan"),
    "threshold inf": (_manifest_text(thresholds="[models.m.thresholds.emulator]\nmin_cosine = inf\n"),
                      "models.m.thresholds.emulator.min_cosine is inf"),
    "threshold string": (_manifest_text(thresholds='[models.m.thresholds.emulator]\nmin_cosine = "0.99"\n'),
                         "models.m.thresholds.emulator.min_cosine has the wrong type (str '0.99')"),
    "threshold unknown config": (_manifest_text(thresholds="[models.m.thresholds.emulator.int4]\nmin_snr_db = 30\n"),
                                 "unknown threshold section 'models.m.thresholds.emulator.int4'"),
    "threshold unknown config (embedding)": (
        _manifest_text(thresholds="[models.m.thresholds.embedding.emulator.int12]\nmin_cosine = 0.9\n"),
        "unknown threshold section 'models.m.thresholds.embedding.emulator.int12'"),
    "threshold unknown target": (_manifest_text(thresholds="[models.m.thresholds.embedding.gpu]\nmin_cosine = 0.9\n"),
                                 "unknown threshold section 'models.m.thresholds.embedding.gpu'"),
    "threshold unknown section": (_manifest_text(thresholds="[models.m.thresholds.latency]\nmax_ms = 3\n"),
                                  "unknown threshold section 'models.m.thresholds.latency'"),
    "threshold unknown key": (_manifest_text(thresholds="[models.m.thresholds.emulator]\nmin_snr = 30\n"),
                              "unknown threshold key 'models.m.thresholds.emulator.min_snr'"),
    "unknown model key": (_manifest_text(model='fiel = "x.onnx"'), "unknown key 'models.m.fiel'"),
    "unknown task": (_manifest_text(model='task = "segmentation"'), "models.m.task is 'segmentation'"),
    "missing file": (_manifest_text().replace('file = "static.onnx"', 'file = "gone.onnx"'),
                     "models.m.file names a missing file 'gone.onnx'"),
    "samples match nothing": (_manifest_text().replace('samples = ["samples/*.npy"]', 'samples = ["none/*.npy"]'),
                              "models.m.samples entry 'none/*.npy' matches no file"),
    "another team's schema": (_manifest_text(top="schema = 2\n"), "<top>.schema is 2"),
    "another team's layout": ('[[model]]\nname = "resnet"\npath = "resnet.onnx"\n', "unknown key 'model'"),
    "split atol without reason": (_manifest_text(model="[models.m.split]\natol = 0.001"),
                                  "models.m.split.atol = 0.001 has no written justification"),
    # tried again (issue #15's second pass): each was accepted silently or failed late before
    "sizes a bool": (_manifest_text(calib="sizes = [true]"), "models.m.calibration.sizes is [True]"),
    "max_samples a bool": (_manifest_text(calib="max_samples = true"),
                           "models.m.calibration.max_samples has the wrong type (bool True)"),
    "shape holds a bool": (_manifest_text(inputs='name = "images"\nshape = [1, true, 8, 8]\n'),
                           "models.m.inputs[0].shape is [1, True, 8, 8]"),
    "shape of 3e10 elements": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 100000, 100000]\n'),
                               "models.m.inputs[0].shape is [1, 3, 100000, 100000]: 30,000,000,000 elements is more "
                               "than 268,435,456"),
    "inputs empty": (_manifest_text().replace(f"[[models.m.inputs]]\n{GOOD_INPUT}", "inputs = []\n"),
                     "models.m declares no inputs"),
    "file is a folder": (_manifest_text().replace('file = "static.onnx"', 'file = "adir"'),
                         "models.m.file names a folder 'adir'"),
    "samples a string": (_manifest_text().replace('samples = ["samples/*.npy"]', 'samples = "samples/*.npy"'),
                         "models.m.samples has the wrong type (str 'samples/*.npy')"),
    "thresholds a list": (_manifest_text(model="thresholds = [1, 2]"),
                          "models.m.thresholds has the wrong type (list [1, 2])"),
    "max_hef_mb negative": (_manifest_text(thresholds="[models.m.thresholds.hailo8]\nmax_hef_mb = -1\n"),
                            "models.m.thresholds.hailo8.max_hef_mb is -1"),
    "min_cosine above 1": (_manifest_text(thresholds="[models.m.thresholds.emulator]\nmin_cosine = 2.0\n"),
                           "models.m.thresholds.emulator.min_cosine is 2.0"),
    "min_top1 above 1": (_manifest_text(thresholds="[models.m.thresholds.emulator.int8]\nmin_top1 = 93\n"),
                         "models.m.thresholds.emulator.int8.min_top1 is 93"),
    "range equal bounds": (_manifest_text(inputs='name = "images"\nshape = [1, 3, 8, 8]\nrange = [1.0, 1.0]\n'),
                           "models.m.inputs[0].range is [1.0, 1.0]"),
    "preprocess mean of 2": (_manifest_text(inputs=GOOD_INPUT + 'preprocess = { mean = [0, 0], std = [1, 1, 1] }\n'),
                             "models.m.inputs[0].preprocess.mean is [0, 0]"),
    "preprocess std zero": (_manifest_text(inputs=GOOD_INPUT + 'preprocess = { std = [0, 1, 1] }\n'),
                            "models.m.inputs[0].preprocess.std is [0.0, 1.0, 1.0]"),
    "variant precision int4": (_manifest_text() + '\n[[models.m.variants]]\nprecision = "int4"\n',
                               "models.m.variants[0].precision is 'int4'"),
    "variant calib_size 0": (_manifest_text() + '\n[[models.m.variants]]\nprecision = "int8"\ncalib_size = 0\n',
                             "models.m.variants[0].calib_size is 0"),
    "variant int16_layers a string": (_manifest_text() + '\n[[models.m.variants]]\nprecision = "int16_selective"\n'
                                      'int16_layers = "conv"\n',
                                      "models.m.variants[0].int16_layers has the wrong type (str 'conv')"),
    "deploy data missing": (_manifest_text() + '\n[models.m.deploy]\ndata = "nope.npz"\n',
                            "models.m.deploy.data names a missing file 'nope.npz'"),
    "host_step even levels": (_manifest_text() + '\n[models.m.host_step]\nop = "fsq"\nlevels = [4, 4]\n',
                              "models.m.host_step.levels is [4, 4]"),
    "split batch 0": (_manifest_text(model="[models.m.split]\nbatch = 0"), "models.m.split.batch is 0"),
    "split cut empty": (_manifest_text(model="[models.m.split]\ncut = []"), "models.m.split.cut is an empty list"),
    "model name empty": (_manifest_text().replace("[models.m]", '[models.""]').replace("models.m.", 'models."".'),
                         "model name '' cannot be used"),
    "task a number": (_manifest_text(model="task = 3"), "models.m.task has the wrong type (int 3)"),
    "family without members": ('[models.f]\ntask = "generic"\n[models.f.family]\nmembers = []\n'
                               'pattern = "{member}.onnx"\n', "models.f.family names no members"),
    "family pattern without {member}": ('[models.f]\n[models.f.family]\nmembers = ["a"]\npattern = "static.onnx"\n',
                                        "models.f.family.pattern = 'static.onnx' has no {member} placeholder"),
}
MANIFEST_FILES = {  # whole-file problems: name -> (path, first line)
    "a folder": ("{ws}/adir", "error: manifest '{ws}/adir' is a folder"),
    "missing": ("{ws}/nope.toml", "error: manifest '{ws}/nope.toml' does not exist"),
    "binary": ("{ws}/dyn.onnx", "error: manifest '{ws}/dyn.onnx' is not valid TOML"),
    "malformed": ("{ws}/rules_malformed.toml", "error: manifest '{ws}/rules_malformed.toml' is not valid TOML"),
    "empty": ("{ws}/empty.bin", "error: manifest '{ws}/empty.bin' registers no models"),
}


def _manifest_cases() -> list[Case]:
    out = []
    for name, (_, line) in MANIFESTS.items():
        path = "{ws}/" + manifest_path(name)
        for cmd in ("calib", "validate"):
            argv = ("calib", "m", "--manifest", path) if cmd == "calib" else ("validate", "--manifest", path,
                                                                             "--history", "off")
            out.append(Case("manifest", f"{cmd}: {name}", argv, f"error: {path}: {line}"))
    for name, (path, line) in MANIFEST_FILES.items():
        out.append(Case("manifest", f"file {name}", ("calib", "m", "--manifest", path), line))
    return out


def manifest_path(name: str) -> str:
    return "man_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name) + ".toml"


# ---------------------------------------------------------------------------------------- samples and calibration
SAMPLES = {  # file name -> first line when it is the calibration source's only file
    "garbage.npy": "error: m | calib | '{ws}/cal_garbage.npy/garbage.npy' is not a readable .npy file",
    "truncated.npy": "error: m | calib | '{ws}/cal_truncated.npy/truncated.npy' is not a readable .npy file",
    "empty.npy": "error: m | calib | '{ws}/cal_empty.npy/empty.npy' is not a readable .npy file",
    "garbage.npz": "error: m | calib | '{ws}/cal_garbage.npz/garbage.npz' is not a readable .npz file",
    "truncated.npz": "error: m | calib | '{ws}/cal_truncated.npz/truncated.npz' is not a readable .npz file",
    "nan.npy": "error: m | calib | 1 of 1 calibration samples hold NaN/Inf: nan.npy (1 NaN, 0 Inf)",
    "bomb.png": "error: image '{ws}/cal_bomb.png/bomb.png' is too large to decode",
    "garbage.png": "error: '{ws}/cal_garbage.png/garbage.png' could not be read as an image",
    # tried again (issue #15's second pass)
    "small.npy": "error: m | calib | 1 of 1 calibration source(s) have a shape that does not fit input 'images' "
                 "(C,H,W = 3,8,8): small.npy (1, 3, 4, 4)",
    "object.npy": "error: m | calib | '{ws}/cal_object.npy/object.npy' is not a readable .npy file",
    "int8.npy": "error: m | calib | 1 calibration sample(s) have the wrong dtype: int8.npy (int8)",
    "float64.npy": "error: m | calib | 1 calibration sample(s) have the wrong dtype: float64.npy (float64)",
    "scalar.npy": "error: m | calib | 1 of 1 calibration source(s) have a shape that does not fit input 'images' "
                  "(C,H,W = 3,8,8): scalar.npy ()",
    "no-rows.npy": "error: m | calib | 1 of 1 calibration source(s) have a shape that does not fit input 'images' "
                   "(C,H,W = 3,8,8): no-rows.npy (0, 3, 8, 8)",
    "inf.npy": "error: m | calib | 1 of 1 calibration samples hold NaN/Inf: inf.npy (0 NaN, 1 Inf)",
    "1e30.npy": "error: m | calib | calibration data looks like raw 0-255 pixels: values lie in [1e+30, 1e+30]",
    "empty.jpg": "error: '{ws}/cal_empty.jpg/empty.jpg' could not be read as an image",
    "dangling.npy": "error: m | calib | calibration source '{ws}/cal_dangling.npy' ({ws}/cal_dangling.npy) holds no "
                    ".npy/.npz/image file",
}


def _sample_cases() -> list[Case]:
    out = []
    for name, line in SAMPLES.items():
        out.append(Case("samples", f"calibration source {name}",
                        ("calib", "m", "--manifest", MANIFEST, "--size", "2", "--source", f"{{ws}}/cal_{name}"), line))
    out += [
        Case("calibration", "source missing", ("calib", "m", "--manifest", MANIFEST, "--source", "{ws}/nowhere"),
             "error: m | calib | calibration source '{ws}/nowhere' does not exist"),
        Case("calibration", "source empty folder", ("calib", "m", "--manifest", MANIFEST, "--source", "{ws}/adir"),
             "error: m | calib | calibration source '{ws}/adir' ({ws}/adir) holds no .npy/.npz/image file"),
        Case("calibration", "size 10**8 refused before work", ("calib", "m", "--manifest", MANIFEST, "--size",
                                                               "100000000"),
             _value_error("--size", "100000000")),
        Case("calibration", "unknown model", ("calib", "nope", "--manifest", MANIFEST),
             "error: model 'nope' is not in the manifest"),
    ]
    return out


# ---------------------------------------------------------------------------------------------------------- HEF files
def _hef_cases() -> list[Case]:
    return [
        Case("hef", "missing", ("inspect", "{ws}/nope.hef"), "error: HEF file '{ws}/nope.hef' does not exist."),
        Case("hef", "a folder", ("inspect", "{ws}/adir"), "error: '{ws}/adir' is a directory, not a HEF file."),
        Case("hef", "empty", ("inspect", "{ws}/empty.bin"), "error: empty.bin is empty (0 bytes)."),
        Case("hef", "an ONNX file", ("inspect", MODEL), "error: dyn.onnx is not a HEF file"),
        Case("hef", "garbage", ("inspect", "{ws}/garbage.bin"), "error: garbage.bin is not a HEF file"),
        Case("hef", "magic only", ("inspect", "{ws}/magic.hef"), "error: magic.hef is truncated"),
        Case("hef", "bad --device-arch", ("inspect", MODEL, "--device-arch", "hailo15"),
             "error: argument --device-arch: invalid choice: 'hailo15'"),
    ]


# ------------------------------------------------------------------------------------------------------------ history
def _history_cases() -> list[Case]:
    v = ("validate", "--manifest", MANIFEST, "--history")
    hist = "{ws}/hist.sqlite"
    foreign = "error: '{ws}/foreign.sqlite' is an SQLite database of another application (tables: users)"
    return [
        Case("history", "validate --history a folder (before the work)", (*v, "{ws}/adir"),
             "error: history '{ws}/adir' is not a file"),
        Case("history", "validate --history not SQLite (before the work)", (*v, "{ws}/garbage.bin"),
             "error: history '{ws}/garbage.bin' is not an SQLite database"),
        Case("history", "validate --history another application's", (*v, "{ws}/foreign.sqlite"), foreign),
        Case("history", "report --history another application's", ("report", "--history", "{ws}/foreign.sqlite",
                                                                     "--out", "{ws}/rep-f"), foreign),
        Case("history", "push --to another application's", ("history", "push", "--history", hist, "--to",
                                                            "{ws}/foreign.sqlite"), foreign),
        Case("history", "report --run unknown", ("report", "--history", hist, "--run", "nope", "--out", "{ws}/rep-r",
                                                 "--quiet"),
             "error: run 'nope' has no rows in history '{ws}/hist.sqlite'"),
        Case("history", "baseline accept --run unknown", ("baseline", "accept", "--run", "nope", "--history", hist),
             "error: run 'nope' has no rows in history '{ws}/hist.sqlite'"),
        Case("history", "push --to an ftp URL", ("history", "push", "--history", hist, "--to", "ftp://x/y"),
             "error: history URL 'ftp://x/y' names backend 'ftp'"),
        Case("history", "report --history URL with a bad port (password hidden)",
             ("report", "--history", "postgresql://u:secret@127.0.0.1:notaport/db", "--out", "{ws}/rep-u"),
             "error: history URL 'postgresql://u:***@127.0.0.1:notaport/db' cannot be parsed"),
        Case("history", "merge a history into itself", ("history", "merge", hist, "--into", hist),
             "error: history merge: '{ws}/hist.sqlite' would be copied into itself"),
        Case("history", "baseline show on an empty file", ("baseline", "show", "--history", "{ws}/empty.bin"),
             "error: history '{ws}/empty.bin' is empty (0 bytes)"),
        Case("history", "pull --from a missing file", ("history", "pull", "--from", "{ws}/nope.sqlite"),
             "error: history '{ws}/nope.sqlite' does not exist"),
    ]


def _toolchain_cases() -> list[Case]:
    line = "error: --backend dfc asks for the Hailo Dataflow Compiler emulator, but hailo_sdk_client is not importable"
    return [Case("toolchain", f"{cmd} --backend dfc without the DFC",
                 (*[a for a in COMMANDS[cmd] if a not in ("--backend", "ort")], "--backend", "dfc"), line)
            for cmd in ("emulate", "sweep-calib", "validate")]


CASES: list[Case] = (_option_cases() + _graph_cases() + _rules_cases() + _out_cases() + _state_cases()
                     + _manifest_cases()
                     + _sample_cases() + _history_cases() + _hef_cases() + _toolchain_cases())


# -------------------------------------------------------------------------------------------------------- workspace
def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` (a decompression bomb: the pixels are never there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND",
                                                                                                        b"")


def build_workspace(ws: Path) -> None:
    """Every bad file the corpus names, plus a small good model and manifest to aim the bad options at."""
    if not __import__("importlib.util").util.find_spec("hailo_qa"):  # pragma: no cover
        raise RuntimeError("hailo_qa is not importable")
    save(conv_topk(), ws / "dyn.onnx")
    save(conv_topk(batch=1), ws / "static.onnx")
    (ws / "adir").mkdir()
    (ws / "afile").write_text("not a folder\n")
    (ws / "empty.bin").write_bytes(b"")
    (ws / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    (ws / "truncated.onnx").write_bytes((ws / "dyn.onnx").read_bytes()[:100])
    (ws / "magic.hef").write_bytes(bytes.fromhex("01484546"))
    rules = {"rules_malformed.toml": "[ops.Conv\nstatus = \n",
             "rules_schema.toml": '[[rule]]\nop = "Conv"\nstatus = "supported"\n',
             "rules_status.toml": '[ops.Conv]\nstatus = "maybe"\n',
             "rules_key.toml": '[ops.Conv]\nstatus = "supported"\ncolour = "red"\n',
             "rules_check.toml": '[ops.Relu]\nstatus = "conditional"\nconditions = [{ check = "rank_exact" }]\n',
             "rules_scalar.toml": 'ops = { Conv = "supported" }\n',
             "rules_conds.toml": '[ops.Relu]\nstatus = "conditional"\nconditions = "rank_max"\n'}
    for name, text in rules.items():
        (ws / name).write_text(text)
    rng = np.random.default_rng(0)
    for d in ("samples", "calib"):
        (ws / d).mkdir()
        for k in range(3):
            np.save(ws / d / f"s{k}.npy", rng.uniform(0, 1, (1, 3, 8, 8)).astype(np.float32))
    (ws / "good.toml").write_text(_manifest_text())
    for name, (text, _) in MANIFESTS.items():
        (ws / manifest_path(name)).write_text(text)
    good = np.zeros((1, 3, 8, 8), np.float32)
    np.save(ws / "good.npy", good)
    raw_npy = (ws / "good.npy").read_bytes()
    np.savez(ws / "good.npz", x=good)
    raw_npz = (ws / "good.npz").read_bytes()
    bad = {"garbage.npy": b"\x93NUMPY\x09\x00garbage", "truncated.npy": raw_npy[: len(raw_npy) // 2],
           "empty.npy": b"", "garbage.npz": b"PK\x03\x04garbage", "truncated.npz": raw_npz[: len(raw_npz) // 2],
           "bomb.png": _png_header(30000, 30000), "garbage.png": b"\x89PNG\r\n\x1a\nnot really"}
    nan = good.copy()
    nan[0, 0, 0, 0] = np.nan
    inf = good.copy()
    inf[0, 1, 2, 3] = np.inf
    arrays = {"nan.npy": nan, "inf.npy": inf, "small.npy": np.zeros((1, 3, 4, 4), np.float32),
              "object.npy": np.array([{"a": 1}], dtype=object), "int8.npy": good.astype(np.int8),
              "float64.npy": good.astype(np.float64), "scalar.npy": np.float32(1.0),
              "no-rows.npy": np.zeros((0, 3, 8, 8), np.float32), "1e30.npy": np.full_like(good, 1e30)}
    for name, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        bad[name] = buf.getvalue()
    bad["empty.jpg"] = b""
    for name, data in bad.items():
        d = ws / f"cal_{name}"
        d.mkdir()
        (d / name).write_bytes(data)
    (ws / "cal_dangling.npy").mkdir()
    (ws / "cal_dangling.npy" / "dangling.npy").symlink_to(ws / "gone.npy")
    from hailo_qa.store.history import History, make_row

    with History(ws / "hist.sqlite") as h:
        h.record(make_row(run_id="r1", model="m", metric="snr_db", value=30.0, target="emulator", git="",
                          toolchain={}))
    with sqlite3.connect(ws / "foreign.sqlite") as c:
        c.execute("CREATE TABLE users (name TEXT)")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_inputs")
    build_workspace(root)
    return root


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse usage errors exit 2 through SystemExit
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_corpus_is_large_and_covers_every_kind():
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 150, len(CASES)
    assert kinds >= {"option", "graph", "model-file", "rules", "out", "state", "manifest", "samples", "calibration",
                     "history", "hef", "toolchain"}
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_the_suites_error_and_exit_2(case: Case, ws: Path, capsys, monkeypatch, tmp_path):
    state = Path(case.state.replace("{ws}", str(ws))) if case.state else tmp_path / "state"
    monkeypatch.setenv("HAILO_QA_STATE_DIR", str(state))
    monkeypatch.delenv("HAILO_QA_HISTORY", raising=False)
    monkeypatch.setattr("hailo_qa.config.STATE_DIR", state)
    monkeypatch.setattr("hailo_qa.config.HISTORY", str(state / "history.sqlite"))
    monkeypatch.setattr("hailo_qa.config.HISTORY_DB", state / "history.sqlite")
    argv = [a.replace("{ws}", str(ws)) for a in case.argv]
    code, out, err = run_cli(argv, capsys)
    expected = case.first_line.replace("{ws}", str(ws))
    lines = err.strip().splitlines()
    assert "Traceback" not in err + out
    assert lines, f"nothing on stderr (exit {code}); stdout: {out[-500:]}"
    assert lines[0].startswith(expected), f"first line:\n  {lines[0]}\nexpected it to start with:\n  {expected}"
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert any(ln.startswith(("Note: ", "Hint: ")) for ln in lines[1:]), f"no Note/Hint line:\n{err}"
