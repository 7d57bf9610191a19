"""Contract fake of ``hailo_platform.pyhailort.pyhailort`` (HailoRT 4.23): the subset hailo-qa calls.

Names, signatures, defaults, exception classes (and the module each lives in), status codes and enum values are
HailoRT 4.23's; tests/runners/test_hailort_fake_conformance.py compares them with the real binding wherever it is installed and
fails on any difference. Behaviour modelled on the real one (hailo-ai/hailort v4.23.0 and its Python wrapper):

- ``VDevice.create_params()`` has NO scheduler; ``VDevice(params, device_ids=...)`` ignores ``params``;
- without a scheduler and without ``ConfiguredInferModel.activate()``, ``run`` fails with HAILO_STREAM_NOT_ACTIVATED;
  ``activate()`` with a scheduler fails with HAILO_INVALID_OPERATION;
- ``set_buffer`` checks C-contiguity only; byte sizes are checked at ``run`` (HAILO_INVALID_ARGUMENT);
- ``Device(id)`` / ``Device.scan()`` raise the raw ``_pyhailort.HailoRTStatusException``; wrapped calls raise the
  ``HailoRTException`` subclass the real ``ExceptionWrapper`` picks for the status;
- no device: ``Device.scan()`` → ``[]``, ``VDevice()`` → status 74, ``Device('0000:01:00.0')`` → raw status 2;
- ``get_physical_devices()`` opens new ``Device`` objects (the caller releases them).

Outputs are SYNTHETIC: q = floor(7*sum(inputs) + 13*i) mod 256 per output element i, de-quantized with the stream's
(qp_scale, qp_zp) when the format is FLOAT32. NMS outputs hold one box per class with score q[class]/255.
"""

from enum import IntEnum

import numpy
from hailo_platform import _fake
from hailo_platform.pyhailort import _pyhailort
from hailo_platform.pyhailort._pyhailort import FormatOrder, FormatType  # noqa: F401  (HailoRT imports these too)

_raw_status_message = _pyhailort.get_status_message
_STATUS = _pyhailort._STATUS_CODES
_Format, _QuantInfo, _NmsShape = _pyhailort.HailoFormat, _pyhailort.QuantInfo, _pyhailort.NmsShape
_VDeviceParams = _pyhailort.VDeviceParams
HailoSchedulingAlgorithm = IntEnum("HailoSchedulingAlgorithm", [("NONE", 0), ("ROUND_ROBIN", 1)])
HailoStreamDirection = IntEnum("HailoStreamDirection", [("H2D", 0), ("D2H", 1)])
BBOX_PARAMS = 5


# --- exceptions: the real hierarchy -------------------------------------------------------------------------------
class HailoRTException(Exception):
    pass


class UdpRecvError(HailoRTException):
    pass


class InvalidProtocolVersionException(HailoRTException):
    pass


class HailoRTFirmwareControlFailedException(HailoRTException):
    pass


class HailoRTInvalidFrameException(HailoRTException):
    pass


class HailoRTUnsupportedOpcodeException(HailoRTException):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTStreamAborted(HailoRTException):
    pass


class HailoRTStreamAbortedByUser(HailoRTException):
    pass


class HailoRTInvalidOperationException(HailoRTException):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class HailoRTNotFoundException(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class HailoRTHEFNotCompatibleWithDevice(HailoRTException):
    pass


class HailoRTEthException(HailoRTException):
    pass


class HailoRTDriverOperationFailedException(HailoRTException):
    pass


HailoRTPCIeDriverException = HailoRTDriverOperationFailedException  # an alias in HailoRT 4.23 too


class HailoRTNetworkGroupNotActivatedException(HailoRTException):
    pass


class HailoCommunicationClosedException(HailoRTException):
    pass


_BY_STATUS = {
    "HAILO_ETH_RECV_FAILURE": (UdpRecvError, "Failed to receive data"),
    "HAILO_UNSUPPORTED_CONTROL_PROTOCOL_VERSION": (
        InvalidProtocolVersionException,
        "HailoRT has failed because an invalid protocol version was received from device"),
    "HAILO_FW_CONTROL_FAILURE": (HailoRTFirmwareControlFailedException, "libhailort control operation failed"),
    "HAILO_UNSUPPORTED_OPCODE": (HailoRTUnsupportedOpcodeException,
                                 "HailoRT has failed because an unsupported opcode was sent to device"),
    "HAILO_INVALID_FRAME": (HailoRTInvalidFrameException, "An invalid frame was received"),
    "HAILO_TIMEOUT": (HailoRTTimeout, "Received a timeout - hailort has failed because a timeout had occurred"),
    "HAILO_STREAM_ABORT": (HailoRTStreamAborted, "Stream was aborted"),
    "HAILO_INVALID_OPERATION": (HailoRTInvalidOperationException,
                                "Invalid operation. See hailort.log for more information"),
    "HAILO_INVALID_ARGUMENT": (HailoRTInvalidArgumentException,
                               "Invalid argument. See hailort.log for more information"),
    "HAILO_NOT_FOUND": (HailoRTNotFoundException, "Item not found. See hailort.log for more information"),
    "HAILO_INVALID_HEF": (HailoRTInvalidHEFException, "Invalid HEF. See hailort.log for more information"),
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE": (
        HailoRTHEFNotCompatibleWithDevice, "HEF file is not compatible with device. See hailort.log for more information"),
    "HAILO_ETH_FAILURE": (HailoRTEthException, "Ethernet failure. See hailort.log for more information"),
    "HAILO_DRIVER_OPERATION_FAILED": (
        HailoRTDriverOperationFailedException,
        "Failure in hailort driver ioctl. run 'dmesg | grep hailo' for more information"),
    "HAILO_COMMUNICATION_CLOSED": (HailoCommunicationClosedException,
                                   "Communication closed failure. Check server-client connection"),
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED": (HailoRTNetworkGroupNotActivatedException,
                                          "Network group is not activated"),
}


class HailoStatusInvalidValueException(Exception):
    pass


def get_status_message(status_code):
    status_str = _raw_status_message(status_code)
    if status_str == "":
        raise HailoStatusInvalidValueException("Value {} is not a valid status".format(status_code))
    return status_str


class ExceptionWrapper:
    """Turns a raw ``_pyhailort.HailoRTStatusException`` into the ``HailoRTException`` subclass for its status."""

    def __enter__(self):
        pass

    def __exit__(self, exception_type, value, traceback):
        if value is not None:
            if exception_type is _pyhailort.HailoRTStatusException:
                raise self.create_exception_from_status(int(value.args[0])) from value
            raise

    @staticmethod
    def create_exception_from_status(error_code):
        name = get_status_message(error_code)
        cls, message = _BY_STATUS.get(name, (None, None))
        if cls is None:
            return HailoRTException(f"libhailort failed with error: {error_code} ({name})")
        return cls(message)


def _raw(name):
    return _pyhailort.HailoRTStatusException(str(_STATUS[name]))


# --- enums kept in this module by HailoRT -------------------------------------------------------------------------
class DeviceArchitectureTypes(IntEnum):
    HAILO8_A0 = 0
    HAILO8 = 1
    HAILO8L = 2
    HAILO15H = 3
    HAILO15L = 4
    HAILO15M = 5
    HAILO10H = 6

    def __str__(self):
        return self.name


# --- device identity ----------------------------------------------------------------------------------------------
class _FirmwareVersion:
    def __init__(self, text):
        self._text = text

    def __str__(self):
        return self._text


class BoardInformation:
    def __init__(self, protocol_version, fw_version_major, fw_version_minor, fw_version_revision, logger_version,
                 board_name, is_release, extended_context_switch_buffer, device_architecture, serial_number,
                 part_number, product_name):
        self.protocol_version = protocol_version
        self.firmware_version = _FirmwareVersion(
            f"{fw_version_major}.{fw_version_minor}.{fw_version_revision} "
            f"({'release' if is_release else 'develop'},app"
            f"{',extended context switch buffer' if extended_context_switch_buffer else ''})")
        self.logger_version = logger_version
        self.board_name = board_name
        self.is_release = is_release
        self.extended_context_switch_buffer = extended_context_switch_buffer
        self.device_architecture = device_architecture
        self.serial_number = serial_number
        self.part_number = part_number
        self.product_name = product_name


class Control:
    def __init__(self, device: '_pyhailort.Device'):
        self._device = device

    def identify(self):
        d = self._device
        major, minor, revision = (int(x) for x in d.fw.split("."))
        return BoardInformation(2, major, minor, revision, 0, d.board, True, True, DeviceArchitectureTypes[d.arch],
                                d.serial, b"", d.product)


def _find(device_id):
    for d in _fake.STATE.devices:
        if d.device_id == device_id:
            return d
    return None


class Device:
    """Hailo device object representation (for inference use VDevice)"""

    @classmethod
    def scan(cls):
        if _fake.STATE.scan_error is not None:
            raise _fake.STATE.scan_error
        return [d.device_id for d in _fake.STATE.devices]

    def __init__(self, device_id=None):
        self._device = None
        if device_id is None:
            ids = Device.scan()
            if len(ids) == 0:
                raise HailoRTException('HailoRT device not found in the system')
            device_id = ids[0]
        d = _find(device_id)
        if d is None:  # _pyhailort.Device.create is not wrapped: the raw status exception escapes
            raise _raw("HAILO_INVALID_ARGUMENT")
        self._device_id = device_id
        self._device = d
        self._control_object = Control(d)
        _fake.STATE.open_devices += 1

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.release()
        return False

    def release(self):
        if self._device is not None:
            self._device = None
            _fake.STATE.open_devices -= 1

    @property
    def device_id(self):
        return self._device_id

    @property
    def control(self):
        return self._control_object


# --- HEF ----------------------------------------------------------------------------------------------------------
def _fmt(stream):
    order = FormatOrder.HAILO_NMS_BY_CLASS if stream.nms else FormatOrder[stream.order]
    ftype = FormatType.UINT8 if stream.data_bytes == 1 else FormatType.UINT16
    return _Format(ftype, order)


def _quant(s, zp=None, scale=None):
    zp = s.qp_zp if zp is None else zp
    scale = s.qp_scale if scale is None else scale
    top = 255 if s.data_bytes == 1 else 65535
    return _QuantInfo(zp, scale, (0 - zp) * scale, (top - zp) * scale)


class _VStreamInfo:
    def __init__(self, s, group, direction):
        self.name, self.network_name, self.direction = s.name, f"{group}/{group}", direction
        self.format = _fmt(s)
        self.quant_info = _quant(s)
        self._s = s

    @property
    def shape(self):
        return tuple(self._s.shape)

    @property
    def nms_shape(self):
        if self._s.nms is None:
            raise HailoRTException("nms_shape is availale only on nms order streams")
        return _NmsShape(*self._s.nms)


class HEF:
    """Python representation of the Hailo Executable Format, which contains one or more compiled models."""

    def __init__(self, hef_source):
        net = _fake.STATE.hefs.get(str(hef_source))
        if net is None:
            raise HailoRTInvalidHEFException("Invalid HEF. See hailort.log for more information")
        self._net = net
        self._path = hef_source

    @property
    def path(self):
        return self._path

    def _group(self, name):
        groups = self._net.groups
        if name is None or name == "":
            return next(iter(groups.values()))
        for gname, g in groups.items():
            if name in (gname, f"{gname}/{gname}"):
                return g
        raise _raw("HAILO_NOT_FOUND")  # HEF info getters are not wrapped

    def get_network_group_names(self):
        return list(self._net.groups)

    def get_networks_names(self, network_group_name=None):
        g = self._group(network_group_name)
        return [f"{g.name}/{g.name}"]

    def get_input_vstream_infos(self, name=None):
        g = self._group(name)
        return [_VStreamInfo(s, g.name, HailoStreamDirection.H2D) for s in g.inputs]

    def get_output_vstream_infos(self, name=None):
        g = self._group(name)
        return [_VStreamInfo(s, g.name, HailoStreamDirection.D2H) for s in g.outputs]

    def get_sorted_output_names(self, network_group_name=None):
        return [s.name for s in self._group(network_group_name).outputs]

    def bottleneck_fps(self, network_group_name=None):
        return float(self._group(network_group_name).bottleneck_fps)


# --- VDevice and the InferModel API -------------------------------------------------------------------------------
class VDevice(object):
    """Hailo virtual device representation."""

    def __init__(self, params=None, *, device_ids=None):
        self._vdevice = None
        self._params = params
        self._device_ids = device_ids
        self._open_vdevice()

    def _open_vdevice(self):
        if self._params is None:
            self._params = VDevice.create_params()
        with ExceptionWrapper():
            self._vdevice = _FakeVDevice.create(self._params, [] if self._device_ids is None else self._device_ids)

    def __enter__(self):
        return self

    def release(self):
        if self._vdevice is not None:
            self._vdevice.release()
            self._vdevice = None

    def __exit__(self, *args):
        self.release()
        return False

    @staticmethod
    def create_params():
        with ExceptionWrapper():
            return _VDeviceParams.default()

    def get_physical_devices(self):
        return [Device(dev_id) for dev_id in self.get_physical_devices_ids()]

    def get_physical_devices_ids(self):
        with ExceptionWrapper():
            return [d.device_id for d in self._vdevice.devices]

    def create_infer_model(self, hef_source, name=""):
        with ExceptionWrapper():
            net = _fake.STATE.hefs.get(str(hef_source))
            if net is None:
                raise _raw("HAILO_INVALID_HEF")
            if name and name not in net.groups:
                raise _raw("HAILO_NOT_FOUND")
            if not name and len(net.groups) != 1:
                raise _raw("HAILO_INVALID_ARGUMENT")
            group = net.groups[name] if name else next(iter(net.groups.values()))
            return InferModel(_FakeInferModel(group, self._vdevice), hef_source)


class _FakeVDevice:
    """Stands for ``_pyhailort.VDevice``: the device set and the scheduler it was created with."""

    def __init__(self, devices, scheduler):
        self.devices, self.scheduler = devices, scheduler
        _fake.STATE.open_vdevices += 1
        _fake.STATE.last_scheduler = scheduler

    @staticmethod
    def create(params, device_ids):
        if device_ids:  # VDevice(params, device_ids=...) builds fresh default params: no scheduler (vdevice_api.hpp)
            params = _VDeviceParams.default()
            params.device_ids = list(device_ids)
        available = list(_fake.STATE.devices)
        if params.device_ids:
            chosen = []
            for i in params.device_ids:
                d = _find(i)
                if d is None:
                    raise _raw("HAILO_INVALID_ARGUMENT")
                chosen.append(d)
        else:
            if len(available) < params.device_count:
                raise _raw("HAILO_OUT_OF_PHYSICAL_DEVICES")
            chosen = available[:params.device_count]
        return _FakeVDevice(chosen, params.scheduling_algorithm)

    def release(self):
        _fake.STATE.open_vdevices -= 1


class _FakeInferModel:
    def __init__(self, group, vdevice):
        self.group, self.vdevice = group, vdevice
        self.inputs = [_FakeStream(s, True) for s in group.inputs]
        self.outputs = [_FakeStream(s, False) for s in group.outputs]
        self.batch_size = 0


class _FakeStream:
    def __init__(self, s, is_input):
        self.s, self.is_input = s, is_input
        self.type = FormatType.UINT8 if s.data_bytes == 1 else FormatType.UINT16
        self.order = FormatOrder.HAILO_NMS_BY_CLASS if s.nms else FormatOrder[s.order]
        if s.nms:
            self.type = FormatType.FLOAT32  # HailoRT's NMS outputs default to float32

    def frame_shape(self):
        if self.s.nms:
            classes, boxes = self.s.nms
            return (classes * (1 + BBOX_PARAMS * boxes),)
        return tuple(self.s.shape)

    def frame_bytes(self):
        size = {FormatType.UINT8: 1, FormatType.UINT16: 2, FormatType.FLOAT32: 4}.get(self.type, 1)
        return int(numpy.prod(self.frame_shape())) * size

    def quant_infos(self):
        s = self.s
        if s.qp_scales:
            return [_quant(s, z, c) for z, c in zip(s.qp_zps, s.qp_scales)]
        return [_quant(s)]


class InferModel:
    """Contains all of the necessary information for configuring the network for inference."""

    class InferStream:
        """Represents the parameters of a stream."""

        def __init__(self, infer_stream):
            self._infer_stream = infer_stream

        @property
        def name(self):
            return self._infer_stream.s.name

        @property
        def shape(self):
            return list(self._infer_stream.frame_shape())

        @property
        def format(self):
            return _Format(self._infer_stream.type, self._infer_stream.order)

        def set_format_type(self, type):
            self._infer_stream.type = type

        def set_format_order(self, order):
            self._infer_stream.order = order

        @property
        def quant_infos(self):
            return self._infer_stream.quant_infos()

        @property
        def is_nms(self):
            return self._infer_stream.s.nms is not None

    def __init__(self, infer_model, hef_path):
        self._infer_model = infer_model
        self._hef_path = hef_path
        self._hef = None

    @property
    def hef(self):
        if not self._hef:
            self._hef = HEF(self._hef_path)
        return self._hef

    def set_batch_size(self, batch_size):
        self._infer_model.batch_size = batch_size

    def configure(self):
        with ExceptionWrapper():
            return ConfiguredInferModel(_FakeConfigured(self._infer_model), self)

    @property
    def input_names(self):
        return [s.s.name for s in self._infer_model.inputs]

    @property
    def output_names(self):
        return [s.s.name for s in self._infer_model.outputs]

    @property
    def inputs(self):
        return [self.InferStream(s) for s in self._infer_model.inputs]

    @property
    def outputs(self):
        return [self.InferStream(s) for s in self._infer_model.outputs]

    def _stream(self, streams, name):
        with ExceptionWrapper():
            if name == "" and len(streams) == 1:
                return streams[0]
            for s in streams:
                if s.s.name == name:
                    return s
            raise _raw("HAILO_NOT_FOUND")

    def input(self, name=""):
        return self.InferStream(self._stream(self._infer_model.inputs, name))

    def output(self, name=""):
        return self.InferStream(self._stream(self._infer_model.outputs, name))


class _FakeConfigured:
    def __init__(self, model):
        self.model, self.active, self.alive = model, False, True
        self.session = _fake.STATE.configures
        _fake.STATE.configures += 1
        _fake.STATE.open_configured += 1

    def close(self):
        if self.alive:
            self.alive = False
            _fake.STATE.open_configured -= 1


class ConfiguredInferModel:
    """Configured :class:`InferModel` that can be used to perform an asynchronous inference."""

    class Bindings:
        """Holds the input and output buffers of one frame."""

        class InferStream:
            def __init__(self, infer_stream, nms_info=None):
                self._infer_stream = infer_stream
                self._buffer = None
                self._nms_info = nms_info

            @staticmethod
            def _validate_c_contiguous(buffer):
                if not buffer.flags.c_contiguous:
                    raise HailoRTException("Buffer must be C_CONTIGUOUS")

            def set_buffer(self, buffer):
                self._validate_c_contiguous(buffer)  # the byte size is checked at run, as in HailoRT
                self._buffer = buffer

            def get_buffer(self, tf_format=False):
                buffer = self._buffer
                if tf_format is None or not self._nms_info:
                    return buffer
                classes, boxes = self._nms_info
                flat = buffer.reshape(-1)
                per_class, offset = [], 0
                for _ in range(classes):
                    n = int(flat[offset])
                    per_class.append(flat[offset + 1:offset + 1 + n * BBOX_PARAMS].reshape(n, BBOX_PARAMS).copy())
                    offset += 1 + boxes * BBOX_PARAMS
                if not tf_format:
                    return per_class
                out = numpy.zeros((classes, BBOX_PARAMS, boxes), numpy.float32)
                for c, dets in enumerate(per_class):
                    out[c, :, :len(dets)] = dets.T
                return out

        def __init__(self, bindings, input_names, output_names, nms_infos):
            self._bindings = bindings
            self._inputs = {}
            self._outputs = {}
            self._input_names = input_names
            self._output_names = output_names
            self._nms_infos = nms_infos

        def _get(self, store, names, name, nms_infos):
            if name == "" and len(names) == 1:
                name = names[0]
            if name not in store:
                if name not in names:
                    with ExceptionWrapper():
                        raise _raw("HAILO_NOT_FOUND")
                store[name] = self.InferStream(name, nms_infos.get(name))
            return store[name]

        def input(self, name=""):
            return self._get(self._inputs, self._input_names, name, {})

        def output(self, name=""):
            return self._get(self._outputs, self._output_names, name, self._nms_infos)

        def get(self):
            return self._bindings

    def __init__(self, configured_infer_model, infer_model):
        self._configured_infer_model = configured_infer_model
        self._input_names = infer_model.input_names
        self._output_names = infer_model.output_names
        self._infer_model = infer_model

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if self._configured_infer_model is not None:
            self._configured_infer_model.close()
        self._configured_infer_model = None

    def _scheduled(self):
        return self._configured_infer_model.model.vdevice.scheduler != HailoSchedulingAlgorithm.NONE

    def activate(self):
        with ExceptionWrapper():
            if self._scheduled():
                raise _raw("HAILO_INVALID_OPERATION")  # invalid when the scheduler is enabled
            self._configured_infer_model.active = True

    def deactivate(self):
        with ExceptionWrapper():
            if self._scheduled():
                raise _raw("HAILO_INVALID_OPERATION")
            self._configured_infer_model.active = False

    def create_bindings(self, input_buffers=None, output_buffers=None):
        nms = {s.s.name: s.s.nms for s in self._configured_infer_model.model.outputs if s.s.nms}
        bindings = self.Bindings(object(), self._input_names, self._output_names, nms)
        for n, b in (input_buffers or {}).items():
            bindings.input(n).set_buffer(b)
        for n, b in (output_buffers or {}).items():
            bindings.output(n).set_buffer(b)
        return bindings

    def wait_for_async_ready(self, timeout_ms=1000, frames_count=1):
        pass

    def run(self, bindings, timeout):
        with ExceptionWrapper():
            self._run(bindings, timeout)

    def shutdown(self):
        if self._configured_infer_model is not None:
            self._configured_infer_model.close()

    def _run(self, bindings, timeout):
        st, cim = _fake.STATE, self._configured_infer_model
        if st.hang_on_run is not None:
            st.hang_on_run.wait()  # the driver call never returns (released by the test)
        if st.timeout_on_run:
            raise _raw("HAILO_TIMEOUT")
        if st.vanish_after_runs is not None and st.runs >= st.vanish_after_runs:
            st.devices = []
            raise _raw("HAILO_DRIVER_OPERATION_FAILED")
        if not self._scheduled() and not cim.active:
            raise _raw("HAILO_STREAM_NOT_ACTIVATED")  # async_stream_base.cpp: write on an inactive stream
        model = cim.model
        for b in bindings:
            total = 0.0
            for s in model.inputs:
                buf = b.input(s.s.name)._buffer
                if buf is None or buf.nbytes != s.frame_bytes():
                    raise _raw("HAILO_INVALID_ARGUMENT")
                total += float(numpy.asarray(buf, numpy.float64).sum())
            for s in model.outputs:
                out = b.output(s.s.name)._buffer
                if out is None or out.nbytes != s.frame_bytes():
                    raise _raw("HAILO_INVALID_ARGUMENT")
            st.runs += 1
            computed = _computed(model, b, cim.session, st)
            for s in model.outputs:
                out = b.output(s.s.name)._buffer
                out.reshape(-1)[...] = computed[s.s.name] if computed else _synthetic(s, total, st)
            st.frames_seen.append(total)


def _computed(model, b, session, st):
    """Outputs of the group's stand-in ``compute`` (tests only), shifted by the injected session drift."""
    compute = getattr(model.group, "compute", None)
    if compute is None:
        return None
    feeds = {s.s.name: numpy.asarray(b.input(s.s.name)._buffer).reshape(s.s.shape) for s in model.inputs}
    outs = {}
    for s, val in ((s, numpy.asarray(compute(feeds)[s.s.name], numpy.float64).reshape(-1)) for s in model.outputs):
        if st.session_drift and session:
            direction = numpy.random.default_rng(1234).standard_normal(val.shape)
            val = val + st.session_drift * session * direction * numpy.linalg.norm(val) / numpy.sqrt(val.size)
        if s.type == FormatType.FLOAT32:
            outs[s.s.name] = val.astype(numpy.float32)
        else:
            q = numpy.rint(val / s.s.qp_scale + s.s.qp_zp)
            outs[s.s.name] = numpy.clip(q, 0, 255 if s.s.data_bytes == 1 else 65535).astype(
                numpy.uint8 if s.s.data_bytes == 1 else numpy.uint16)
    return outs


def _synthetic(stream, total, st):
    s = stream.s
    if s.nms:
        classes, boxes = s.nms
        flat = numpy.zeros(classes * (1 + BBOX_PARAMS * boxes), numpy.float32)
        for c in range(classes):
            off = c * (1 + BBOX_PARAMS * boxes)
            flat[off] = 1
            flat[off + 1:off + 1 + BBOX_PARAMS] = (0.1, 0.2, 0.3, 0.4, ((7 * total + 13 * c) % 256) / 255)
        return flat
    size = int(numpy.prod(s.shape))
    q = numpy.floor(7.0 * total + 13.0 * numpy.arange(size)) % 256
    if st.nondeterministic_every and st.runs % st.nondeterministic_every == 0:
        q[0] = (q[0] + 1) % 256
    if stream.type == FormatType.FLOAT32:
        if s.qp_scales:
            zps = numpy.resize(numpy.asarray(s.qp_zps), size)
            scales = numpy.resize(numpy.asarray(s.qp_scales), size)
            return ((q - zps) * scales).astype(numpy.float32)
        return ((q - s.qp_zp) * s.qp_scale).astype(numpy.float32)
    return q.astype(numpy.uint8 if s.data_bytes == 1 else numpy.uint16)

