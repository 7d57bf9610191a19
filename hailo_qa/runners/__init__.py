"""One small runner protocol, one file per backend: named inputs in, named outputs out.

Takes a model or HEF; gives ``infer(feeds) -> outputs`` with a :class:`BackendInfo` saying who computed them.
Open first: ``base.py`` (the protocol and input checks), then ``onnxrt.py`` (float reference),
``emulator_ort.py`` (built-in emulator), ``dfc.py`` (Hailo DFC), ``hailort.py`` (HailoRT), ``pipeline.py``.
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'BackendInfo': 'base',
    'BaseRunner': 'base',
    'CalibReader': 'emulator_ort',
    'DeviceIdentity': 'hailort',
    'DfcEmulatorRunner': 'dfc',
    'DfcSession': 'dfc',
    'HOST_OPS': 'hostops',
    'HailortRunner': 'hailort',
    'HostPipeline': 'pipeline',
    'HostStepRunner': 'hostops',
    'LayerNoise': 'dfc',
    'OnnxrtRunner': 'onnxrt',
    'OptimizationLevelError': 'dfc',
    'OptimizationLevelWarning': 'dfc',
    'OrtEmulatorRunner': 'emulator_ort',
    'OrtQuantConfig': 'emulator_ort',
    'Runner': 'base',
    'SNR_KEY': 'dfc',
    'TensorMeta': 'base',
    'atomic_write_bytes': 'emulator_ort',
    'check_optimization_level': 'dfc',
    'dfc_layer_noise': 'dfc',
    'dfc_parse_verdict': 'dfc',
    'fsq_quantize': 'hostops',
    'fsq_round': 'hostops',
    'identify': 'hailort',
    'import_dfc': 'dfc',
    'import_hailort': 'hailort',
    'nchw_to_nhwc': 'base',
    'nhwc_to_nchw': 'base',
    'quant_config_for': 'emulator_ort',
    'quantize_stage1': 'emulator_ort',
    'rank_layers': 'dfc',
    'tensor_overrides': 'emulator_ort',
})
