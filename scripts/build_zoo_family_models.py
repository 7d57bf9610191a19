"""Build small YOLOv8-like and YOLOX-like detectors (random weights) as ONNX, exported the way their upstream
projects export them, so the split's Model Zoo cut points can be tested on real exporter output.

Written for hailo-qa from the published architectures (module names follow the upstream export naming the Model
Zoo's end-node lists refer to: ``/model.22/cv2.0/cv2.0.2/Conv`` for YOLOv8, ``/head/reg_preds.0/Conv`` for YOLOX);
no upstream code is used. torch is needed only here::

    pip install torch==2.13.0
    python scripts/build_zoo_family_models.py fixtures/unseen

Writes ``yolov8_like.onnx`` (detect head decoded in the graph: DFL + boxes + class sigmoid, output [1, 4+nc, N],
as ``ultralytics`` exports) and ``yolox_like.onnx`` (Focus stem by strided slicing, decoupled head, output
[1, N, 5+nc] with objectness/class sigmoids, as YOLOX's ``export_onnx.py`` does without ``--decode_in_inference``).
Inputs are 1×3×128×128; weights are seeded.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

NC = 4  # classes
REG_MAX = 16  # YOLOv8 distribution bins


class ConvBnAct(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Detect8(nn.Module):
    """YOLOv8 detect head: per scale a box branch cv2 (→ 4·REG_MAX) and a class branch cv3 (→ NC), decoded."""

    def __init__(self, chs: tuple[int, ...], strides: tuple[int, ...], size: int) -> None:
        super().__init__()
        self.cv2 = nn.ModuleList(nn.Sequential(ConvBnAct(c, 16), ConvBnAct(16, 16), nn.Conv2d(16, 4 * REG_MAX, 1))
                                 for c in chs)
        self.cv3 = nn.ModuleList(nn.Sequential(ConvBnAct(c, 16), ConvBnAct(16, 16), nn.Conv2d(16, NC, 1))
                                 for c in chs)
        self.dfl = nn.Conv2d(REG_MAX, 1, 1, bias=False)
        self.dfl.weight.data[:] = torch.arange(REG_MAX, dtype=torch.float32).view(1, REG_MAX, 1, 1)
        self.dfl.requires_grad_(False)
        anchors, stride_t = [], []
        for s in strides:
            n = size // s
            ys, xs = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
            anchors.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], 0))
            stride_t.append(torch.full((1, n * n), float(s)))
        self.register_buffer("anchors", torch.cat(anchors, 1).unsqueeze(0))
        self.register_buffer("strides", torch.cat(stride_t, 1).unsqueeze(0))

    def forward(self, xs):
        outs = [torch.cat([self.cv2[i](x), self.cv3[i](x)], 1) for i, x in enumerate(xs)]
        cat = torch.cat([o.view(1, 4 * REG_MAX + NC, -1) for o in outs], 2)
        box, cls = cat.split((4 * REG_MAX, NC), 1)
        b = box.view(1, 4, REG_MAX, -1).transpose(2, 1).softmax(1)
        dist = self.dfl(b).view(1, 4, -1)
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = self.anchors - lt, self.anchors + rb
        xywh = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1) * self.strides
        return torch.cat([xywh, cls.sigmoid()], 1)


class YoloV8Like(nn.Module):
    def __init__(self, size: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnAct(3, 8, 3, 2), ConvBnAct(8, 16, 3, 2), ConvBnAct(16, 16),
                                   ConvBnAct(16, 32, 3, 2), ConvBnAct(32, 32), ConvBnAct(32, 48, 3, 2),
                                   ConvBnAct(48, 64, 3, 2)]
        layers += [nn.Identity() for _ in range(22 - len(layers))]
        layers.append(Detect8((32, 48, 64), (8, 16, 32), size))
        self.model = nn.ModuleList(layers)

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.model[:22]):
            x = m(x)
            if i in (4, 5, 6):
                feats.append(x)
        return self.model[22](feats)


class Focus(nn.Module):
    """Space-to-depth by strided slicing, then a conv (YOLOX/YOLOv5 ≤ v5 stem)."""

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.conv = ConvBnAct(c1 * 4, c2)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class YoloXHead(nn.Module):
    def __init__(self, chs: tuple[int, ...], width: int = 16) -> None:
        super().__init__()
        self.stems = nn.ModuleList(ConvBnAct(c, width, 1) for c in chs)
        self.cls_convs = nn.ModuleList(nn.Sequential(ConvBnAct(width, width), ConvBnAct(width, width)) for _ in chs)
        self.reg_convs = nn.ModuleList(nn.Sequential(ConvBnAct(width, width), ConvBnAct(width, width)) for _ in chs)
        self.cls_preds = nn.ModuleList(nn.Conv2d(width, NC, 1) for _ in chs)
        self.reg_preds = nn.ModuleList(nn.Conv2d(width, 4, 1) for _ in chs)
        self.obj_preds = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in chs)

    def forward(self, xs):
        outs = []
        for k, x in enumerate(xs):
            x = self.stems[k](x)
            c, r = self.cls_convs[k](x), self.reg_convs[k](x)
            out = torch.cat([self.reg_preds[k](r), self.obj_preds[k](r).sigmoid(), self.cls_preds[k](c).sigmoid()], 1)
            outs.append(out.flatten(start_dim=2))
        return torch.cat(outs, 2).permute(0, 2, 1)


class YoloXLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.ModuleList([Focus(3, 16), ConvBnAct(16, 32, 3, 2), ConvBnAct(32, 32, 3, 2),
                                       ConvBnAct(32, 48, 3, 2), ConvBnAct(48, 64, 3, 2)])
        self.head = YoloXHead((32, 48, 64))

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.backbone):
            x = m(x)
            if i >= 2:
                feats.append(x)
        return self.head(feats)


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2, generator=g)
            mod.running_var.uniform_(0.5, 1.5, generator=g)
            mod.weight.data.uniform_(0.5, 1.5, generator=g)
            mod.bias.data.uniform_(-0.2, 0.2, generator=g)
    return model.eval()


def export(model: nn.Module, path: Path, output: str) -> None:
    torch.onnx.export(model, (torch.rand(1, 3, 128, 128),), str(path), input_names=["images"],
                      output_names=[output], opset_version=13, dynamo=False)


def main(out: str) -> None:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    export(_randomize(YoloV8Like(), 1), d / "yolov8_like.onnx", "output0")
    torch.manual_seed(0)
    export(_randomize(YoloXLike(), 2), d / "yolox_like.onnx", "output")
    for f in ("yolov8_like.onnx", "yolox_like.onnx"):
        print(d / f, (d / f).stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/unseen")
