"""Build small detectors of every Model Zoo family in ``hailo_qa/graph/zoo_cuts.toml`` (random weights) as ONNX,
exported the way their upstream projects export them, so the split's Model Zoo cut points can be tested on real
exporter output.

Written for hailo-qa from the published architectures (module names follow the upstream export naming the Model
Zoo's end-node lists refer to: ``/model.22/cv2.0/cv2.0.2/Conv`` for YOLOv8, ``/head/reg_preds.0/Conv`` for YOLOX,
``/model.24/m.0/Conv`` for YOLOv5, ``/head/gfl_cls.0/Conv`` for NanoDet-Plus); no upstream code is used. torch is
needed only here::

    pip install torch==2.13.0
    python scripts/build_zoo_family_models.py fixtures/unseen

Writes (inputs 1×3×128×128, weights seeded):

- ``yolov8_like.onnx``: detect head decoded in the graph (DFL + boxes + class sigmoid), output [1, 4+nc, N], as
  ``ultralytics`` exports;
- ``yolox_like.onnx``: Focus stem by strided slicing, decoupled head, output [1, N, 5+nc] with objectness/class
  sigmoids, as YOLOX's ``export_onnx.py`` does without ``--decode_in_inference``;
- ``yolox_oldnames_like.onnx``: the same YOLOX-like model with node and tensor names renumbered as torch < 1.13
  wrote them (``Conv_197``, ``Sigmoid_199``: the names in the Zoo's ``yolox_s_leaky.yaml``), recognised by structure;
- ``yolov5_like.onnx``: 6×6 stride-2 stem, C3-style blocks, SPPF, PAN neck, ``Detect`` at ``model.24`` decoded in
  the graph (rank-5 view/permute, sigmoid, grid and anchor decode), output ``output0`` [1, N, 5+nc], as
  ``yolov5/export.py`` (v7.0) exports;
- ``scrfd_like.onnx``: SCRFD-500M-style face detector with keypoints: per stride a score (2 anchors), bbox (2×4)
  and kps (2×10) convolution, each ``permute(2, 3, 0, 1).reshape(-1, C)`` (score sigmoided), outputs ``score_8`` …
  ``kps_32`` as ``tools/scrfd2onnx.py`` names them; node and tensor names renumbered ``Conv_12`` / ``"345"`` the way
  torch < 1.13 wrote them (the Model Zoo's ``scrfd_500m.yaml`` end nodes are such names: ``Conv_99`` …);
- ``nanodet_like.onnx``: NanoDet-Plus-style head: per level depthwise-separable convs and one ``gfl_cls`` conv with
  ``nc + 4·(reg_max+1)`` channels, split, class sigmoid, concatenated, output ``output`` [1, N, nc+32], as
  ``nanodet``'s ``_forward_onnx`` exports;
- ``nanodet_v0_like.onnx``: NanoDet v0.x (pre-Plus) head as RangiLyu/nanodet v0.4's ``tools/export_onnx.py``
  exports it: per level one ``gfl_cls`` conv split into class and box maps, ``cls_pred_stride_N`` (sigmoid,
  [1, H·W, nc]) and ``dis_pred_stride_N`` ([1, H·W, 32]), opset 11, weights as graph inputs, input ``input.1``,
  ``Conv_12``-style names (torch < 1.13);
- ``detr_like.onnx``: DETR-style (conv backbone, one encoder and one decoder layer as facebookresearch/detr lays
  them out, 10 learned queries), outputs ``pred_logits`` [1, 10, nc+1] and ``pred_boxes`` [1, 10, 4] (sigmoid) as
  DETR's export names them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

NC = 4  # classes
REG_MAX = 16  # YOLOv8 distribution bins


class ConvBnAct(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, p: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
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


class YoloV5Detect(nn.Module):
    """YOLOv5 Detect (export path): per scale a conv to na·(5+nc), view to rank 5, sigmoid, grid/anchor decode."""

    ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))

    def __init__(self, chs: tuple[int, ...], strides: tuple[int, ...], size: int) -> None:
        super().__init__()
        self.na, self.no = 3, 5 + NC
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in chs)
        self.strides = strides
        for i, s in enumerate(strides):
            n = size // s
            ys, xs = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32),
                                    indexing="ij")
            grid = torch.stack((xs, ys), 2).expand(1, self.na, n, n, 2) - 0.5
            anchors = torch.tensor(self.ANCHORS[i], dtype=torch.float32).view(1, self.na, 1, 1, 2)
            self.register_buffer(f"grid{i}", grid.contiguous())
            self.register_buffer(f"anchor_grid{i}", anchors.expand(1, self.na, n, n, 2).contiguous())

    def forward(self, xs):
        z = []
        for i, x in enumerate(xs):
            x = self.m[i](x)
            _, _, ny, nx = x.shape
            x = x.view(1, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            xy, wh, conf = x.sigmoid().split((2, 2, NC + 1), 4)
            xy = (xy * 2 + getattr(self, f"grid{i}")) * self.strides[i]
            wh = (wh * 2) ** 2 * getattr(self, f"anchor_grid{i}")
            z.append(torch.cat((xy, wh, conf), 4).view(1, self.na * nx * ny, self.no))
        return torch.cat(z, 1)


class C3Like(nn.Module):
    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.cv1, self.cv2 = ConvBnAct(c1, c2 // 2, 1), ConvBnAct(c1, c2 // 2, 1)
        self.m = ConvBnAct(c2 // 2, c2 // 2)
        self.cv3 = ConvBnAct(c2, c2, 1)

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)) + self.cv1(x), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.cv1, self.cv2 = ConvBnAct(c1, c1 // 2, 1), ConvBnAct(c1 * 2, c2, 1)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class YoloV5Like(nn.Module):
    """Backbone (model.0-9), PAN neck (model.10-23) and Detect (model.24), indexed as yolov5s.yaml lays them out."""

    def __init__(self, size: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnAct(3, 8, 6, 2, 2), ConvBnAct(8, 16, 3, 2), C3Like(16, 16),
                                   ConvBnAct(16, 32, 3, 2), C3Like(32, 32), ConvBnAct(32, 48, 3, 2), C3Like(48, 48),
                                   ConvBnAct(48, 64, 3, 2), C3Like(64, 64), SPPF(64, 64),
                                   ConvBnAct(64, 48, 1), nn.Upsample(scale_factor=2.0, mode="nearest"),
                                   nn.Identity(), C3Like(96, 48),
                                   ConvBnAct(48, 32, 1), nn.Upsample(scale_factor=2.0, mode="nearest"),
                                   nn.Identity(), C3Like(64, 32),
                                   ConvBnAct(32, 32, 3, 2), nn.Identity(), C3Like(64, 48),
                                   ConvBnAct(48, 48, 3, 2), nn.Identity(), C3Like(96, 64)]
        layers.append(YoloV5Detect((32, 48, 64), (8, 16, 32), size))
        self.model = nn.ModuleList(layers)

    def forward(self, x):
        m = self.model
        x = m[0](x)
        x = m[1](x)
        p3 = m[4](m[3](m[2](x)))
        p4 = m[6](m[5](p3))
        p5 = m[9](m[8](m[7](p4)))
        h10 = m[10](p5)
        h13 = m[13](torch.cat((m[11](h10), p4), 1))
        h14 = m[14](h13)
        out3 = m[17](torch.cat((m[15](h14), p3), 1))
        out4 = m[20](torch.cat((m[18](out3), h14), 1))
        out5 = m[23](torch.cat((m[21](out4), h10), 1))
        return m[24]([out3, out4, out5])


class ScrfdLike(nn.Module):
    """SCRFD-500M-like: small backbone, per stride two stacked convs, score/bbox/kps convs (2 anchors)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.ModuleList([ConvBnAct(3, 8, 3, 2), ConvBnAct(8, 16, 3, 2), ConvBnAct(16, 16, 3, 2),
                                       ConvBnAct(16, 24, 3, 2), ConvBnAct(24, 32, 3, 2)])
        self.lateral = nn.ModuleList(nn.Conv2d(c, 16, 1) for c in (16, 24, 32))
        self.cls_convs = nn.ModuleList(nn.Sequential(ConvBnAct(16, 16), ConvBnAct(16, 16)) for _ in range(3))
        self.stride_cls = nn.ModuleList(nn.Conv2d(16, 2, 3, 1, 1) for _ in range(3))
        self.stride_reg = nn.ModuleList(nn.Conv2d(16, 2 * 4, 3, 1, 1) for _ in range(3))
        self.stride_kps = nn.ModuleList(nn.Conv2d(16, 2 * 10, 3, 1, 1) for _ in range(3))

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.backbone):
            x = m(x)
            if i >= 2:
                feats.append(x)
        lat = [l(f) for l, f in zip(self.lateral, feats)]
        for i in (1, 0):  # top-down FPN
            lat[i] = lat[i] + nn.functional.interpolate(lat[i + 1], scale_factor=2.0, mode="nearest")
        scores, boxes, kpss = [], [], []
        for i, f in enumerate(lat):
            f = self.cls_convs[i](f)
            scores.append(self.stride_cls[i](f).permute(2, 3, 0, 1).reshape(-1, 1).sigmoid())
            boxes.append(self.stride_reg[i](f).permute(2, 3, 0, 1).reshape(-1, 4))
            kpss.append(self.stride_kps[i](f).permute(2, 3, 0, 1).reshape(-1, 10))
        return (*scores, *boxes, *kpss)


class DwPw(nn.Module):
    """Depthwise-separable conv module (NanoDet head: DW k×k + BN + LeakyReLU, PW + BN + LeakyReLU; k = 5 in
    NanoDet-Plus, 3 in NanoDet v0.x)."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c1, c1, k, 1, k // 2, groups=c1, bias=False)
        self.dwnorm = nn.BatchNorm2d(c1)
        self.pointwise = nn.Conv2d(c1, c2, 1, bias=False)
        self.pwnorm = nn.BatchNorm2d(c2)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x):
        return self.act(self.pwnorm(self.pointwise(self.act(self.dwnorm(self.depthwise(x))))))


class NanoDetPlusHead(nn.Module):
    REG_MAX = 7

    def __init__(self, levels: int = 3, ch: int = 16) -> None:
        super().__init__()
        self.cls_convs = nn.ModuleList(nn.Sequential(DwPw(ch, ch), DwPw(ch, ch)) for _ in range(levels))
        self.gfl_cls = nn.ModuleList(nn.Conv2d(ch, NC + 4 * (self.REG_MAX + 1), 1) for _ in range(levels))

    def forward(self, feats):
        outs = []
        for feat, convs, gfl in zip(feats, self.cls_convs, self.gfl_cls):
            out = gfl(convs(feat))
            cls_pred, reg_pred = out.split([NC, 4 * (self.REG_MAX + 1)], dim=1)
            outs.append(torch.cat([cls_pred.sigmoid(), reg_pred], dim=1).flatten(start_dim=2))
        return torch.cat(outs, dim=2).permute(0, 2, 1)


def _nanodet_backbone() -> nn.ModuleList:
    return nn.ModuleList([ConvBnAct(3, 8, 3, 2), ConvBnAct(8, 16, 3, 2), ConvBnAct(16, 24, 3, 2),
                          ConvBnAct(24, 32, 3, 2), ConvBnAct(32, 48, 3, 2)])


def _laterals(backbone: nn.ModuleList, laterals: nn.ModuleList, x):
    """The backbone's stride-8/16/32 maps through 1×1 lateral convs."""
    feats = []
    for i, m in enumerate(backbone):
        x = m(x)
        if i >= 2:
            feats.append(x)
    return [l(f) for l, f in zip(laterals, feats)]


class NanoDetPlusLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = _nanodet_backbone()
        self.fpn = nn.ModuleList(nn.Conv2d(c, 16, 1) for c in (24, 32, 48))
        self.head = NanoDetPlusHead()

    def forward(self, x):
        lat = _laterals(self.backbone, self.fpn, x)
        for i in (1, 0):  # GhostPAN-like top-down path (upsample + add)
            lat[i] = lat[i] + nn.functional.interpolate(lat[i + 1], scale_factor=2.0, mode="bilinear",
                                                        align_corners=False)
        return self.head(lat)


class NanoDetV0Head(nn.Module):
    """NanoDet v0.x head (nanodet-m: share_cls_reg, reg_max 7): per level two depthwise-separable 3×3 convs and one
    ``gfl_cls`` conv with ``nc + 4·(reg_max+1)`` channels, split; in ONNX export the class part is sigmoided and
    both are reshaped to [1, H·W, C]: ``sigmoid(cls).reshape(1, nc, -1).permute(0, 2, 1)`` and
    ``bbox.reshape(1, 4·(reg_max+1), -1).permute(0, 2, 1)``. Returns every level's class output, then every level's
    distance output (``multi_apply``'s order)."""

    REG_MAX = 7

    def __init__(self, levels: int = 3, ch: int = 16) -> None:
        super().__init__()
        self.cls_convs = nn.ModuleList(nn.Sequential(DwPw(ch, ch, 3), DwPw(ch, ch, 3)) for _ in range(levels))
        self.gfl_cls = nn.ModuleList(nn.Conv2d(ch, NC + 4 * (self.REG_MAX + 1), 1) for _ in range(levels))

    def forward(self, feats):
        cls_scores, bbox_preds = [], []
        for feat, convs, gfl in zip(feats, self.cls_convs, self.gfl_cls):
            cls_score, bbox_pred = torch.split(gfl(convs(feat)), [NC, 4 * (self.REG_MAX + 1)], dim=1)
            cls_scores.append(torch.sigmoid(cls_score).reshape(1, NC, -1).permute(0, 2, 1))
            bbox_preds.append(bbox_pred.reshape(1, 4 * (self.REG_MAX + 1), -1).permute(0, 2, 1))
        return (*cls_scores, *bbox_preds)


class NanoDetV0Like(nn.Module):
    """NanoDet v0.x (pre-Plus): small backbone, PAN (1×1 laterals, bilinear top-down ×2 and bottom-up ×0.5 paths,
    as v0.4's ``fpn/pan.py``), the v0.x head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _nanodet_backbone()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, 16, 1) for c in (24, 32, 48))
        self.head = NanoDetV0Head()

    def forward(self, x):
        lat = _laterals(self.backbone, self.lateral_convs, x)
        for i in (2, 1):  # top-down
            lat[i - 1] = lat[i - 1] + nn.functional.interpolate(lat[i], scale_factor=2.0, mode="bilinear")
        for i in (0, 1):  # bottom-up
            lat[i + 1] = lat[i + 1] + nn.functional.interpolate(lat[i], scale_factor=0.5, mode="bilinear")
        return self.head(lat)


class DetrEncoderLayer(nn.Module):
    """DETR's post-norm encoder layer: positions added to queries and keys, not values; sequence-first (HW, B, C)."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=0.0)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, src, pos):
        q = k = src + pos
        src = self.norm1(src + self.self_attn(q, k, value=src)[0])
        return self.norm2(src + self.linear2(torch.relu(self.linear1(src))))


class DetrDecoderLayer(nn.Module):
    """DETR's post-norm decoder layer: query self-attention, cross-attention with the positions on the memory keys
    only (``key=memory + pos, value=memory``), feed-forward; LayerNorm after each."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=0.0)
        self.multihead_attn = nn.MultiheadAttention(d, heads, dropout=0.0)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, tgt, memory, pos, query_pos):
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, k, value=tgt)[0])
        tgt = self.norm2(tgt + self.multihead_attn(query=tgt + query_pos, key=memory + pos, value=memory)[0])
        return self.norm3(tgt + self.linear2(torch.relu(self.linear1(tgt))))


class DetrTransformer(nn.Module):
    def __init__(self, d: int, heads: int = 2, ff: int = 64) -> None:
        super().__init__()
        self.encoder = nn.ModuleList([DetrEncoderLayer(d, heads, ff)])
        self.decoder = nn.ModuleList([DetrDecoderLayer(d, heads, ff)])
        self.decoder_norm = nn.LayerNorm(d)

    def forward(self, src, pos, query_embed):
        memory = src.flatten(2).permute(2, 0, 1)  # (HW, B, C)
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = query_embed.unsqueeze(1)
        tgt = torch.zeros_like(query_pos)
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos, query_pos)
        return self.decoder_norm(tgt).transpose(0, 1)  # (B, queries, C)


class DetrMLP(nn.Module):
    def __init__(self, d: int, out: int, n: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(d, d if i < n - 1 else out) for i in range(n))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = torch.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class DetrLike(nn.Module):
    """DETR-style: conv backbone (stride 16), 1×1 projection, one encoder and one decoder layer laid out as
    facebookresearch/detr's transformer (sequence-first, positions on queries/keys only, post-norm LayerNorms, a
    final decoder norm) over learned queries; class logits (nc + 1, no-object) and sigmoid boxes from a 3-layer MLP,
    outputs ``pred_logits`` / ``pred_boxes`` as DETR exports (end nodes ``/class_embed/Add`` and ``/Sigmoid``, the
    names of the Zoo's ``detr_resnet_v1_50.yaml``)."""

    def __init__(self, d: int = 32, queries: int = 10) -> None:
        super().__init__()
        self.backbone = nn.Sequential(ConvBnAct(3, 16, 3, 2), ConvBnAct(16, 32, 3, 2), ConvBnAct(32, 32, 3, 2),
                                      ConvBnAct(32, 48, 3, 2))
        self.input_proj = nn.Conv2d(48, d, 1)
        self.query_embed = nn.Embedding(queries, d)
        self.pos = nn.Parameter(torch.randn(64, 1, d) * 0.1)  # DETR's sine positions are constant for a fixed size
        self.transformer = DetrTransformer(d)
        self.class_embed = nn.Linear(d, NC + 1)
        self.bbox_embed = DetrMLP(d, 4)

    def forward(self, x):
        hs = self.transformer(self.input_proj(self.backbone(x)), self.pos, self.query_embed.weight)
        return self.class_embed(hs), self.bbox_embed(hs).sigmoid()


def _old_exporter_names(path: Path) -> None:
    """Rename nodes ``<Op>_<k>`` and internal tensors to numbers, as torch < 1.13's exporter wrote them."""
    import onnx

    m = onnx.load(str(path))
    g = m.graph
    keep = {i.name for i in g.input} | {o.name for o in g.output} | {t.name for t in g.initializer}
    ren: dict[str, str] = {}
    k = 0
    for n in g.node:
        for o in n.output:
            if o and o not in keep:
                ren[o] = str(100 + k)
                k += 1
    for idx, n in enumerate(g.node):
        n.name = f"{n.op_type}_{idx}"
        n.input[:] = [ren.get(i, i) for i in n.input]
        n.output[:] = [ren.get(o, o) for o in n.output]
    for vi in g.value_info:
        vi.name = ren.get(vi.name, vi.name)
    onnx.save(m, str(path))


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d) and mod.weight.requires_grad:  # He init: the signal survives the depth, so the
            fan_in = mod.weight[0].numel()  # heads depend on the image (torch's default init shrinks it ×0.6 a layer)
            mod.weight.data.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=g)
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2, generator=g)
            mod.running_var.uniform_(0.5, 1.5, generator=g)
            mod.weight.data.uniform_(0.5, 1.5, generator=g)
            mod.bias.data.uniform_(-0.2, 0.2, generator=g)
    return model.eval()


def export(model: nn.Module, path: Path, output: str | list[str], name: str = "images", opset: int = 13) -> None:
    torch.onnx.export(model, (torch.rand(1, 3, 128, 128),), str(path), input_names=[name],
                      output_names=[output] if isinstance(output, str) else output, opset_version=opset, dynamo=False)


def main(out: str) -> None:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    export(_randomize(YoloV8Like(), 1), d / "yolov8_like.onnx", "output0")
    torch.manual_seed(0)
    export(_randomize(YoloXLike(), 2), d / "yolox_like.onnx", "output")
    torch.manual_seed(0)
    export(_randomize(YoloXLike(), 2), d / "yolox_oldnames_like.onnx", "output")
    _old_exporter_names(d / "yolox_oldnames_like.onnx")
    torch.manual_seed(0)
    export(_randomize(YoloV5Like(), 3), d / "yolov5_like.onnx", "output0")
    torch.manual_seed(0)
    export(_randomize(ScrfdLike(), 4), d / "scrfd_like.onnx",
           [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)], name="input.1")
    _old_exporter_names(d / "scrfd_like.onnx")
    torch.manual_seed(0)
    export(_randomize(NanoDetPlusLike(), 5), d / "nanodet_like.onnx", "output", name="data")
    torch.manual_seed(0)
    nanodet_v0_outputs = [f"{k}_pred_stride_{s}" for k in ("cls", "dis") for s in (8, 16, 32)]
    torch.onnx.export(_randomize(NanoDetV0Like(), 7), (torch.rand(1, 3, 128, 128),), str(d / "nanodet_v0_like.onnx"),
                      output_names=nanodet_v0_outputs, opset_version=11, keep_initializers_as_inputs=True,
                      dynamo=False)  # as v0.4's tools/export_onnx.py: opset 11, weights listed as inputs, input.1
    _old_exporter_names(d / "nanodet_v0_like.onnx")
    torch.manual_seed(0)
    export(_randomize(DetrLike(), 6), d / "detr_like.onnx", ["pred_logits", "pred_boxes"], name="samples",
           opset=14)  # attention needs opset 14
    for f in ("yolov8_like.onnx", "yolox_like.onnx", "yolox_oldnames_like.onnx", "yolov5_like.onnx", "scrfd_like.onnx",
              "nanodet_like.onnx", "nanodet_v0_like.onnx", "detr_like.onnx"):
        print(d / f, (d / f).stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/unseen")
