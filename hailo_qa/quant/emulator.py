"""Choosing and building the quantization emulator for Stage 1.

Two backends, one interface (a Stage-1 :class:`~hailo_qa.runners.base.Runner` with the inputs and outputs of
``stage1.onnx``):

- ``dfc``: Hailo's Dataflow Compiler emulator (``SDK_QUANTIZED``) through :class:`hailo_qa.runners.dfc.DfcEmulatorRunner`
  — Hailo's own numerics, ``backend.hailo is True``;
- ``ort``: hailo-qa's built-in ONNX Runtime approximation (:mod:`hailo_qa.runners.emulator_ort`), ``backend.name ==
  "ort-emulator"``, ``backend.hailo is False``.

``auto`` picks ``dfc`` when ``hailo_sdk_client`` is importable, else ``ort`` (``--hqa-emulator`` /
``HAILO_QA_EMULATOR``). Every result records the backend and its version through the runner's ``backend``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hailo_qa.errors import InputDataError, ToolchainError, did_you_mean
from hailo_qa.runners.base import Runner

BACKENDS = ("auto", "dfc", "ort")


def resolve_backend(backend: str) -> str:
    """``auto`` → ``dfc`` if the DFC is importable, else ``ort``; ``dfc``/``ort`` pass through.

    Raises:
        InputDataError: an unknown backend name.
    """
    if backend not in BACKENDS:
        raise InputDataError(f"emulator backend {backend!r} is unknown", note=f"expected one of {list(BACKENDS)}",
                             hint=did_you_mean(backend, BACKENDS) or "use --hqa-emulator=auto|dfc|ort")
    if backend != "auto":
        return backend
    from hailo_qa import toolchain

    return "dfc" if toolchain.dfc().found else "ort"


def make_emulator(spec, split, *, backend: str, config: str, calib, work_dir: str | Path,
                  int16_layers: Sequence[str] = ()) -> Runner:
    """A quantized Stage-1 runner for ``spec``.

    Args:
        spec: the :class:`~hailo_qa.manifest.ModelSpec`.
        split: the model's :class:`~hailo_qa.graph.split.SplitResult` (``stage1_path``, ``stage1_inputs``).
        backend: ``ort``, ``dfc`` or ``auto``.
        config: ``int8``, ``int16_selective`` or ``int16``.
        calib: the :class:`~hailo_qa.quant.calib.CalibSet`.
        work_dir: cache folder (quantized models, HARs).
        int16_layers: 16-bit layers for ``int16_selective``. Defaults to ``quantization.int16_layers``.

    Returns:
        An inactive runner; use it as ``with runner: runner.infer(feeds)``.

    Raises:
        InputDataError: an unknown backend or config, or ``int16_selective`` without layers.
        ToolchainError: ``dfc`` asked for but ``hailo_sdk_client`` is not importable.
    """
    from hailo_qa.runners.emulator_ort import OrtEmulatorRunner, quant_config_for

    chosen = resolve_backend(backend)
    cfg = quant_config_for(spec, config, int16_layers=int16_layers)  # validates config + layers for both backends
    inputs = tuple(getattr(split, "stage1_inputs", ()) or ())
    layouts = {}
    for name in inputs:
        try:
            layouts[name] = spec.input(name).layout
        except KeyError:
            layouts[name] = "NCHW"
    if chosen == "dfc":
        from hailo_qa import toolchain

        comp = toolchain.dfc()
        if not comp.found:
            raise ToolchainError("the DFC emulator was requested but hailo_sdk_client is not importable",
                                 step="emulate", note=comp.reason or "expected the Hailo Dataflow Compiler wheel",
                                 hint="install the DFC (Hailo Developer Zone) or use --hqa-emulator=ort for the "
                                      "built-in approximation")
        from hailo_qa.runners.dfc import DfcEmulatorRunner

        har, level = dfc_quantized_har(spec, split, config=config, calib=calib, work_dir=Path(work_dir),
                                       int16_layers=cfg.int16_layers)
        meta = _har_meta(har)
        return DfcEmulatorRunner.from_split(
            split, har, context="quantized", work_dir=Path(work_dir) / "dfc", hw_arch=spec.hw_arch, config=config,
            optimization_level=level, name=f"{spec.name}:dfc[{config}]",
            on_chip_normalization=on_chip_normalization(spec),
            details={"calib_size": calib.count, "calib_sha256": calib.sha256,
                     "int16_layers": list(cfg.int16_layers), "int16_hn_layers": meta.get("int16_hn_layers", [])})
    return OrtEmulatorRunner(split.stage1_path, calib, cfg, work_dir,
                             input_name=inputs[0] if len(inputs) == 1 else None, layouts=layouts,
                             name=f"{spec.name}:ort-emulator[{config}]")


def on_chip_normalization(spec) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` (0–255 units) of the model script's ``normalization`` layer, or None (host normalization)."""
    if spec.quantization.normalization != "on_chip":
        return None
    pre = spec.device_inputs[0].preprocess if len(spec.device_inputs) == 1 else None
    return (tuple(pre.mean), tuple(pre.std)) if pre is not None else None


def _har_meta(har: Path) -> dict:
    import json

    try:
        meta = json.loads(har.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def dfc_quantized_har(spec, split, *, config: str, calib, work_dir: Path,
                      int16_layers: Sequence[str] = ()) -> tuple[Path, int | str]:
    """Parse Stage 1 with the DFC, write the model script in HN layer names, optimize with ``calib``, save the HAR.

    The order matters (HAILO_TOOLCHAIN.md §8): ``quantization_param`` takes HN layer names, so the model is parsed
    first, the 16-bit layers (ONNX node names from the manifest or the noise analysis, or HN names) are mapped
    through the HN's ``original_names`` (:func:`~hailo_qa.quant.model_script.layer_map_from_hn`), and only then
    is the script generated and loaded. A name that maps to no layer is a ManifestError listing near matches.

    Cached in ``work_dir/dfc`` by Stage-1 hash, config, layers and calibration hash (the HAR is written atomically
    by :meth:`hailo_qa.runners.dfc.DfcSession.save_har`); the sidecar JSON keeps the level, the script and the
    HN names of the 16-bit layers.

    Returns:
        (quantized HAR path, the optimization level the DFC's logs report, or ``"unknown"``).
    """
    import hashlib
    import json

    import numpy as np

    from hailo_qa.quant.model_script import alls_from_spec
    from hailo_qa.runners.dfc import DfcSession
    from hailo_qa.runners.emulator_ort import _sha256_file, atomic_write_bytes

    from hailo_qa.fsutil import writable_dir

    work = writable_dir(Path(work_dir) / "dfc", "the DFC emulator cache")
    key = hashlib.sha256(json.dumps({"stage1": _sha256_file(Path(split.stage1_path)), "config": config,
                                     "layers": list(int16_layers), "calib": calib.sha256},
                                    sort_keys=True).encode()).hexdigest()[:20]
    har = work / f"{spec.name}.{config}.{key}.q.har"
    meta = har.with_suffix(".json")
    if har.is_file() and meta.is_file():
        try:
            level = json.loads(meta.read_text()).get("optimization_level")
        except (ValueError, AttributeError, OSError):  # a corrupt/foreign sidecar: a cache miss, rebuilt below
            level = "miss"
        if level is None:  # a sidecar from before levels were read from the log files: unknown, not requested
            level = "unknown"
        if level != "miss":
            _check_level(spec, level)
            return har, level
    from hailo_qa.quant.model_script import layer_map_from_hn, resolve_layers
    from hailo_qa.runners.dfc import UNKNOWN_LEVEL

    alls_from_spec(spec, config, calib_size=calib.count, int16_layers=tuple(int16_layers))  # fail before the DFC
    session = DfcSession(work, hw_arch=spec.hw_arch, name=f"{spec.name}:dfc")
    import onnx

    model = onnx.load(str(split.stage1_path), load_external_data=False)
    producer = {t: n.name for n in model.graph.node for t in n.output}
    end_nodes = [producer.get(b.name, b.name) for b in split.boundary]  # the DFC takes node names, not tensors
    session.translate_onnx(split.stage1_path, spec.name, start_nodes=list(split.stage1_inputs), end_nodes=end_nodes)
    layer_map = layer_map_from_hn(session.hn())
    alls = alls_from_spec(spec, config, calib_size=calib.count, int16_layers=tuple(int16_layers),
                          layer_map=layer_map)
    hn_layers = (resolve_layers(tuple(int16_layers) or spec.quantization.int16_layers, layer_map, model=spec.name)
                 if config == "int16_selective" else ())
    session.load_model_script(alls)
    data = np.concatenate(list(calib.as_nhwc()), axis=0) if hasattr(calib, "as_nhwc") else None
    level = session.optimize(data)
    level = UNKNOWN_LEVEL if level is None else level
    session.save_har(har)
    atomic_write_bytes(meta, json.dumps({"optimization_level": level, "alls": alls,
                                         "int16_hn_layers": list(hn_layers)}).encode())
    _check_level(spec, level)
    return har, level


def _check_level(spec, level: int | str | None) -> None:
    """Hold the level the DFC optimized at against ``quantization.min_optimization_level`` / ``on_lower_level``
    (an unknown level warns when a minimum is set)."""
    from hailo_qa.runners.dfc import check_optimization_level

    q = spec.quantization
    check_optimization_level(level, minimum=q.min_optimization_level, on_lower=q.on_lower_level,
                             context=spec.name)
