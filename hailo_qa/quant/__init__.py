"""Stage 1 + data → calibration sets, model scripts, per-layer noise, quantization error (the optimize step).

Takes a model's Stage 1 and its calibration source; gives a validated calibration set, the ``.alls`` model script,
the noisiest layers with an INT16 suggestion, and float-vs-quantized metrics on held-out inputs. Open first:
``evaluation.py`` (one configuration end to end), ``calib.py``, ``emulator.py`` (which backend quantizes).
"""
from hailo_qa import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'AllsCommand': 'model_script',
    'BACKENDS': 'emulator',
    'CalibSet': 'calib',
    'DEFAULT_KNEE_TOL_DB': 'evaluation',
    'Int16Suggestion': 'suggest',
    'LayerNoise': 'noise',
    'SNR_KEY': 'noise',
    'alls_from_spec': 'model_script',
    'alls_lines': 'noise',
    'cached_layer_noise': 'noise',
    'calib_set_for_model': 'calib',
    'calib_set_from_arrays': 'calib',
    'calib_set_from_files': 'calib',
    'dfc_layer_noise': 'noise',
    'evaluate_quantization': 'evaluation',
    'format_table': 'noise',
    'layer_map_from_hn': 'model_script',
    'make_emulator': 'emulator',
    'measure_int16_suggestion': 'suggest',
    'ort_layer_noise': 'noise',
    'parse_alls': 'model_script',
    'parse_sizes': 'evaluation',
    'rank_layers': 'noise',
    'render_alls': 'model_script',
    'resolve_layers': 'model_script',
    'suggest_for_model': 'noise',
    'suggest_int16': 'noise',
    'sweep_calibration': 'evaluation',
    'validate_calib': 'calib',
    'write_alls': 'model_script',
    'write_sweep': 'evaluation',
})
