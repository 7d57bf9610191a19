"""Pure metric functions and comparators: what the numbers mean.

Takes named outputs (float vs quantized vs device) or embeddings and labels; gives SNR, cosine, LSB error, agreement,
embedding and face-verification figures, and the classifier deployment checklist. Open first: ``metrics.py``
(one pure function per metric), ``compare.py``, then ``embedding.py``, ``faces.py``, ``deploy.py``.
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'CompareResult': 'compare',
    'DeployReport': 'deploy',
    'OutputCompare': 'compare',
    'assert_outputs_equal': 'compare',
    'compare_outputs': 'compare',
    'deploy_gate_failures': 'deploy',
    'deploy_report': 'deploy',
    'lsb_error': 'metrics',
    'percentiles': 'metrics',
    'simulate_distance': 'faces',
    'snr_db': 'metrics',
})
