"""The hardware path: compiled HEFs, Hailo devices, latency, and the compile pipeline that makes HEFs.

Takes HEF files (or an ONNX + manifest for ``compile``) and a device; gives HEF facts read without HailoRT, device
identity and exact skip reasons, latency percentiles. Open first: ``hef.py``, ``device.py``, ``latency.py``,
``compile.py``.
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'DeviceIdentity': 'device',
    'DeviceStatus': 'device',
    'HefError': 'hef',
    'LatencyStats': 'latency',
    'NOT_VERIFIED': 'hef',
    'UNSTABLE_COV_PCT': 'latency',
    'collect_samples': 'latency',
    'compile_specs': 'compile',
    'describe_devices': 'device',
    'hailort_version_reason': 'device',
    'hef_runs_on': 'hef',
    'hef_skip_reason': 'device',
    'measure_latency': 'latency',
    'measure_runner': 'latency',
    'normalize_arch': 'device',
    'parse_benchmark_csv': 'latency',
    'parse_benchmark_stdout': 'latency',
    'parse_run_csv': 'latency',
    'parse_run_stdout': 'latency',
    'probe_device': 'device',
    'read_hef': 'hef',
    'read_hef_bytes': 'hef',
    'run_hailortcli': 'latency',
    'select_variants': 'compile',
    'stats_from_samples': 'latency',
    'version_skew_reason': 'device',
})
