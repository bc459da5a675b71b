"""int8 / float TFLite and ONNX conversion (kws/export/convert.py), checked against the graph itself and torch.

Covers: the int8 graph holds only the TFLite Micro ops a DS-CNN needs, int8 input/output and per-channel weights;
the MACs and parameters counted independently from the TFLite graph's own tensors and ops equal kws.cost's for a
preset and a non-uniform spec; float TFLite logits equal torch's; SiLU converts cleanly. ONNX vs torch (through
onnxruntime) is asserted on the parity figures in tests/test_export_pipeline.py.
Run: .venv/bin/pytest tests/test_export_convert.py -q   (~20 s; one conversion per model, module-scoped)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter
from conftest import bn_model

from kws.cost import cost
from kws.export import convert
from kws.models import ArchSpec, create

NONUNIFORM = ArchSpec(conv1_width=24, widths=(40, 17, 56), strides=((2, 2), (1, 1), (1, 1)), conv1_stride=(2, 1))


def _features(n, seed=0):
    return np.random.default_rng(seed).normal(scale=4.0, size=(n, 49, 10)).astype(np.float32)


@pytest.fixture(scope="module", params=["ds-cnn-s", NONUNIFORM], ids=["ds-cnn-s", "nonuniform"])
def converted(request):
    model = bn_model(request.param)
    return model, convert.to_tflite_int8(model, _features(16))


def _graph_counts(flatbuffer: bytes) -> tuple[int, int, list[str]]:
    """(MACs, deployed params, op names) counted from the flatbuffer's tensors, one op at a time."""
    it = Interpreter(model_content=flatbuffer)
    shapes = {t["index"]: tuple(int(s) for s in t["shape"]) for t in it.get_tensor_details()}
    macs = params = 0
    names = []
    for op in it._get_ops_details():
        names.append(op["op_name"])
        ins = [i for i in op["inputs"] if i >= 0]
        out = shapes[op["outputs"][0]]
        if op["op_name"] == "CONV_2D":  # filter (O, kh, kw, I), output (1, oh, ow, O)
            o, kh, kw, i = shapes[ins[1]]
            macs += out[1] * out[2] * o * kh * kw * i
        elif op["op_name"] == "DEPTHWISE_CONV_2D":  # filter (1, kh, kw, C)
            _, kh, kw, c = shapes[ins[1]]
            macs += out[1] * out[2] * c * kh * kw
        elif op["op_name"] == "FULLY_CONNECTED":  # weights (out, in)
            o, i = shapes[ins[1]]
            macs += o * i
        else:
            continue
        params += sum(int(np.prod(shapes[t])) for t in ins[1:])
    return macs, params, names


def test_macs_and_params_from_the_graph_equal_the_costbn_model(converted):
    model, flatbuffer = converted
    macs, params, ops = _graph_counts(flatbuffer)
    expected = cost(model.spec)
    assert macs == expected.macs
    assert params == expected.params_deployed
    if model.spec == create("ds-cnn-s").spec:
        assert macs == 2_656_768 and params == 22_604  # docs/device.md, measured from the Hello Edge graphs


def test_int8_graph_is_full_integer_with_micro_ops_only(converted):
    model, flatbuffer = converted
    it = Interpreter(model_content=flatbuffer)
    ops = [op["op_name"] for op in it._get_ops_details()]
    assert set(ops) <= {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"}
    assert ops.count("DEPTHWISE_CONV_2D") == model.spec.num_blocks and ops[-1] == "SOFTMAX"
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert tuple(inp["shape"]) == (1, 49, 10, 1)  # NHWC: the device writes its MFCC ring without a transpose
    details = {t["index"]: t for t in it.get_tensor_details()}
    first_conv = it._get_ops_details()[0]
    weights = details[first_conv["inputs"][1]]
    assert weights["dtype"] == np.int8
    assert len(weights["quantization_parameters"]["scales"]) == model.spec.conv1_width  # per-channel


def test_float_tflite_logits_equal_torch(tmp_path):
    from kws.export.tflite_model import TFLiteModel, write_meta
    from kws.frontend import FrontendConfig

    model = bn_model("ds-cnn-s", seed=3)
    path = tmp_path / "model_float.tflite"
    path.write_bytes(convert.to_tflite_float(model))
    write_meta(path, labels=[str(i) for i in range(12)], frontend=FrontendConfig())
    x = _features(8, seed=1)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    tfl = TFLiteModel(path)
    np.testing.assert_allclose(tfl.logits(x), reference, atol=1e-4)
    np.testing.assert_allclose(tfl.predict(x), torch.softmax(torch.from_numpy(reference), -1).numpy(), atol=1e-5)


def test_silu_converts_to_logistic_and_mul():
    model = bn_model("seed", activation="silu")
    ops = convert.graph_ops(convert.to_tflite_int8(model, _features(8)))
    assert set(ops) - {"LOGISTIC", "MUL"} <= {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "AVERAGE_POOL_2D",
        "FULLY_CONNECTED",
        "SOFTMAX",
    }
    assert ops.count("LOGISTIC") == ops.count("MUL") == 1 + 2 * model.spec.num_blocks


def test_hardswish_converts_to_one_op_per_activation():
    model = bn_model("seed", activation="hardswish")
    flatbuffer = convert.to_tflite_int8(model, _features(8))
    ops = convert.graph_ops(flatbuffer)
    assert ops.count("HARD_SWISH") == 1 + 2 * model.spec.num_blocks
    assert "LOGISTIC" not in ops and "MUL" not in ops
    convert.check_ops(flatbuffer)


def test_bad_calibration_is_one_line_error():
    from kws.errors import KwsError

    with pytest.raises(KwsError, match="calibration"):
        convert.to_tflite_int8(bn_model("seed"), np.zeros((0, 49, 10), np.float32))
