"""kws.streameval / streamsynth / streamreport and `kws stream-eval`: the MLPerf-Tiny-style scorer against hand-built
detection lists, the vectorized recognizer sweep against kws.stream.Recognizer, recording synthesis (exact times,
no clip twice, split-disjoint noise, seeded), and an operating point that meets its target on validation.

Run: PYTHONPATH=. .venv/bin/python -m pytest tests/test_streameval.py -q  (~20 s; the mini set for synthesis)
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from kws import frontend as fe
from kws import stream, streameval, streamreport
from kws import streamsynth as ss
from kws.cli import main
from kws.device import DeviceConfig

CFG = fe.FrontendConfig()
LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
TRUTH = [("yes", 10.0, 10.5), ("no", 20.0, 20.4), ("up", 30.0, 30.5)]
HOUR = 3600.0


def _score(dets, truth=TRUTH):
    return streameval.score_detections(truth, dets, HOUR)


def test_scorer_hit_and_late_hit():
    s = _score([(10.2, "yes"), (21.4, "no")])  # 21.4 = word end + 1 s: the last moment of the hit window
    assert (s["hits"], s["misses"], s["false_alarms"]) == (2, 1, 0)
    assert s["miss_rate"] == pytest.approx(1 / 3) and s["hours"] == 1.0
    assert s["per_keyword"]["up"] == dict(words=1, misses=1, miss_rate=1.0, false_alarms=0, fa_per_hour=0.0)


def test_scorer_too_late_is_a_miss_and_a_false_alarm():
    s = _score([(11.51, "yes")])
    assert (s["misses"], s["false_alarms"], s["fa_per_hour"]) == (3, 1, 1.0)
    assert s["fa_sources"] == {"noise / silence": 1}


def test_scorer_repeat_in_window_is_the_same_hit():
    s = _score([(10.1, "yes"), (10.9, "yes"), (11.4, "yes")])
    assert (s["hits"], s["false_alarms"]) == (1, 0)


def test_scorer_false_alarms_debounced_over_one_second():
    s = _score([(50.0, "go"), (50.5, "stop"), (50.99, "go"), (51.0, "go"), (53.0, "on")])
    assert s["false_alarms"] == 3  # 50.0, 51.0 (1 s after the last counted one), 53.0
    assert s["per_keyword"]["go"]["false_alarms"] == 2 and s["per_keyword"]["on"]["fa_per_hour"] == 1.0
    assert "stop" not in s["per_keyword"]  # debounced: never counted


def test_scorer_wrong_keyword_is_a_miss_and_a_false_alarm():
    s = _score([(30.3, "off"), (10.2, "yes"), (10.3, "no")])  # "no" inside the window of a spoken "yes"
    assert (s["hits"], s["misses"], s["false_alarms"]) == (1, 2, 2)
    assert s["confusions"] == {"up": {"off": 1}, "yes": {"no": 1}}
    assert s["per_keyword"]["no"] == dict(words=1, misses=1, miss_rate=1.0, false_alarms=1, fa_per_hour=1.0)


def test_scorer_wrong_then_right_keyword_hits_and_counts_the_false_alarm():
    s = _score([(30.2, "off"), (30.8, "up")])
    assert (s["hits"], s["misses"], s["false_alarms"]) == (1, 2, 1)
    assert s["confusions"] == {"up": {"off": 1}}
    assert s["per_keyword"]["up"]["misses"] == 0 and s["per_keyword"]["off"]["false_alarms"] == 1


def test_scorer_names_the_unknown_word_a_false_alarm_fell_on():
    s = streameval.score_detections(TRUTH, [(41.2, "go")], HOUR, negatives=[("bed", 40.5, 41.0)])
    assert s["fa_sources"] == {"bed (unknown speech)": 1}


def _random_posteriors(seed: int, n: int = 400) -> streameval.Posteriors:
    rng = np.random.default_rng(seed)
    scores = rng.integers(-128, 128, size=(n, len(LABELS))).astype(np.int8)
    hot = rng.random(n) < 0.3  # bursts where one keyword is confident, so detections happen
    scores[hot, rng.integers(2, 12, hot.sum())] = 127
    times = 1000 + 200 * np.arange(n, dtype=np.int64)
    return streameval.Posteriors(times, scores, LABELS, 1 / 256, -128, n * 0.2 + 1)


@pytest.mark.parametrize("window_ms", [200, 500, 1000, 1500])
@pytest.mark.parametrize("threshold_q", [60, 140, 200])
def test_vectorized_sweep_equals_the_recognizer(window_ms, threshold_q):
    post = _random_posteriors(window_ms + threshold_q)
    dev = streameval.device_for(DeviceConfig(suppression_ms=700), window_ms, CFG)
    rec = stream.Recognizer.for_labels(LABELS, dataclasses.replace(dev, detection_threshold=threshold_q / 256), CFG)
    verdicts = [(int(t), rec.process(s, int(t))) for t, s in zip(post.times_ms, post.scores, strict=True)]
    want = [(t, r.label) for t, r in verdicts if r.is_new]
    sm = streameval.smooth(post, window_ms, dev.queue_capacity(CFG))
    got = streameval.detections_at(sm, threshold_q, dev.minimum_count, dev.suppression_ms, post.is_keyword)
    assert got == want and len(want) > 0


def test_short_window_lowers_min_count_to_what_it_holds():
    assert streameval.device_for(DeviceConfig(), 200, CFG).minimum_count == 1
    assert streameval.device_for(DeviceConfig(), 500, CFG).minimum_count == 3
    assert streameval.device_for(DeviceConfig(minimum_count=2), 1500, CFG).minimum_count == 2


def test_noise_files_are_disjoint_between_validation_and_test(mini_root):
    assert not set(ss.NOISE_FILES["validation"]) & set(ss.NOISE_FILES["test"])
    have = {p.name for p in (mini_root / "_background_noise_").glob("*.wav")}
    assert set(ss.NOISE_FILES["validation"]) | set(ss.NOISE_FILES["test"]) <= have


@pytest.fixture(scope="module")
def clean(mini_root):
    return ss.synthesize(mini_root, ss.StreamConfig(split="test", snr_db=None, max_minutes=1.0, seed=3))


def test_keyword_times_exact_to_the_sample_and_no_clip_twice(mini_root, clean):
    from kws.audio import read_audio

    sources = [e.source for e in clean.events]
    assert len(sources) == len(set(sources)) and clean.info["keywords"] >= 10
    assert 55 <= clean.duration_s <= 60 + 3 + 1 + 1
    for e in clean.events[:12]:
        x = read_audio(mini_root / e.source, 16000).samples
        np.testing.assert_array_equal(clean.samples[e.start_sample : e.start_sample + len(x)], np.clip(x, -1, 1))
        first, end = ss.word_span(x, 16000)
        assert (e.word_start_sample, e.word_end_sample) == (e.start_sample + first, e.start_sample + end)
    kws = [e for e in clean.events if e.kind == "keyword"]
    assert clean.truth == [(e.label, e.word_start_sample / 16000, e.word_end_sample / 16000) for e in kws]
    keywords, _ = ss.split_clips(mini_root, "test")
    assert {e.source for e in kws} <= set(keywords)  # only the test split's clips


def test_snr_deterministic_by_seed_and_different_by_seed(mini_root, clean):
    noisy = ss.synthesize(mini_root, ss.StreamConfig(split="test", snr_db=10.0, max_minutes=1.0, seed=3))
    assert noisy.events == clean.events and noisy.noise_files == list(ss.NOISE_FILES["test"])
    noise = noisy.samples.astype(np.float64) - clean.samples
    words = np.concatenate([clean.samples[e.word_start_sample : e.word_end_sample] for e in clean.events])
    p_speech = np.mean([np.mean(clean.samples[e.word_start_sample : e.word_end_sample] ** 2) for e in clean.events])
    assert 10 * np.log10(p_speech / np.mean(noise**2)) == pytest.approx(10.0, abs=0.2) and len(words)
    again = ss.synthesize(mini_root, ss.StreamConfig(split="test", snr_db=10.0, max_minutes=1.0, seed=3))
    np.testing.assert_array_equal(again.samples, noisy.samples)
    other = ss.synthesize(mini_root, ss.StreamConfig(split="test", snr_db=10.0, max_minutes=1.0, seed=4))
    assert [e.source for e in other.events] != [e.source for e in noisy.events]


def _energy_scorer() -> stream.Scorer:
    """A stand-in model over labels (_silence_, _unknown_, yes): 'yes' with a confidence that grows with the
    input's loudness (no network). Its streams hold only "yes" words (unknown_per_keyword=0)."""

    def score(x: np.ndarray) -> np.ndarray:
        c0 = x[:, :, 0].max(axis=1)
        p = np.clip(c0 / 15.0, 0, 1)  # noise at 20 dB stays below c0 ~ 1, words reach ~ 15-30
        out = np.full((len(x), 3), -128, np.int8)
        out[:, 2] = np.round(p * 255 - 128).astype(np.int8)
        out[:, 0] = np.round((1 - p) * 255 - 128).astype(np.int8)
        return out

    return stream.Scorer(LABELS[:3], CFG, 1 / 256, -128, score)


@pytest.fixture(scope="module")
def evaluated(mini_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("se")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream, "load_scorer", lambda path: _energy_scorer())
        result = streamreport.evaluate(
            "energy", mini_root, snr_db=20.0, unknown_per_keyword=0, target_fa_per_hour=30.0, out_dir=out
        )
    return out, result


def test_operating_point_meets_its_target_on_validation(mini_root, evaluated):
    out, result = evaluated
    op = result["operating_point"]
    assert op["meets_target"] and result["validation"]["fa_per_hour"] <= 30.0
    assert result["validation"]["hits"] > 0  # a real point, not "never fire"
    # Re-run the validation stream through the recognizer that mirrors the C one, at the written settings.
    device, record = streamreport.load_operating_point(out / streamreport.OPERATING_POINT)
    assert device.average_window_ms == op["window_ms"] and device.threshold_q(1 / 256) == op["threshold_q"]
    cfg = ss.StreamConfig(split="validation", snr_db=20.0, unknown_per_keyword=0)
    rec = ss.synthesize(mini_root, cfg, words=("yes",))
    dets, _ = stream.detect(rec.samples, _energy_scorer(), device)
    s = streameval.score_detections(rec.truth, [(d.time_ms / 1000, d.label) for d in dets], rec.duration_s)
    assert s["fa_per_hour"] == result["validation"]["fa_per_hour"] <= 30.0
    assert s["miss_rate"] == result["validation"]["miss_rate"]
    assert record["test"]["hours"] > 0 and (out / "det.png").stat().st_size > 1000
    assert "data:image/png;base64," in (out / "stream_report.html").read_text()


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--windows-ms", "abc"], "--windows-ms"),
        (["--windows-ms", "0,500"], "--windows-ms"),
        (["--target-fa-per-hour", "0"], "--target-fa-per-hour"),
        (["--minutes", "-1"], "--minutes"),
        (["--unknown-per-keyword", "-1"], "--unknown-per-keyword"),
        (["--espeak-sentences", "99"], "--espeak-sentences"),
        (["--data", "/nonexistent"], "--data"),
    ],
)
def test_cli_bad_input_is_one_line_naming_the_flag(mini_root, tmp_path, capsys, flags, flag):
    base = {"--model": str(tmp_path / "m.tflite"), "--data": str(mini_root), "--out": str(tmp_path / "o")}
    for k, v in zip(flags[::2], flags[1::2], strict=True):
        base[k] = v
    assert main(["stream-eval", *[x for kv in base.items() for x in kv]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err


def test_cli_missing_model_is_named(mini_root, tmp_path, capsys):
    assert main(["stream-eval", "--model", str(tmp_path / "none"), "--data", str(mini_root), "--out", "o"]) == 2
    assert "--model" in capsys.readouterr().err


def test_operating_point_file_errors_name_the_flag(tmp_path):
    from kws.errors import KwsError

    with pytest.raises(KwsError, match="--operating-point"):
        streamreport.load_operating_point(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"device": {"average_window_ms": 0}}))
    with pytest.raises(KwsError, match="--operating-point"):
        streamreport.load_operating_point(tmp_path / "bad.json")


def test_export_operating_point_flag_passes_the_device_and_reports_the_figures(evaluated, tmp_path, capsys):
    """`kws export --operating-point` hands the file's DeviceConfig to export_run (which gives it to
    firmware.write_settings) and appends the streams' figures to report.md (export_run itself is stubbed)."""
    import kws.export

    out_dir, result = evaluated
    seen = {}

    def fake_export_run(model, out, **kw):
        seen.update(kw)
        (tmp_path / "exp").mkdir(exist_ok=True)
        (tmp_path / "exp" / "report.md").write_text("# Export report\n")
        return dict(files=[])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kws.export, "export_run", fake_export_run)
        mp.setattr("kws.export.report.summary_table", lambda rep: "table")
        op = str(out_dir / streamreport.OPERATING_POINT)
        assert main(["export", "--model", "run", "--out", str(tmp_path / "exp"), "--operating-point", op]) == 0
    device = seen["device"]
    assert device.average_window_ms == result["device"]["average_window_ms"]
    assert device.threshold_q(1 / 256) == result["operating_point"]["threshold_q"]
    assert seen["stream"]["test"]["hours"] == pytest.approx(result["test"]["hours"])
    assert "test stream at it" in capsys.readouterr().out
    md = (tmp_path / "exp" / "report.md").read_text()
    assert "## Streaming (kws stream-eval)" in md and (tmp_path / "exp" / "stream_det.png").is_file()


def test_write_settings_takes_the_operating_point(evaluated, tmp_path):
    from kws import firmware

    out_dir, result = evaluated
    device, _ = streamreport.load_operating_point(out_dir / streamreport.OPERATING_POINT)
    firmware.write_settings(tmp_path, CFG, LABELS, 0.1, 0, 1 / 256, -128, "x", {}, device=device)
    text = (tmp_path / "kws_settings.h").read_text()
    assert f"#define KWS_RECOGNIZER_WINDOW_MS {result['device']['average_window_ms']}\n" in text
    assert f"#define KWS_RECOGNIZER_THRESHOLD_Q {result['operating_point']['threshold_q']}\n" in text
    assert f"#define KWS_RECOGNIZER_MIN_COUNT {result['device']['minimum_count']}\n" in text


def test_operating_point_never_picks_never_firing_and_says_when_the_target_is_missed():
    pts = [
        dict(window_ms=500, threshold_q=256, miss_rate=1.0, fa_per_hour=0.0),
        dict(window_ms=500, threshold_q=200, miss_rate=0.4, fa_per_hour=2.7),
        dict(window_ms=1000, threshold_q=180, miss_rate=0.3, fa_per_hour=5.4),
        dict(window_ms=1000, threshold_q=150, miss_rate=0.2, fa_per_hour=8.1),
    ]
    op = streameval.choose_operating_point(pts, 1.0)
    assert (op["threshold_q"], op["meets_target"]) == (200, False)
    op = streameval.choose_operating_point(pts, 6.0)
    assert (op["window_ms"], op["threshold_q"], op["meets_target"]) == (1000, 180, True)


def test_cli_subprocess_bad_flag_is_one_line(mini_root, tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "kws", "stream-eval", "--model", "m.tflite", "--data", str(mini_root)]
    cmd += ["--out", str(tmp_path / "o"), "--windows-ms", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "kws stream-eval: error: --windows-ms '0': give comma-separated windows in ms, each >= 1 (e.g. 500,1000)"
    ]
