"""kws.stream and `kws stream`: the Python recognizer gives the same detections as the compiled C recognizer
(firmware_stub/host/kws_recognize) on random score sequences; streaming features equal the one-shot frontend
across chunk boundaries; the inference schedule matches the C app's hand-derived one; long recordings with
silence, full-scale clipping and DC offset stay finite; the CLI prints detections (in-process and as a process).

Run: .venv/bin/pytest tests/test_stream.py -q   (the C comparison is marked `firmware`: needs gcc)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from kws import frontend as fe
from kws import stream
from kws.cli import main
from kws.device import DeviceConfig
from kws.firmware import FIRMWARE_DIR

CFG = fe.FrontendConfig()
LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


@pytest.fixture(scope="module")
def c_recognizer(tmp_path_factory):
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed (make install)")
    build = tmp_path_factory.mktemp("fw")
    proc = subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE_DIR), f"BUILD_DIR={build}", "tools"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return build / "host" / "kws_recognize"


def _random_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Score sequences with keyword bursts: mostly silence, sometimes one label near the top for a while."""
    times = np.cumsum(rng.choice([0, 20, 200, 200, 400], size=n))
    scores = np.full((n, len(LABELS)), -128, np.int64)
    label = 0
    for i in range(n):
        if rng.random() < 0.1:
            label = int(rng.integers(len(LABELS)))
        scores[i] = rng.integers(-128, -60, len(LABELS))
        scores[i, label] = rng.integers(20, 128)
    return times, scores


@pytest.mark.firmware
@pytest.mark.parametrize(
    "window_ms, threshold_q, suppression_ms, min_count",
    [(1000, 179, 1500, 3), (500, 120, 0, 1), (2000, 200, 700, 5)],
)
def test_python_recognizer_equals_c(c_recognizer, tmp_path, window_ms, threshold_q, suppression_ms, min_count):
    rng = np.random.default_rng(window_ms + threshold_q)
    times, scores = _random_scores(rng, 3000)
    times[1500] = times[1499] - 5  # one step back in time: both must report an error and go on
    path = tmp_path / "scores.txt"
    path.write_text("".join(f"{t} {' '.join(map(str, s))}\n" for t, s in zip(times, scores, strict=True)))
    flags = [
        "--window-ms",
        window_ms,
        "--threshold-q",
        threshold_q,
        "--suppression-ms",
        suppression_ms,
        "--min-count",
        min_count,
        "--zero-point",
        -128,
    ]
    out = subprocess.run([str(c_recognizer), *map(str, flags), str(path)], capture_output=True, text=True, check=True)
    rec = stream.Recognizer(
        num_labels=12,
        is_keyword=[not lab.startswith("_") for lab in LABELS],
        window_ms=window_ms,
        threshold_q=threshold_q,
        suppression_ms=suppression_ms,
        min_count=min_count,
        zero_point=-128,
        capacity=DeviceConfig().queue_capacity(CFG),  # the tool is built with the default settings
    )
    lines = []
    for t, s in zip(times, scores, strict=True):
        r = rec.process(s, int(t))
        if r.label < 0:
            lines.append(f"error {t}")
        elif r.is_new:
            lines.append(f"{t} {r.label} {r.score_q}")
    assert out.stdout.splitlines() == lines
    assert sum(1 for line in lines if not line.startswith("error")) >= 5  # the sequence does exercise detections


def test_recognizer_rules_by_hand():
    rec = stream.Recognizer(
        num_labels=3,
        is_keyword=[False, True, True],
        window_ms=1000,
        threshold_q=100,
        suppression_ms=1500,
        min_count=2,
        zero_point=-128,
        capacity=8,
    )
    assert not rec.process([-128, 127, -128], 0).is_new  # one inference < min_count
    r = rec.process([-128, -28, -128], 200)  # (255 + 100) / 2 = 177 steps
    assert r.is_new and r.label == 1 and r.score_q == 177
    assert not rec.process([-128, 127, -128], 1000).is_new  # suppressed until 1700 ms
    assert rec.process([-128, 127, -128], 1700).is_new
    assert rec.process([127, -128, -128], 5000) == stream.Recognition(0, 255, False)  # silence is not a keyword
    assert rec.process([127, -128, -128], 10).label == -1  # time went backwards


def test_stream_features_equal_one_shot_frontend(monkeypatch):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(int(3.3 * CFG.sample_rate_hz)) * 0.1).astype(np.float32)
    monkeypatch.setattr(stream, "FRAMES_PER_CHUNK", 7)  # many chunk boundaries
    got = stream.stream_features(x, CFG)
    np.testing.assert_array_equal(got, fe.compute_mfcc(x, CFG))
    assert len(got) == 1 + (len(x) - 640) // 320


def test_inference_schedule_matches_c_app():
    # 2 s = 99 frames; ring full after frame 48, then every 10 frames (firmware_stub/tests/test_app.c).
    assert stream.inference_frames(99, CFG, DeviceConfig()) == [48, 58, 68, 78, 88, 98]
    assert [stream.frame_end_ms(f, CFG) for f in (48, 98)] == [1000, 2000]
    assert stream.inference_frames(99, CFG, DeviceConfig(inference_period_hops=60)) == [59]


def test_long_recording_with_silence_clipping_and_dc_stays_finite():
    n = np.arange(60 * CFG.sample_rate_hz)
    x = np.zeros(len(n), np.float32)  # 1 min: 15 s silence, 15 s full-scale square, 15 s DC, 15 s noise
    x[15 * 16000 : 30 * 16000] = np.where((n[: 15 * 16000] // 8) % 2 == 0, 32767, -32768) / 32768.0
    x[30 * 16000 : 45 * 16000] = 0.6
    x[45 * 16000 :] = np.random.default_rng(1).uniform(-1, 1, 15 * 16000)
    feats = stream.stream_features(x, CFG)
    assert np.isfinite(feats).all() and len(feats) == 2999
    np.testing.assert_allclose(feats[:100, 0], np.sqrt(40) * np.log(1e-6), rtol=1e-6)


def _energy_scorer() -> stream.Scorer:
    """A stand-in model: 'yes' when the input's mean c0 is above that of quiet audio, silence otherwise."""

    def score(x: np.ndarray) -> np.ndarray:
        loud = x[:, :, 0].mean(axis=1) > -40.0
        out = np.full((len(x), 12), -128, np.int8)
        out[loud, 2] = 127
        out[~loud, 0] = 127
        return out

    return stream.Scorer(LABELS, CFG, 1 / 256, -128, score)


def test_detect_finds_bursts_at_their_times():
    x = np.zeros(10 * CFG.sample_rate_hz, np.float32)
    rng = np.random.default_rng(2)
    for start_s in (2, 6):
        x[start_s * 16000 : (start_s + 1) * 16000] = rng.uniform(-0.5, 0.5, 16000)
    detections, summary = stream.detect(x, _energy_scorer(), DeviceConfig())
    assert summary["inferences"] == len(stream.inference_frames(499, CFG, DeviceConfig()))
    assert [d.label for d in detections] == ["yes", "yes"]
    assert 2000 < detections[0].time_ms <= 3600 and 6000 < detections[1].time_ms <= 7600
    assert 0.7 <= detections[0].score <= 255 / 256 and (detections[0].score * 256).is_integer()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from kws.checkpoint import save_run
    from kws.models import create
    from kws.recipe import TrainConfig

    path = tmp_path_factory.mktemp("run")
    save_run(path, create("ds-cnn-s").eval(), CFG, LABELS, TrainConfig())
    return path


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "long.wav"
    x = np.random.default_rng(3).uniform(-0.3, 0.3, 3 * CFG.sample_rate_hz)
    sf.write(path, (x * 32767).astype(np.int16), CFG.sample_rate_hz, subtype="PCM_16")
    return path


def test_cli_stream_in_process(run_dir, recording, capsys):
    assert main(["stream", "--model", str(run_dir), str(recording), "--json", "--threshold", "0.05"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inferences"] == len(stream.inference_frames(149, CFG, DeviceConfig()))
    assert all(d["label"] in LABELS for d in out["detections"])
    assert main(["stream", "--model", str(recording), str(recording)]) == 2  # not a model: one-line error
    assert "neither a .tflite" in capsys.readouterr().err


def test_cli_stream_subprocess(run_dir, recording):
    proc = subprocess.run(
        [sys.executable, "-m", "kws", "stream", "--model", str(run_dir), str(recording)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "inferences" in proc.stderr and "detections" in proc.stderr


def test_cli_defaults_are_device_config_defaults():
    from kws.cli.stream import DEVICE_FLAGS

    assert {f: d for f, d in DEVICE_FLAGS.values()} == {f: getattr(DeviceConfig(), f) for f, _ in DEVICE_FLAGS.values()}


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--threshold", "0"),
        ("--threshold", "1.5"),
        ("--threshold", "nan"),
        ("--window-ms", "0"),
        ("--suppression-ms", "-1"),
        ("--min-count", "0"),
        ("--period-hops", "0"),
    ],
)
def test_cli_bad_device_flag_is_named_not_its_field(run_dir, recording, capsys, flag, value):
    """DeviceConfig's messages name its fields (detection_threshold); the CLI names the flag (issue 19 item 12)."""
    assert main(["stream", "--model", str(run_dir), str(recording), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kws stream: error: {flag} {value}") and "\n" not in err and "_" not in err.split(":")[2]


def test_cli_short_or_missing_recording_is_named(run_dir, tmp_path, capsys):
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(8000, np.int16), CFG.sample_rate_hz, subtype="PCM_16")
    assert main(["stream", "--model", str(run_dir), str(short)]) == 2
    assert f"{short}: 0.50 s is shorter than one 1000 ms model input" in capsys.readouterr().err
    assert main(["stream", "--model", str(run_dir), str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder, expected an audio file" in capsys.readouterr().err
    assert main(["stream", "--model", str(tmp_path / "nope"), str(short)]) == 2
    assert "does not exist" in capsys.readouterr().err
