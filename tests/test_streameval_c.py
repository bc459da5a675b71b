"""The C firmware app (kws_app.c + the generated engine, host build) against kws.stream's pipeline (Python
frontend + LiteRT int8 + kws.stream.Recognizer) on a synthesized stream of 1.5 minutes: same inference times,
the same detections, and per inference the same top label and average score up to one int8 step (the C
frontend's int8 features differ from numpy's by one step in ~0.1% of values, tests/test_firmware.py). The same
app built for Cortex-M4 runs the stream in QEMU and gives the host build's responses exactly.

Run: PYTHONPATH=. .venv/bin/python -m pytest tests/test_streameval_c.py -q  (~30 s: int8 conversion, gcc, QEMU)
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from engine_support import tflite

from kws import stream, streameval
from kws import streamdevice as sd
from kws import streamsynth as ss
from kws.device import DeviceConfig
from kws.export.tflite_model import write_meta
from kws.frontend import FrontendConfig

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


@pytest.fixture(scope="module")
def checked(mini_root, tmp_path_factory):
    """The model, the stream, the Python pipeline's responses and the host C app's, at a threshold that fires."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed (make install)")
    tmp = tmp_path_factory.mktemp("streamc")
    flatbuffer = tflite(mini_root, "ds-cnn-s", "relu")
    model = tmp / "model.tflite"
    model.write_bytes(flatbuffer)
    write_meta(model, labels=LABELS, frontend=FrontendConfig())
    scorer = stream.load_scorer(model)
    rec = ss.synthesize(mini_root, ss.StreamConfig(split="test", snr_db=20.0, max_minutes=1.5))
    x = sd.pcm_roundtrip(rec.samples)
    post = streameval.posteriors(x, scorer, DeviceConfig())
    # A threshold the (untrained) model crosses now and then, so that there are detections to compare.
    sm = streameval.smooth(post, 1000, DeviceConfig().queue_capacity(scorer.frontend))
    keyword_scores = sm.score_q[post.is_keyword[sm.top]]
    threshold_q = int(np.percentile(keyword_scores, 80)) if len(keyword_scores) else 1
    device = dataclasses.replace(
        DeviceConfig(suppression_ms=600), detection_threshold=threshold_q * scorer.output_scale
    )
    assert device.threshold_q(scorer.output_scale) == threshold_q
    gen = sd.write_generated(flatbuffer, scorer.labels, device, tmp / "gen")
    c, dropped = sd.run_stream_app(sd.build_stream_app(gen, tmp / "app"), x, tmp / "stream.wav")
    rec_py = stream.Recognizer.for_labels(scorer.labels, device, scorer.frontend, scorer.output_scale, -128)
    py = [rec_py.process(s, int(t)) for s, t in zip(post.scores, post.times_ms, strict=True)]
    return dict(x=x, post=post, gen=gen, tmp=tmp, c=c, dropped=dropped, py=py, duration_s=rec.duration_s)


@pytest.mark.firmware
def test_c_app_gives_the_python_detections_on_a_long_stream(checked):
    c, py, post = checked["c"], checked["py"], checked["post"]
    assert checked["duration_s"] >= 60
    assert checked["dropped"] == 0 and [r.time_ms for r in c] == post.times_ms.tolist()
    c_dets = [(r.time_ms, r.label) for r in c if r.is_new]
    py_dets = [(int(t), r.label) for t, r in zip(post.times_ms, py, strict=True) if r.is_new]
    assert c_dets == py_dets and len(c_dets) >= 3
    labels_agree = np.mean([a.label == b.label for a, b in zip(c, py, strict=True)])
    assert labels_agree >= 0.99
    assert max(abs(a.score_q - b.score_q) for a, b in zip(c, py, strict=True)) <= 1


@pytest.mark.firmware
def test_cortex_m4_in_qemu_gives_the_host_responses(checked):
    """The same app and generated network built for Cortex-M4 (hard float, DSP kernels) in QEMU mps2-an386."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (make install)")
    elf = sd.build_stream_image(checked["gen"], checked["tmp"] / "app.elf")
    q, dropped = sd.run_stream_app(elf, checked["x"], checked["tmp"] / "stream_q.wav", qemu=True)
    assert dropped == 0 and q == checked["c"]


@pytest.mark.firmware
def test_c_app_with_the_host_stub_model_never_detects(mini_root, tmp_path):
    """The host stub returns _silence_ at 127: the app runs the whole stream and reports no keyword."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed (make install)")
    from kws.firmware import write_default_settings

    write_default_settings(tmp_path / "gen")
    exe = sd.build_stream_app(tmp_path / "gen", tmp_path / "app", backend="stub")
    rec = ss.synthesize(mini_root, ss.StreamConfig(split="test", snr_db=20.0, max_minutes=1.0))
    c, dropped = sd.run_stream_app(exe, rec.samples, tmp_path / "stream.wav")
    assert dropped == 0 and c and all(r.label == 0 and not r.is_new for r in c)
    times = stream.inference_frames(len(stream.stream_features(rec.samples)), FrontendConfig(), DeviceConfig())
    assert len(c) == len(times)
