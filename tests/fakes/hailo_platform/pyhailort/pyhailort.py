"""Contract fake of ``hailo_platform.pyhailort.pyhailort`` (HailoRT 4.23): the subset hailo-qa calls.

Names and signatures follow hailo-ai/hailort@hailo8. Outputs are SYNTHETIC: q = floor(7*sum(inputs) + 13*i) mod 256
per output element i, de-quantized with the stream's (qp_scale, qp_zp) when the format is FLOAT32.
"""
from __future__ import annotations

import time
from enum import Enum, IntEnum

import numpy
from hailo_platform import _fake


class HailoRTException(Exception):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class HailoRTNotFoundException(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class HailoRTPCIeDriverException(HailoRTException):
    pass


class FormatType(Enum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class FormatOrder(Enum):
    NHWC = 1
    NC = 2


class HailoSchedulingAlgorithm(Enum):
    NONE = 0
    ROUND_ROBIN = 1


class DeviceArchitectureTypes(IntEnum):
    HAILO8_A0 = 0
    HAILO8 = 1
    HAILO8L = 2
    HAILO15H = 3

    def __str__(self):
        return self.name


class _FirmwareVersion:
    def __init__(self, text):
        self._text = text

    def __str__(self):
        return self._text


class BoardInformation:
    def __init__(self, d):
        self.firmware_version = _FirmwareVersion(d.fw)
        self.board_name = d.board
        self.device_architecture = DeviceArchitectureTypes[d.arch]
        self.serial_number = d.serial
        self.part_number = b""
        self.product_name = d.product


class _Control:
    def __init__(self, d):
        self._d = d

    def identify(self):
        return BoardInformation(self._d)


def _find_device(device_id):
    for d in _fake.STATE.devices:
        if device_id is None or d.device_id == device_id:
            return d
    raise HailoRTNotFoundException("Item not found. See hailort.log for more information")


class Device:
    def __init__(self, device_id=None):
        self._d = _find_device(device_id)
        self.device_id = self._d.device_id
        self.control = _Control(self._d)
        _fake.STATE.open_devices += 1
        self._released = False

    @staticmethod
    def scan():
        if _fake.STATE.scan_error is not None:
            raise _fake.STATE.scan_error
        return [d.device_id for d in _fake.STATE.devices]

    def release(self):
        if not self._released:
            self._released = True
            _fake.STATE.open_devices -= 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.release()
        return False


class QuantInfo:
    def __init__(self, s):
        self.qp_zp, self.qp_scale = float(s.qp_zp), float(s.qp_scale)
        self.limvals_min = (0 - s.qp_zp) * s.qp_scale
        self.limvals_max = (255 - s.qp_zp) * s.qp_scale


class VStreamInfo:
    def __init__(self, s, net):
        self.name, self.shape, self.network_name = s.name, tuple(s.shape), net.name
        self.quant_info = QuantInfo(s)


def _net(hef_source):
    net = _fake.STATE.hefs.get(str(hef_source))
    if net is None:
        raise HailoRTInvalidHEFException("Invalid HEF. See hailort.log for more information")
    return net


class HEF:
    def __init__(self, hef_source):
        self._net = _net(hef_source)

    def get_input_vstream_infos(self, network_name=None):
        return [VStreamInfo(s, self._net) for s in self._net.inputs]

    def get_output_vstream_infos(self, network_name=None):
        return [VStreamInfo(s, self._net) for s in self._net.outputs]

    def get_network_group_names(self):
        return [self._net.name]


class _Params:
    def __init__(self):
        self.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
        self.group_id = ""


class _Format:
    def __init__(self):
        self.type = FormatType.AUTO
        self.order = FormatOrder.NHWC


class InferStream:
    def __init__(self, s):
        self._s = s
        self.name, self.shape = s.name, tuple(s.shape)
        self.format = _Format()
        self.quant_infos = [QuantInfo(s)]

    def set_format_type(self, type):
        self.format.type = type


class InferModel:
    def __init__(self, net, vdevice):
        self._net, self._vdevice = net, vdevice
        self._in = {s.name: InferStream(s) for s in net.inputs}
        self._out = {s.name: InferStream(s) for s in net.outputs}
        self.batch_size = 0

    @property
    def input_names(self):
        return list(self._in)

    @property
    def output_names(self):
        return list(self._out)

    @property
    def inputs(self):
        return list(self._in.values())

    @property
    def outputs(self):
        return list(self._out.values())

    def input(self, name=""):
        return self._in[name or self.input_names[0]]

    def output(self, name=""):
        return self._out[name or self.output_names[0]]

    def set_batch_size(self, batch_size):
        self.batch_size = batch_size

    def configure(self):
        return ConfiguredInferModel(self)


class _Buffer:
    def __init__(self, stream, buf=None):
        self._stream, self._buf = stream, buf

    def set_buffer(self, buffer):
        if not buffer.flags["C_CONTIGUOUS"] or tuple(buffer.shape) != self._stream.shape:
            raise HailoRTInvalidArgumentException("Invalid argument. See hailort.log for more information")
        self._buf = buffer

    def get_buffer(self, tf_format=None):
        return self._buf


class Bindings:
    def __init__(self, model, output_buffers):
        self._in = {n: _Buffer(s) for n, s in model._in.items()}
        self._out = {n: _Buffer(s, (output_buffers or {}).get(n)) for n, s in model._out.items()}

    def input(self, name=""):
        return self._in[name or next(iter(self._in))]

    def output(self, name=""):
        return self._out[name or next(iter(self._out))]


class ConfiguredInferModel:
    def __init__(self, model):
        self._model = model
        self._open = True
        _fake.STATE.open_configured += 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.shutdown()
        return False

    def shutdown(self):
        if self._open:
            self._open = False
            _fake.STATE.open_configured -= 1

    def create_bindings(self, input_buffers=None, output_buffers=None):
        return Bindings(self._model, output_buffers)

    def run(self, bindings, timeout):
        st = _fake.STATE
        if st.timeout_on_run:
            time.sleep(0)
            raise HailoRTTimeout("Received a timeout - hailort has failed because a timeout had occurred")
        if st.vanish_after_runs is not None and st.runs >= st.vanish_after_runs:
            st.devices = []
            raise HailoRTPCIeDriverException("PCIe driver failure. run 'dmesg | grep hailo' for more information")
        for b in bindings:
            st.runs += 1
            total = 0.0
            for n, buf in b._in.items():
                if buf._buf is None:
                    raise HailoRTInvalidArgumentException("Invalid argument. See hailort.log for more information")
                total += float(numpy.asarray(buf._buf, numpy.float64).sum())
            for n, stream in self._model._out.items():
                size = int(numpy.prod(stream.shape))
                q = numpy.floor(7.0 * total + 13.0 * numpy.arange(size)) % 256
                if st.nondeterministic_every and st.runs % st.nondeterministic_every == 0:
                    q[0] = (q[0] + 1) % 256
                q = q.reshape(stream.shape)
                if stream.format.type == FormatType.FLOAT32:
                    s = stream._s
                    val = ((q - s.qp_zp) * s.qp_scale).astype(numpy.float32)
                else:
                    val = q.astype(numpy.uint8)
                out = b._out[n]
                if out._buf is None:
                    out._buf = val
                else:
                    out._buf[...] = val


class VDevice:
    def __init__(self, params=None, *, device_ids=None):
        st = _fake.STATE
        if not st.devices:
            raise HailoRTNotFoundException("Item not found. See hailort.log for more information")
        ids = device_ids or [st.devices[0].device_id]
        self._devices = [_find_device(i) for i in ids]
        self._released = False
        st.open_vdevices += 1

    @staticmethod
    def create_params():
        return _Params()

    def create_infer_model(self, hef_source, name=""):
        return InferModel(_net(hef_source), self)

    def get_physical_devices(self):
        # borrowed from the VDevice (as in HailoRT): not opened, not to be released separately
        out = []
        for d in self._devices:
            dev = Device.__new__(Device)
            dev._d, dev.device_id, dev.control, dev._released = d, d.device_id, _Control(d), True
            out.append(dev)
        return out

    def release(self):
        if not self._released:
            self._released = True
            _fake.STATE.open_vdevices -= 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.release()
        return False
