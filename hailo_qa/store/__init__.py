"""What is kept: goldens with provenance, the history of every figure, and the reports built from it.

Takes results (arrays and metric rows); gives golden files (``golden/<model>/<target>/``), history rows with
baselines and the regression gate, and Markdown/HTML reports. Open first: ``golden.py``, ``history.py``,
``report.py``.
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'History': 'history',
    'HistoryError': 'history',
    'check_golden': 'golden',
    'gate': 'history',
    'golden_paths': 'golden',
    'make_row': 'history',
    'new_run_id': 'history',
    'read_golden': 'golden',
    'write_report': 'report',
})
