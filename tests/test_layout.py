"""The package map (issue #8): one subpackage per stage, imports only point down the layers, old paths still work."""
from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

import hailo_qa

PKG = Path(hailo_qa.__file__).parent
LAYERS = ["core", "runners", "evaluate", "graph", "quant", "hw", "store", "jobs", "faces"]
"""Lowest first; ``faces`` = the two faces of the package (``cli``, ``commands``, ``pytest_plugin``)."""
CORE = {"errors", "config", "manifest", "inputs", "options", "fsutil", "toolchain", "__init__"}
FACES = {"cli", "__main__", "commands", "pytest_plugin"}


def layer_of(module: str) -> str:
    """``hailo_qa.quant.calib`` → ``quant``; top-level modules → ``core`` or ``faces``."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head in FACES:
        return "faces"
    if head in CORE:
        return "core"
    return head


def imports_of(path: Path) -> set[str]:
    """Every ``hailo_qa`` module a file imports, at any depth (lazy imports inside functions included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hailo_qa"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("hailo_qa"))
    return out


def module_name(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def layering_violations(root: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        mine = LAYERS.index(layer_of(me))
        for dep in imports_of(path):
            if dep == "hailo_qa" and layer_of(me) != "core":
                continue  # the package face (lazy_exports, QAError)
            theirs = LAYERS.index(layer_of(dep))
            if theirs > mine:
                bad.append(f"{me} ({LAYERS[mine]}) imports {dep} ({LAYERS[theirs]})")
    return bad


def test_no_module_imports_from_a_layer_above_it():
    assert layering_violations() == []


def test_the_check_catches_an_import_that_climbs(tmp_path):
    pkg = tmp_path / "hailo_qa"
    (pkg / "runners").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "runners" / "bad.py").write_text("def f():\n    from hailo_qa.quant.noise import rank_layers\n")
    assert layering_violations(pkg) == ["hailo_qa.runners.bad (runners) imports hailo_qa.quant.noise (quant)"]


def test_top_level_holds_at_most_ten_modules_and_every_stage_is_a_package():
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 10, top
    for stage in LAYERS[1:-1]:
        init = PKG / stage / "__init__.py"
        assert init.is_file(), stage
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and ("Open first" in doc or "validate.py" in doc), f"{stage}/__init__.py: say what to open"


def test_every_hailo_qa_module_is_in_a_known_layer():
    for path in PKG.rglob("*.py"):
        assert layer_of(module_name(path)) in LAYERS, path


def test_tests_mirror_the_package():
    tests = Path(__file__).parent
    for stage in ("graph", "quant", "runners", "hw", "evaluate", "store", "jobs", "pytest_plugin", "commands"):
        assert (tests / stage / "__init__.py").is_file(), f"tests/{stage}/ should mirror hailo_qa/{stage}/"


@pytest.mark.parametrize("old,new", sorted(hailo_qa.MOVED_MODULES.items()))
def test_old_module_paths_work_for_one_release_with_a_warning(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        mod = importlib.import_module(old)
    assert mod is importlib.import_module(new)
    sys.modules.pop(old, None)


@pytest.mark.parametrize("pkg", ["graph", "quant", "runners", "hw", "evaluate", "store", "jobs", "pytest_plugin"])
def test_subpackage_exports_resolve(pkg):
    mod = importlib.import_module(f"hailo_qa.{pkg}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in mod.__all__:
            assert getattr(mod, name) is not None, f"hailo_qa.{pkg}.{name}"
    with pytest.raises(AttributeError, match="no attribute"):
        getattr(mod, "no_such_name")


def test_entry_points_point_at_the_new_homes():
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "hailo_qa"]
    assert plugin.value == "hailo_qa.pytest_plugin.plugin"
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "hailo-qa"]
    assert script.value == "hailo_qa.cli:main"
