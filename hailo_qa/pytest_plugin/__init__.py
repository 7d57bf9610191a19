"""The pytest plugin (``pytest11`` entry point ``hailo_qa.pytest_plugin.plugin``).

Takes the ``--hqa-*`` options and the manifest; gives markers, per-model parametrization and the fixtures of each
area. Open first: ``plugin.py`` (options, session, header), then ``emulator.py``, ``golden.py``, ``hw.py``.
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'QASession': 'plugin',
    'determinism_report': 'hw',
    'get_session': 'plugin',
    'latency_gate_failures': 'hw',
    'lsb_agreement': 'hw',
    'lsb_gate_failures': 'hw',
    'mark_hailo8_items': 'hw',
})
