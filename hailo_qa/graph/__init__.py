"""ONNX analysis for Hailo-8: loading with clear errors, support rules, lint and stage split."""
