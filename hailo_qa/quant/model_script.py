"""Model scripts (``.alls``) generated from the manifest, plus a tiny parser/renderer.

:func:`alls_from_spec` is a pure function of the manifest entry and the precision config. Syntax follows Hailo's
Model Zoo (``hailo_model_zoo/cfg/alls/``), e.g.::

    normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])
    model_optimization_flavor(optimization_level=2, compression_level=0)
    model_optimization_config(calibration, batch_size=8, calibset_size=64)
    quantization_param({*}, precision_mode=a16_w16)

Layer names may be given as ONNX node names: with a ``layer_map`` (see :func:`layer_map_from_hn`, built from the
HN's ``original_names``) they are translated to HAR layer names, and a name that maps to nothing is an error with
near matches. :func:`parse_alls` / :func:`render_alls` round-trip: ``render_alls(parse_alls(t)) == t`` for any
generated ``t`` (the generator emits the canonical form: no comments, ``", "`` separators).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hailo_qa.errors import InputFileError, ManifestError, did_you_mean
from hailo_qa.manifest import ModelSpec

PRECISION_MODES = ("a8_w8", "a8_w4", "a16_w16", "a8_w8_a16")
"""``quantization_param`` precision modes: the Model Zoo's, plus ``a8_w8_a16`` (8-bit in and weights, 16-bit out;
HAILO_TOOLCHAIN.md §8)."""
CONFIG_MODES = {"int8": "a8_w8", "int16_selective": "a16_w16", "int16": "a16_w16"}
PERCENTILE_CLIPPING = (0.01, 99.99)
"""``activation_clipping`` percentiles emitted for ``calibration_method = "percentile"``."""
_NAME = re.compile(r"^[A-Za-z0-9_./\-:]+$|^\{[A-Za-z0-9_./\-:*?]+\}$")
_CALL = re.compile(r"^(?:(?P<lhs>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?(?P<op>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<args>.*)\)\s*$")


@dataclass(frozen=True)
class AllsCommand:
    """One model-script command: ``[lhs = ]op(arg, ..., key=value, ...)``. Values are kept as source text."""

    op: str
    args: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, str], ...] = ()
    lhs: str | None = None

    def kwarg(self, key: str, default: str | None = None) -> str | None:
        return dict(self.kwargs).get(key, default)

    def render(self) -> str:
        parts = list(self.args) + [f"{k}={v}" for k, v in self.kwargs]
        call = f"{self.op}({', '.join(parts)})"
        return f"{self.lhs} = {call}" if self.lhs else call


def _split_top(text: str, where: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    out, depth, cur, quote = [], 0, [], ""
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise InputFileError(f"{where}: unbalanced '{ch}'", note="expected matching brackets")
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if depth or quote:
        raise InputFileError(f"{where}: unclosed bracket or quote", note="expected matching brackets and quotes")
    tail = "".join(cur).strip()
    if tail or out:
        out.append(tail)
    if any(not p for p in out):
        raise InputFileError(f"{where}: empty argument", note="expected arguments separated by single commas")
    return out


def parse_alls(text: str, *, source: str = "<alls>") -> tuple[AllsCommand, ...]:
    """Parse a model script into commands (comments and blank lines are dropped).

    Args:
        text: the script.
        source: a name for messages. Defaults to ``<alls>``.

    Raises:
        InputFileError: a line is not ``[name = ]command(args)``.
    """
    cmds = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if "#" in raw and '"' not in raw else raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{n}"
        m = _CALL.match(line)
        if not m:
            raise InputFileError(f"{where}: cannot parse {raw.strip()!r}",
                                 note="expected '[name = ]command(arg, key=value, ...)'",
                                 hint="check brackets and the command name")
        args, kwargs = [], []
        for part in _split_top(m["args"], where):
            km = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$", part, re.S)
            if km:
                kwargs.append((km[1], km[2].strip()))
            elif kwargs:
                raise InputFileError(f"{where}: positional argument {part!r} after a keyword argument",
                                     note="expected positional arguments first")
            else:
                args.append(part)
        cmds.append(AllsCommand(op=m["op"], args=tuple(args), kwargs=tuple(kwargs), lhs=m["lhs"]))
    return tuple(cmds)


def render_alls(commands: Sequence[AllsCommand]) -> str:
    """The canonical text of ``commands``: one per line, ending in a newline."""
    return "".join(c.render() + "\n" for c in commands)


def write_alls(text: str, path: str | Path) -> Path:
    """Write a model script atomically (temp file + ``os.replace``)."""
    from hailo_qa.fsutil import atomic_write

    return atomic_write(path, text)


# --------------------------------------------------------------------------------------------------------------
def layer_map_from_hn(hn: Mapping) -> dict[str, tuple[str, ...]]:
    """ONNX node name → HAR layer names, from the HN dict (``hn["layers"][<layer>]["original_names"]``).

    HAR layer names (scoped ``net/conv1``) map to themselves; an ONNX node fused into several layers maps to all.
    """
    layers = hn.get("layers") if isinstance(hn, Mapping) else None
    if not isinstance(layers, Mapping):
        raise InputFileError("the HN has no 'layers' table", note="expected {'name': ..., 'layers': {...}}",
                             hint="pass runner.get_hn() (or get_hn_dict()) of the parsed model")
    out: dict[str, list[str]] = {}
    for lname, layer in layers.items():
        out.setdefault(lname, []).append(lname)
        for orig in (layer or {}).get("original_names", ()) or ():
            if lname not in out.setdefault(orig, []):
                out[orig].append(lname)
    return {k: tuple(v) for k, v in out.items()}


def resolve_layers(names: Sequence[str], layer_map: Mapping[str, str | Sequence[str]] | None, *,
                   model: str = "") -> tuple[str, ...]:
    """Translate user layer names (ONNX node names, HAR names, unscoped HAR names, ``{glob*}``) to HAR names.

    Without a ``layer_map`` the names are used as given (they must already be HAR names). Order is kept, duplicates
    dropped.

    Raises:
        ManifestError: a name maps to no layer (with near matches), or cannot be written in a model script.
    """
    ctx = f"{model} | model script" if model else "model script"
    out: list[str] = []
    har_names: set[str] = set()
    if layer_map is not None:
        for v in layer_map.values():
            har_names.update((v,) if isinstance(v, str) else v)
    for name in names:
        if name.startswith("{") or layer_map is None:
            hits: tuple[str, ...] = (name,)
        elif name in layer_map:
            v = layer_map[name]
            hits = (v,) if isinstance(v, str) else tuple(v)
        elif name in har_names or any(h.endswith("/" + name) for h in har_names):
            hits = (name,)
        else:
            cands = sorted(set(layer_map) | har_names)
            raise ManifestError(f"layer '{name}' maps to no HAR layer", context=ctx,
                                note=f"expected an ONNX node name from the HN's original_names or a HAR layer name "
                                     f"({len(cands)} known)",
                                hint=did_you_mean(name, cands) or "list the layers with the DFC (runner.get_hn()) "
                                     "and use one of their names")
        for h in hits:
            if not _NAME.match(h):
                raise ManifestError(f"layer name {h!r} cannot be written in a model script", context=ctx,
                                    note="expected letters, digits and _ . / - : (or a {glob*})",
                                    hint="use the HAR layer name (e.g. net/conv3) or pass a layer map from the HN")
            if h not in out:
                out.append(h)
    return tuple(out)


LAYER_COMMANDS = ("quantization_param",)
"""Model-script commands whose first argument names layers (a name, ``[a, b]`` or ``{glob*}``)."""


def map_alls_layers(text: str, layer_map: Mapping[str, str | Sequence[str]], *, model: str = "",
                    source: str = "<alls>") -> str:
    """Rewrite the layer names of every ``quantization_param`` line through ``layer_map`` (ONNX → HN names).

    For a script written before the model was parsed (a user's, or one naming ONNX nodes): each line naming layers
    is re-rendered with HN layer names; every other line is kept byte for byte.

    Raises:
        ManifestError: a name maps to no layer (with near matches).
        InputFileError: a ``quantization_param`` line that does not parse.
    """
    out = []
    for n, raw in enumerate(text.splitlines(keepends=True), 1):
        stripped = raw.split("#", 1)[0].strip()
        if not any(stripped.startswith(op) or re.match(rf"^\w+\s*=\s*{op}\b", stripped) for op in LAYER_COMMANDS):
            out.append(raw)
            continue
        (cmd,) = parse_alls(stripped, source=f"{source}:{n}")
        if cmd.op not in LAYER_COMMANDS or not cmd.args:
            out.append(raw)
            continue
        first = cmd.args[0]
        names = [x.strip() for x in first[1:-1].split(",")] if first.startswith("[") else [first]
        mapped = resolve_layers(names, layer_map, model=model)
        new_first = "[" + ", ".join(mapped) + "]" if first.startswith("[") or len(mapped) > 1 else mapped[0]
        line = AllsCommand(cmd.op, (new_first, *cmd.args[1:]), cmd.kwargs, cmd.lhs).render()
        out.append(line + ("\n" if raw.endswith("\n") else ""))
    return "".join(out)


def _floats(vals: Sequence[float]) -> str:
    return "[" + ", ".join(repr(float(v)) for v in vals) + "]"


def alls_from_spec(spec: ModelSpec, config: str, *, calib_size: int, int16_layers: Sequence[str] = (),
                   layer_map: Mapping[str, str | Sequence[str]] | None = None, batch_size: int | None = None,
                   layer_precision: Mapping[str, str] | None = None) -> str:
    """The model script for ``spec`` at precision ``config``.

    Lines, in order: the on-chip ``normalization`` (when ``quantization.normalization = "on_chip"``: mean/std in
    0–255 units from the device input's ``preprocess``), ``model_optimization_flavor``, ``model_optimization_config
    (calibration, ...)``, ``activation_clipping`` for percentile calibration, then ``quantization_param`` lines:
    none for ``int8`` (a8_w8 is the default), the layers for ``int16_selective``, ``{*}`` for ``int16``, then any
    explicit ``layer_precision`` overrides.

    Args:
        spec: the model.
        config: ``int8``, ``int16_selective`` or ``int16``.
        calib_size: ``calibset_size`` (the number of calibration samples), >= 1.
        int16_layers: layers for ``int16_selective``. Defaults to ``quantization.int16_layers``.
        layer_map: ONNX name → HAR name(s) (:func:`layer_map_from_hn`). Defaults to names used as given.
        batch_size: calibration batch size. Defaults to ``min(8, calib_size)``.
        layer_precision: extra per-layer precision modes (``a8_w8``, ``a8_w4``, ``a16_w16``). Defaults to none.

    Raises:
        ManifestError: unknown config or precision mode, ``int16_selective`` without layers, on-chip normalization
            without a preprocess, a layer that maps to nothing.
    """
    ctx = f"{spec.name} | model script"
    q = spec.quantization
    if config not in CONFIG_MODES:
        raise ManifestError(f"precision config {config!r} is unknown", context=ctx,
                            note=f"expected one of {list(CONFIG_MODES)}",
                            hint=did_you_mean(config, CONFIG_MODES) or "")
    if isinstance(calib_size, bool) or not isinstance(calib_size, int) or calib_size < 1:
        raise ManifestError(f"calib_size {calib_size!r} is not a positive integer", context=ctx,
                            note="expected the number of calibration samples, e.g. 64")
    bs = min(8, calib_size) if batch_size is None else batch_size
    if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1:
        raise ManifestError(f"batch_size {batch_size!r} is not a positive integer", context=ctx, note="e.g. 8")
    cmds: list[AllsCommand] = []
    if q.normalization == "on_chip":
        dev = spec.device_inputs
        if len(dev) != 1:
            raise ManifestError(f"on-chip normalization needs exactly one device input, {spec.name} has {len(dev)}",
                                context=ctx, note="hailo-qa generates one normalization layer",
                                hint="normalize on the host (quantization.normalization = \"host\")")
        pre = dev[0].preprocess
        if pre is None:
            raise ManifestError(f"input '{dev[0].name}' has no preprocess mean/std for on-chip normalization",
                                context=ctx, note="normalization(mean, std) takes 0-255 units from the preprocess",
                                hint="add preprocess = { mean = [...], std = [...] } to the input")
        cmds.append(AllsCommand("normalization", (_floats(pre.mean), _floats(pre.std)), lhs="normalization1"))
    cmds.append(AllsCommand("model_optimization_flavor", kwargs=(
        ("optimization_level", str(q.optimization_level)), ("compression_level", str(q.compression_level)))))
    cmds.append(AllsCommand("model_optimization_config", ("calibration",), (
        ("batch_size", str(bs)), ("calibset_size", str(calib_size)))))
    if q.calibration_method == "percentile":
        cmds.append(AllsCommand("pre_quantization_optimization", ("activation_clipping",), (
            ("layers", "{*}"), ("mode", "percentile"), ("clipping_values", _floats(PERCENTILE_CLIPPING)))))
    if config == "int16":
        cmds.append(AllsCommand("quantization_param", ("{*}",), (("precision_mode", "a16_w16"),)))
    elif config == "int16_selective":
        layers = resolve_layers(tuple(int16_layers) or q.int16_layers, layer_map, model=spec.name)
        if not layers:
            raise ManifestError("int16_selective names no layers", context=ctx,
                                note="expected quantization.int16_layers (or int16_layers=...) to list layers",
                                hint="add int16_layers = [\"<ONNX node or HAR layer>\", ...] to "
                                     f"[models.{spec.name}.quantization]")
        cmds.append(AllsCommand("quantization_param", ("[" + ", ".join(layers) + "]",),
                                (("precision_mode", "a16_w16"),)))
    by_mode: dict[str, list[str]] = {}
    for name, mode in (layer_precision or {}).items():
        if mode not in PRECISION_MODES:
            raise ManifestError(f"precision mode {mode!r} for layer '{name}' is unknown", context=ctx,
                                note=f"expected one of {list(PRECISION_MODES)}",
                                hint=did_you_mean(mode, PRECISION_MODES) or "")
        by_mode.setdefault(mode, []).extend(resolve_layers((name,), layer_map, model=spec.name))
    for mode in PRECISION_MODES:
        if by_mode.get(mode):
            layers = list(dict.fromkeys(by_mode[mode]))
            cmds.append(AllsCommand("quantization_param", ("[" + ", ".join(layers) + "]",),
                                    (("precision_mode", mode),)))
    return render_alls(cmds)
