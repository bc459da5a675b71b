"""Cost model of a DS-CNN computed from its ArchSpec alone, without building the network.

Conventions (those of the TFLite graphs Hello Edge reports, docs/device.md):
- MACs: conv out_h*out_w*out_c*kh*kw*in_c; depthwise out_h*out_w*c*kh*kw; pointwise out_h*out_w*in_c*out_c;
  fully connected in*out. Average pooling, biases, BN (folded) and activations count no MACs.
- Deployed parameters: BN folded into the preceding bias-free convolution, so one bias per channel.
- Trainable parameters: conv weights + BN gamma and beta (2 per channel) + the classifier's weight and bias;
  equals sum(p.numel()) of the torch module.
- Peak activation bytes: the largest set of int8 tensors live at once, over the ops of the int8 graph, the lower
  bound of a TFLite Micro arena head with non-overlapping input and output. ReLU is fused into its convolution, so
  a layer holds input + output. SiLU converts to LOGISTIC + MUL: during the MUL the pre-activation, its sigmoid and
  the product are all live, 3 x output; hard swish is one HARD_SWISH op, 2 x output. Checked against the TFLM head
  in tests/test_export_tflm.py: equal up to the 16 B alignment of each tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from kws.models import ArchSpec, resolve_arch


@dataclass(frozen=True, kw_only=True)
class LayerCost:
    name: str
    kind: str
    inp: tuple[int, int, int]
    out: tuple[int, int, int]
    macs: int
    params_deployed: int
    params_trainable: int
    live_outputs: int = 1  # output-sized tensors live at once in the layer's activation ops (SiLU: 3)

    @property
    def activation_bytes(self) -> int:
        """int8 bytes live at this layer's peak: input plus output, or the activation's output-sized tensors."""
        return max(_numel(self.inp) + _numel(self.out), self.live_outputs * _numel(self.out))

    def to_dict(self) -> dict:
        return dict(
            name=self.name,
            kind=self.kind,
            input=list(self.inp),
            output=list(self.out),
            macs=self.macs,
            params_deployed=self.params_deployed,
            params_trainable=self.params_trainable,
            activation_bytes=self.activation_bytes,
        )


@dataclass(frozen=True, kw_only=True)
class Cost:
    per_layer: tuple[LayerCost, ...]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.per_layer)

    @property
    def params_deployed(self) -> int:
        return sum(layer.params_deployed for layer in self.per_layer)

    @property
    def params_trainable(self) -> int:
        return sum(layer.params_trainable for layer in self.per_layer)

    @property
    def peak_activation_bytes(self) -> int:
        return max(layer.activation_bytes for layer in self.per_layer)

    @property
    def weight_bytes_int8(self) -> int:
        """int8 weights plus int32 biases (TFLite's full-integer scheme)."""
        total = 0
        for layer in self.per_layer:
            channels = layer.out[2]
            total += layer.params_deployed - channels + 4 * channels
        return total

    def to_dict(self) -> dict:
        return dict(
            params_trainable=self.params_trainable,
            params_deployed=self.params_deployed,
            macs=self.macs,
            peak_activation_bytes=self.peak_activation_bytes,
            weight_bytes_int8=self.weight_bytes_int8,
            per_layer=[layer.to_dict() for layer in self.per_layer],
        )


# Output-sized int8 tensors live at once in each activation's ops: ReLU fuses into the convolution; SiLU is
# LOGISTIC(x) then MUL(x, sigmoid), so x, sigmoid(x) and the product coexist; HARD_SWISH(x) holds x and its output.
LIVE_OUTPUTS = {"relu": 1, "silu": 3, "hardswish": 2}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def cost(arch: str | dict | ArchSpec, num_classes: int = 12) -> Cost:
    """Parameters, MACs and activation bytes of `arch` with a `num_classes`-way classifier."""
    spec = resolve_arch(arch)
    live = LIVE_OUTPUTS[spec.activation]
    layers = []
    for g in spec.geometry():
        (oh, ow, oc), ic = g["out"], g["inp"][2]
        kh, kw = g["kernel"]
        if g["kind"] == "depthwise":
            weights, macs = oc * kh * kw, oh * ow * oc * kh * kw
        else:
            weights, macs = oc * ic * kh * kw, oh * ow * oc * ic * kh * kw
        layers.append(
            LayerCost(
                name=g["name"],
                kind=g["kind"],
                inp=tuple(g["inp"]),
                out=tuple(g["out"]),
                macs=macs,
                params_deployed=weights + oc,
                params_trainable=weights + 2 * oc,
                live_outputs=live,
            )
        )
    c = spec.unit_widths[-1]
    h, w, _ = layers[-1].out
    layers.append(
        LayerCost(
            name="pool", kind="avgpool", inp=(h, w, c), out=(1, 1, c), macs=0, params_deployed=0, params_trainable=0
        )
    )
    fc = c * num_classes + num_classes
    layers.append(
        LayerCost(
            name="classifier",
            kind="fc",
            inp=(1, 1, c),
            out=(1, 1, num_classes),
            macs=c * num_classes,
            params_deployed=fc,
            params_trainable=fc,
        )
    )
    return Cost(per_layer=tuple(layers))
