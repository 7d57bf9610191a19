"""Jobs across the stages, shared by the command line and tests.

Takes the manifest; gives one result per model. ``validate.py`` is the main job (lint, split, proof, INT8 emulation,
recorded in the history).
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'record': 'validate',
    'render': 'validate',
    'validate_model': 'validate',
})
