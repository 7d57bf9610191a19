"""ONNX in → lint findings, Stage 1 (device) + Stage 2 (host) and the proof that they equal the original.

Takes an ONNX model (and its manifest entry); gives per-node Hailo-8 findings, the split stages with their report,
and the bit-exact equivalence proof. Open first: ``lint.py`` (rules applied per node), ``split.py`` (where to cut),
``verify.py`` (the proof); ``hailo8_rules.toml`` is the rule table, as data.
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'CHECKS': 'rules',
    'FsqHostPlan': 'hoststep',
    'GraphIndex': 'index',
    'compare_split': 'verify',
    'evaluate': 'rules',
    'fsq_host_plan': 'hoststep',
    'fsq_pipeline': 'hoststep',
    'lint_onnx': 'lint',
    'load_onnx': 'io',
    'load_rules': 'rules',
    'load_stages': 'split',
    'pipeline_for': 'verify',
    'proof_runners': 'verify',
    'render_report': 'split',
    'split_for_model': 'split',
    'stages_from_onnx': 'split',
    'verify_fsq_step': 'hoststep',
    'verify_split': 'verify',
    'write_stages': 'split',
})
