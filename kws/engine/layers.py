"""Engine layers and the builders of the weighted ones (conv, pointwise, depthwise, pool, FC, softmax).

A Layer holds the tensors it reads and writes, the kernel (kind), its C parameter struct as ordered fields, the
constant arrays it needs, and its cost (MACs, weight bytes). Layouts (firmware_stub/engine/kws_nn.h states them
too): conv / pointwise / FC weights blocked by output-channel pairs and groups of 4 reduction indices, zero
padded, with the input offset folded into the bias (bias + in_offset * row sum: exact in int32); depthwise
weights widened to int16, group-major (each group of 4 channels with its taps in order), the channels of a
group in the order 0, 2, 1, 3 (SXTAB16's lanes).
The elementwise layers are built in kws.engine.elementwise; kws.engine.lower walks a graph with both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kws.engine import quant
from kws.engine.graph import ACTIVATION, PADDING, Op, Tensor
from kws.errors import KwsError
from kws.models import same_padding


@dataclass
class Layer:
    """One generated kernel call."""

    name: str
    op: str  # the TFLite op(s) it implements, for the comment
    kind: str  # conv | pointwise | depthwise | avgpool | fc | softmax | lut | mul | hard_swish
    inputs: list[int]
    output: int
    shape: tuple[int, ...]  # output shape (h, w, c) or (n,)
    fields: dict = field(default_factory=dict)  # C struct fields in order; arrays named by key of consts
    consts: dict = field(default_factory=dict)  # name -> (ctype, np.ndarray)
    macs: int = 0
    scratch_bytes: int = 0
    in_place: str = ""  # "", "elementwise", "pointwise", "depthwise", "global_pool": how it may alias its input
    delay: int = 0  # depthwise only, set by the planner

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for _, a in self.consts.values())


def act_range(op: Op, out: Tensor) -> tuple[int, int]:
    code = op.options.get("fusedActivationFunction", 0)
    if code not in ACTIVATION:
        raise KwsError(f"engine: fused activation code {code} of {op.name} is not supported")
    return quant.activation_range(ACTIVATION[code], out.scale, out.zero_point)


def _padding(op: Op, size: int, kernel: int, stride: int) -> int:
    if PADDING[op.options.get("padding", 1)] == "valid":
        return 0
    return same_padding(size, kernel, stride)[1]


def _hwc(t: Tensor) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise KwsError(f"engine: tensor {t.name!r} has shape {t.shape}; expected (1, h, w, c)")
    return t.shape[1], t.shape[2], t.shape[3]


def blocked_rows(w: np.ndarray, bias: np.ndarray, in_offset: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(out, k) int8 rows -> (blocked bytes, folded bias padded to even, k4) in kws_nn.h's blocked layout."""
    out_n, k = w.shape
    k4, n2 = -(-k // 4) * 4, -(-out_n // 2) * 2
    padded = np.zeros((n2, k4), np.int8)
    padded[:out_n, :k] = w
    blocked = padded.reshape(n2 // 2, 2, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(-1)
    folded = np.zeros(n2, np.int64)
    folded[:out_n] = bias.astype(np.int64) + in_offset * w.astype(np.int64).sum(axis=1)
    if np.abs(folded).max(initial=0) >= 2**31:
        raise KwsError("engine: a folded bias overflows int32")
    return blocked, folded.astype(np.int32), k4


def _round(name: str, shifts: list, bound: np.ndarray, zero_point: int) -> tuple[str, dict]:
    """The per-channel rounding + zero point of kws_nn_requantize_zp, when it is exact for the layer (every
    |accumulator| < 2^30 and 1 <= -shift <= 21): (field value, consts); ("0", {}) selects the exact path."""
    e = -np.asarray(shifts, np.int64)
    if not (np.all(e >= 1) and np.all(e <= 21) and float(np.max(bound, initial=0)) < 2**30):
        return "0", {}
    rounding = (np.int64(1) << (e - 1)) + (np.int64(zero_point) << e)
    return f"{name}_round", {f"{name}_round": ("int32_t", rounding.astype(np.int32))}


def _folded_3x3(taps: np.ndarray, bias: np.ndarray, in_offset: int, mults, shifts, zero_point: int):
    """kws_nn_depthwise_t.rq: per full group of 4 channels, the biases with in_offset * sum(taps) folded in, then
    (multiplier, rounding + zero point, e) per channel; None when an accumulator could reach 2^30."""
    folded = bias.astype(np.int64) + in_offset * taps.astype(np.int64).sum(axis=0)
    if float(np.max(np.abs(folded) + np.abs(taps.astype(np.int64)).sum(axis=0) * 128, initial=0)) >= 2**30:
        return None
    e = -np.asarray(shifts, np.int64)
    rounding = (np.int64(1) << (e - 1)) + (np.int64(zero_point) << e)
    groups = taps.shape[1] // 4
    per = np.stack([np.asarray(mults, np.int64), rounding, e], axis=1)[: 4 * groups].reshape(groups, 12)
    return np.concatenate([folded[: 4 * groups].reshape(groups, 4), per], axis=1).reshape(-1).astype(np.int32)


def _requant_consts(name: str, mults: list, shifts: list) -> dict:
    return {
        f"{name}_multiplier": ("int32_t", np.asarray(mults, np.int32)),
        f"{name}_shift": ("int8_t", np.asarray(shifts, np.int8)),
    }


def conv(name: str, op: Op, t: dict) -> Layer:
    x, w, b, y = (t[i] for i in (*op.inputs[:3], op.outputs[0]))
    (ih, iw, ic), (oh, ow, oc) = _hwc(x), _hwc(y)
    _, kh, kw, kc = w.shape
    if kc != ic or op.options.get("dilationHFactor", 1) != 1 or op.options.get("dilationWFactor", 1) != 1:
        raise KwsError(f"engine: {name}: grouped or dilated CONV_2D is not supported")
    if np.any(w.zero_points != 0):
        raise KwsError(f"engine: {name}: conv weights must be symmetric (zero point 0)")
    sh, sw = op.options.get("strideH", 1), op.options.get("strideW", 1)
    pt, pl = _padding(op, ih, kh, sh), _padding(op, iw, kw, sw)
    blocked, bias, k4 = blocked_rows(w.data.reshape(oc, -1), b.data, -x.zero_point)
    mults, shifts = quant.conv_multipliers(x.scale, w.scales, y.scale)
    lo, hi = act_range(op, y)
    pointwise = kh == kw == sh == sw == 1 and pt == pl == 0
    rows = w.data.reshape(oc, -1).astype(np.int64)
    bound = np.abs(bias[:oc].astype(np.int64)) + np.abs(rows).sum(axis=1) * 128  # raw int8 inputs, folded bias
    round_field, round_consts = _round(name, shifts, bound, y.zero_point)
    fields = dict(
        in_h=ih,
        in_w=iw,
        in_c=ic,
        out_h=oh,
        out_w=ow,
        out_c=oc,
        kernel_h=kh,
        kernel_w=kw,
        stride_h=sh,
        stride_w=sw,
        pad_top=pt,
        pad_left=pl,
        k=kh * kw * ic,
        k4=k4,
        in_zero_point=x.zero_point,
        out_zero_point=y.zero_point,
        act_min=lo,
        act_max=hi,
        reverse=int(pointwise and oc > ic),
        out_ring=oh,
        weights=f"{name}_weights",
        bias=f"{name}_bias",
        multiplier=f"{name}_multiplier",
        shift=f"{name}_shift",
        round=round_field,
    )
    consts = {f"{name}_weights": ("int8_t", blocked), f"{name}_bias": ("int32_t", bias)}
    consts.update(_requant_consts(name, mults, shifts))
    consts.update(round_consts)
    return Layer(
        name,
        "CONV_2D" + (" 1x1" if pointwise else f" {kh}x{kw}/{sh}x{sw}"),
        "pointwise" if pointwise else "conv",
        [x.index],
        y.index,
        (oh, ow, oc),
        fields,
        consts,
        macs=oh * ow * oc * kh * kw * ic,
        scratch_bytes=4 * k4,
        in_place="pointwise" if pointwise else "",
    )


def depthwise(name: str, op: Op, t: dict) -> Layer:
    x, w, b, y = (t[i] for i in (*op.inputs[:3], op.outputs[0]))
    (ih, iw, c), (oh, ow, oc) = _hwc(x), _hwc(y)
    _, kh, kw, wc = w.shape
    if wc != c or oc != c or op.options.get("depthMultiplier", 1) != 1:
        raise KwsError(f"engine: {name}: depthwise with a channel multiplier != 1 is not supported")
    if np.any(w.zero_points != 0):
        raise KwsError(f"engine: {name}: depthwise weights must be symmetric (zero point 0)")
    sh, sw = op.options.get("strideH", 1), op.options.get("strideW", 1)
    c4 = -(-c // 4) * 4
    taps = np.zeros((kh * kw, c4), np.int16)
    taps[:, :c] = w.data.reshape(kh * kw, c)
    # group-major: (group, tap, slot), the slots of a group in the channel order 0, 2, 1, 3
    taps = taps.reshape(kh * kw, c4 // 4, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2).reshape(-1)
    mults, shifts = quant.conv_multipliers(x.scale, w.scales, y.scale)
    lo, hi = act_range(op, y)
    bound = np.abs(b.data.astype(np.int64)) + np.abs(w.data.reshape(-1, c).astype(np.int64)).sum(0) * 255
    round_field, round_consts = _round(name, shifts, bound, y.zero_point)
    fields = dict(
        in_h=ih,
        in_w=iw,
        c=c,
        c4=c4,
        out_h=oh,
        out_w=ow,
        kernel_h=kh,
        kernel_w=kw,
        stride_h=sh,
        stride_w=sw,
        pad_top=_padding(op, ih, kh, sh),
        pad_left=_padding(op, iw, kw, sw),
        in_zero_point=x.zero_point,
        out_zero_point=y.zero_point,
        act_min=lo,
        act_max=hi,
        delay=0,
        in_ring=ih,
        weights=f"{name}_weights",
        bias=f"{name}_bias",
        multiplier=f"{name}_multiplier",
        shift=f"{name}_shift",
        round=round_field,
    )
    consts = {f"{name}_weights": ("int16_t", taps), f"{name}_bias": ("int32_t", b.data.astype(np.int32))}
    consts.update(_requant_consts(name, mults, shifts))
    consts.update(round_consts)
    rq = _folded_3x3(w.data.reshape(kh * kw, c), b.data, -x.zero_point, mults, shifts, y.zero_point)
    if kh == kw == 3 and round_field != "0" and rq is not None and c >= 4:
        fields.update(rq=f"{name}_rq", zpad=f"{name}_zpad")
        consts[f"{name}_rq"] = ("int32_t", rq)
        consts[f"{name}_zpad"] = ("int8_t", np.full(c4, x.zero_point, np.int8))
    else:
        fields.update(rq="0", zpad="0")
    return Layer(
        name,
        f"DEPTHWISE_CONV_2D {kh}x{kw}/{sh}x{sw}",
        "depthwise",
        [x.index],
        y.index,
        (oh, ow, c),
        fields,
        consts,
        macs=oh * ow * c * kh * kw,
        in_place="depthwise",
    )


def avgpool(name: str, op: Op, t: dict) -> Layer:
    x, y = t[op.inputs[0]], t[op.outputs[0]]
    (ih, iw, c), (oh, ow, _) = _hwc(x), _hwc(y)
    if x.scale != y.scale or x.zero_point != y.zero_point:
        raise KwsError(f"engine: {name}: AVERAGE_POOL_2D with rescaling is not supported")
    fh, fw = op.options["filterHeight"], op.options["filterWidth"]
    sh, sw = op.options["strideH"], op.options["strideW"]
    lo, hi = act_range(op, y)
    fields = dict(
        in_h=ih,
        in_w=iw,
        c=c,
        out_h=oh,
        out_w=ow,
        filter_h=fh,
        filter_w=fw,
        stride_h=sh,
        stride_w=sw,
        pad_top=_padding(op, ih, fh, sh),
        pad_left=_padding(op, iw, fw, sw),
        act_min=lo,
        act_max=hi,
    )
    glob = oh == ow == 1 and fields["pad_top"] == fields["pad_left"] == 0
    return Layer(
        name,
        "AVERAGE_POOL_2D",
        "avgpool",
        [x.index],
        y.index,
        (oh, ow, c),
        fields,
        {},
        in_place="global_pool" if glob else "",
    )


def fc(name: str, op: Op, t: dict) -> Layer:
    x, w, y = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
    out_n, k = w.shape
    if x.size != k or op.options.get("keepNumDims", False):
        raise KwsError(f"engine: {name}: FULLY_CONNECTED input of {x.size} values for {k}-wide weights")
    if np.any(w.zero_points != 0):
        raise KwsError(f"engine: {name}: FC weights must be symmetric (zero point 0)")
    bias = t[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] >= 0 else np.zeros(out_n, np.int32)
    blocked, folded, k4 = blocked_rows(w.data, bias, -x.zero_point)
    lo, hi = act_range(op, y)
    consts = {f"{name}_weights": ("int8_t", blocked), f"{name}_bias": ("int32_t", folded)}
    if len(w.scales) > 1:
        scales = np.asarray(quant.fc_effective_scales(x.scale, w.scales, y.scale), np.float64)
        consts[f"{name}_scale"] = ("double", scales)
        mult, shift, scale = "0", "0", f"{name}_scale"
    else:
        m, s = quant.quantize_multiplier(float(x.scale) * float(w.scales[0]) / float(y.scale))
        consts.update(_requant_consts(name, [m], [s]))
        mult, shift, scale = f"{name}_multiplier", f"{name}_shift", "0"
    fields = dict(
        in_n=k,
        k4=k4,
        out_n=out_n,
        out_zero_point=y.zero_point,
        act_min=lo,
        act_max=hi,
        weights=f"{name}_weights",
        bias=f"{name}_bias",
        scale=scale,
        multiplier=mult,
        shift=shift,
    )
    return Layer(
        name,
        "FULLY_CONNECTED",
        "fc",
        [x.index],
        y.index,
        (out_n,),
        fields,
        consts,
        macs=out_n * k,
        scratch_bytes=4 * k4,
    )


def softmax(name: str, op: Op, t: dict) -> Layer:
    x, y = t[op.inputs[0]], t[op.outputs[0]]
    if y.zero_point != -128 or abs(float(y.scale) - 1 / 256) > 1e-3 / 256:
        raise KwsError(f"engine: {name}: SOFTMAX output must be int8 with scale 1/256, zero point -128")
    mult, shift, diff_min = quant.softmax_params(op.options.get("beta", 1.0), x.scale)
    depth = x.shape[-1]
    fields = dict(rows=x.size // depth, depth=depth, input_multiplier=mult, input_left_shift=shift, diff_min=diff_min)
    return Layer(name, "SOFTMAX", "softmax", [x.index], y.index, (x.size,), fields, {}, in_place="elementwise")
