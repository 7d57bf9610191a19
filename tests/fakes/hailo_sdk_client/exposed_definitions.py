"""Contract fake of ``hailo_sdk_client.exposed_definitions`` (tests only)."""
from enum import Enum


class InferenceContext(Enum):
    SDK_NATIVE = "sdk_native"
    SDK_FP_OPTIMIZED = "sdk_fp_optimized"
    SDK_QUANTIZED = "sdk_quantized"
    SDK_HAILO_HW = "sdk_hailo_hw"


class States(Enum):
    UNINITIALIZED = "uninitialized"
    HAILO_MODEL = "hailo_model"
    QUANTIZED_MODEL = "quantized_model"
    COMPILED_MODEL = "compiled_model"


class CalibrationDataType(Enum):
    auto = "auto"
    np_array = "np_array"
    npy_file = "npy_file"
    npy_dir = "npy_dir"


SUPPORTED_HW_ARCHS = ["hailo8", "hailo8r", "hailo8l", "hailo15h", "hailo15m", "hailo15l", "hailo10h"]
