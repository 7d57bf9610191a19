"""Contract fake of ``hailo_platform.pyhailort._pyhailort`` (HailoRT 4.23's C++ extension): the subset hailo-qa
touches. Enum members and values, status names and the default ``VDeviceParams`` are HailoRT 4.23's (checked against
the real binding by tests/runners/test_hailort_fake_conformance.py); behaviour lives in ``pyhailort.py``.
"""

from enum import IntEnum as _IntEnum


class HailoRTStatusException(Exception):
    """What unwrapped calls raise (``Device(id)``, ``Device.scan()``, ``HEF.get_*_vstream_infos()``); args = (code,).

    Like the real one it is **not** a ``HailoRTException``."""


_STATUS = (
    "HAILO_SUCCESS", "HAILO_UNINITIALIZED", "HAILO_INVALID_ARGUMENT", "HAILO_OUT_OF_HOST_MEMORY", "HAILO_TIMEOUT",
    "HAILO_INSUFFICIENT_BUFFER", "HAILO_INVALID_OPERATION", "HAILO_NOT_IMPLEMENTED", "HAILO_INTERNAL_FAILURE",
    "HAILO_DATA_ALIGNMENT_FAILURE", "HAILO_CHUNK_TOO_LARGE", "HAILO_INVALID_LOGGER_LEVEL", "HAILO_CLOSE_FAILURE",
    "HAILO_OPEN_FILE_FAILURE", "HAILO_FILE_OPERATION_FAILURE", "HAILO_UNSUPPORTED_CONTROL_PROTOCOL_VERSION",
    "HAILO_UNSUPPORTED_FW_VERSION", "HAILO_INVALID_CONTROL_RESPONSE", "HAILO_FW_CONTROL_FAILURE", "HAILO_ETH_FAILURE",
    "HAILO_ETH_INTERFACE_NOT_FOUND", "HAILO_ETH_RECV_FAILURE", "HAILO_ETH_SEND_FAILURE", "HAILO_INVALID_FIRMWARE",
    "HAILO_INVALID_CONTEXT_COUNT", "HAILO_INVALID_FRAME", "HAILO_INVALID_HEF", "HAILO_PCIE_NOT_SUPPORTED_ON_PLATFORM",
    "HAILO_INTERRUPTED_BY_SIGNAL", "HAILO_START_VDMA_CHANNEL_FAIL", "HAILO_SYNC_VDMA_BUFFER_FAIL",
    "HAILO_STOP_VDMA_CHANNEL_FAIL", "HAILO_CLOSE_VDMA_CHANNEL_FAIL", "HAILO_ATR_TABLES_CONF_VALIDATION_FAIL",
    "HAILO_EVENT_CREATE_FAIL", "HAILO_READ_EVENT_FAIL", "HAILO_DRIVER_OPERATION_FAILED",
    "HAILO_INVALID_FIRMWARE_MAGIC", "HAILO_INVALID_FIRMWARE_CODE_SIZE", "HAILO_INVALID_KEY_CERTIFICATE_SIZE",
    "HAILO_INVALID_CONTENT_CERTIFICATE_SIZE", "HAILO_MISMATCHING_FIRMWARE_BUFFER_SIZES",
    "HAILO_INVALID_FIRMWARE_CPU_ID", "HAILO_CONTROL_RESPONSE_MD5_MISMATCH", "HAILO_GET_CONTROL_RESPONSE_FAIL",
    "HAILO_GET_D2H_EVENT_MESSAGE_FAIL", "HAILO_MUTEX_INIT_FAIL", "HAILO_OUT_OF_DESCRIPTORS",
    "HAILO_UNSUPPORTED_OPCODE", "HAILO_USER_MODE_RATE_LIMITER_NOT_SUPPORTED",
    "HAILO_RATE_LIMIT_MAXIMUM_BANDWIDTH_EXCEEDED", "HAILO_ANSI_TO_UTF16_CONVERSION_FAILED",
    "HAILO_UTF16_TO_ANSI_CONVERSION_FAILED", "HAILO_UNEXPECTED_INTERFACE_INFO_FAILURE",
    "HAILO_UNEXPECTED_ARP_TABLE_FAILURE", "HAILO_MAC_ADDRESS_NOT_FOUND", "HAILO_NO_IPV4_INTERFACES_FOUND",
    "HAILO_SHUTDOWN_EVENT_SIGNALED", "HAILO_THREAD_ALREADY_ACTIVATED", "HAILO_THREAD_NOT_ACTIVATED",
    "HAILO_THREAD_NOT_JOINABLE", "HAILO_NOT_FOUND", "HAILO_COMMUNICATION_CLOSED", "HAILO_STREAM_ABORT",
    "HAILO_DRIVER_NOT_INSTALLED", "HAILO_NOT_AVAILABLE", "HAILO_TRAFFIC_CONTROL_FAILURE",
    "HAILO_INVALID_SECOND_STAGE", "HAILO_INVALID_PIPELINE", "HAILO_NETWORK_GROUP_NOT_ACTIVATED",
    "HAILO_VSTREAM_PIPELINE_NOT_ACTIVATED", "HAILO_OUT_OF_FW_MEMORY", "HAILO_STREAM_NOT_ACTIVATED",
    "HAILO_DEVICE_IN_USE", "HAILO_OUT_OF_PHYSICAL_DEVICES", "HAILO_INVALID_DEVICE_ARCHITECTURE",
    "HAILO_INVALID_DRIVER_VERSION", "HAILO_RPC_FAILED", "HAILO_INVALID_SERVICE_VERSION", "HAILO_NOT_SUPPORTED",
    "HAILO_NMS_BURST_INVALID_DATA", "HAILO_OUT_OF_HOST_CMA_MEMORY", "HAILO_QUEUE_IS_FULL",
    "HAILO_DMA_MAPPING_ALREADY_EXISTS", "HAILO_CANT_MEET_BUFFER_REQUIREMENTS", "HAILO_DRIVER_INVALID_RESPONSE",
    "HAILO_DRIVER_INVALID_IOCTL", "HAILO_DRIVER_TIMEOUT", "HAILO_DRIVER_INTERRUPTED", "HAILO_CONNECTION_REFUSED",
    "HAILO_DRIVER_WAIT_CANCELED", "HAILO_HEF_FILE_CORRUPTED", "HAILO_HEF_NOT_SUPPORTED",
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
)
_STATUS_CODES = {name: code for code, name in enumerate(_STATUS)}


def get_status_message(status_code):
    """The status name; ``""`` for an unknown code (HailoRT logs an error and returns an empty string)."""
    return _STATUS[int(status_code)] if 0 <= int(status_code) < len(_STATUS) else ""


FormatType = _IntEnum("FormatType", [("AUTO", 0), ("UINT8", 1), ("UINT16", 2), ("FLOAT32", 3)])
FormatOrder = _IntEnum("FormatOrder", [
    ("AUTO", 0), ("NHWC", 1), ("NHCW", 2), ("FCR", 3), ("F8CR", 4), ("NHW", 5), ("NC", 6), ("BAYER_RGB", 7),
    ("12_BIT_BAYER_RGB", 8), ("RGB888", 10), ("NCHW", 11), ("YUY2", 12), ("NV12", 13), ("NV21", 14), ("YYUV", 15),
    ("YYVU", 16), ("RGB4", 17), ("I420", 18), ("YYYYUV", 19), ("HAILO_NMS_WITH_BYTE_MASK", 20),
    ("HAILO_NMS_ON_CHIP", 21), ("HAILO_NMS_BY_CLASS", 22), ("HAILO_NMS_BY_SCORE", 23)])
FormatFlags = _IntEnum("FormatFlags", [("NONE", 0), ("TRANSPOSED", 2)])
StreamDirection = _IntEnum("StreamDirection", [("H2D", 0), ("D2H", 1)])
SchedulingAlgorithm = _IntEnum("SchedulingAlgorithm", [("NONE", 0), ("ROUND_ROBIN", 1)])
for _enum, _module in ((FormatType, __name__), (FormatOrder, __name__), (FormatFlags, __name__),
                       (StreamDirection, __name__), (SchedulingAlgorithm, __name__)):
    _enum.__module__ = _module


class VDeviceParams:
    """``_pyhailort.VDeviceParams``: ``default()`` is HailoRT 4.23's Python default (NO scheduler)."""

    def __init__(self):
        self.device_count = 1
        self.device_ids = []
        self.scheduling_algorithm = int(SchedulingAlgorithm.NONE)  # HailoRT's property reads back a plain int
        self.group_id = "UNIQUE"
        self.multi_process_service = False

    @staticmethod
    def default():
        return VDeviceParams()


class QuantInfo:
    def __init__(self, qp_zp, qp_scale, limvals_min, limvals_max):
        self.qp_zp, self.qp_scale = float(qp_zp), float(qp_scale)
        self.limvals_min, self.limvals_max = float(limvals_min), float(limvals_max)


class NmsShape:
    def __init__(self, number_of_classes, max_bboxes_per_class):
        self.number_of_classes, self.max_bboxes_per_class = int(number_of_classes), int(max_bboxes_per_class)


class HailoFormat:
    def __init__(self, type, order, flags=FormatFlags.NONE):
        self.type, self.order, self.flags = type, order, flags
