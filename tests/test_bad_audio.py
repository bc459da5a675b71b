"""Bad audio is named, never silently dropped or trained on (issue 19 items 8, 9, 10).

A small dataset of real clips gets one planted file of each kind: a WAV whose header claims 0 data bytes (libsndfile
would read the rest of the file as 44.1 kHz audio), headers cut short, a data chunk longer than the file, a missing
fmt chunk, an unfinished streamed write, an empty file, text, NaN samples, a folder named .wav (unusable); a stereo
44.1 kHz clip (converted), a 0.4 s clip (padded) and a 1.5 s clip (cropped). `kws data check` must name every one
with its reason, in text and --json, and exit 1 for the unusable ones only; train / eval print one summary line and
train records the list in the run directory; predict / stream refuse each bad file by name, predict after printing
every good file's result.
Run: .venv/bin/python -m pytest tests/test_bad_audio.py -q (about 15 s)
"""

from __future__ import annotations

import io
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws.audio import AUDIO_ISSUES_FILE, UnusableAudio, read_audio
from kws.cli import main
from kws.data import TaskConfig, check_dataset, load_dataset

TASK = TaskConfig(words=("yes", "no"))


def _wav_bytes(x: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _zero_data(clip: bytes) -> bytes:
    """A 44.1 kHz header whose data chunk claims 0 bytes and whose RIFF size claims only the header, followed by
    a 16 kHz clip's samples: libsndfile 'fixes' such a file by reading everything after the header as audio."""
    head = bytearray(_wav_bytes(np.zeros(10), 44100)[:44])
    head[4:8] = struct.pack("<I", 8)
    head[40:44] = struct.pack("<I", 0)
    return bytes(head) + clip[44:]


def _set_u32(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    out[offset : offset + 4] = struct.pack("<I", value)
    return bytes(out)


def _bad_files(clip: bytes) -> dict[str, bytes]:
    """name -> bytes of each unusable kind (clip: a real 16 kHz mono wav with a 44-byte header)."""
    no_fmt = clip[:12] + clip[36:]
    return {
        "zero_data": _zero_data(clip),
        "cut_in_riff": clip[:8],
        "cut_in_fmt": clip[:30],
        "cut_in_data_header": clip[:40],
        "cut_in_data": clip[:5000],
        "no_fmt": _set_u32(no_fmt, 4, len(no_fmt) - 8),
        "streamed": _set_u32(clip, 40, 0xFFFFFFFF),
        "empty": b"",
        "text": b"this is not audio\n" * 20,
        "nan": _wav_bytes(np.full(16000, np.nan, np.float32), 16000, "FLOAT"),
    }


# name -> (kind, a word of the reason)
EXPECTED = {
    "zero_data": ("unusable", "0 data bytes"),
    "cut_in_riff": ("unusable", "truncated header"),
    "cut_in_fmt": ("unusable", "truncated header"),
    "cut_in_data_header": ("unusable", "truncated header"),
    "cut_in_data": ("unusable", "truncated"),
    "no_fmt": ("unusable", "no fmt chunk"),
    "streamed": ("unusable", "0xFFFFFFFF"),
    "empty": ("unusable", "empty file"),
    "text": ("unusable", "not readable audio"),
    "nan": ("unusable", "NaN"),
    "folder": ("unusable", "is a folder"),
    "stereo44k": ("converted", "2 channels"),
    "short": ("padded", "0.40 s"),
    "long": ("cropped", "1.50 s"),
}


@pytest.fixture(scope="module")
def clip(mini_root) -> bytes:
    data = sorted((mini_root / "yes").glob("*.wav"))[0].read_bytes()
    assert data[36:40] == b"data" and len(data) == 32044  # the plain 44-byte header the planting relies on
    return data


@pytest.fixture(scope="module")
def planted(tmp_path_factory, mini_root, clip) -> Path:
    """Real clips of yes / no / cat, 3 s of noise, and one planted file of each kind in yes/."""
    root = tmp_path_factory.mktemp("planted") / "ds"
    held: dict[str, list[str]] = {"validation_list.txt": [], "testing_list.txt": []}
    for word, n in (("yes", 8), ("no", 8), ("cat", 4)):  # a quarter each to validation and test, by list files
        (root / word).mkdir(parents=True)
        for k, f in enumerate(sorted((mini_root / word).glob("*.wav"))[1 : n + 1]):
            shutil.copy(f, root / word / f.name)
            if k < n // 2:
                held["validation_list.txt" if k < n // 4 else "testing_list.txt"].append(f"{word}/{f.name}")
    for name, paths in held.items():
        (root / name).write_text("\n".join(paths) + "\n")
    noise, _ = sf.read(mini_root / "_background_noise_" / "white_noise.wav", dtype="float32")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", noise[:48000], 16000, subtype="PCM_16")
    for name, data in _bad_files(clip).items():
        (root / "yes" / f"{name}_nohash_0.wav").write_bytes(data)
    (root / "yes" / "folder_nohash_0.wav").mkdir()
    x, _ = sf.read(io.BytesIO(clip), dtype="float32")
    t = np.arange(44100) / 44100
    sf.write(root / "yes" / "stereo44k_nohash_0.wav", np.stack([np.sin(900 * t), x[:1] + 0 * t], 1) * 0.3, 44100)
    sf.write(root / "yes" / "short_nohash_0.wav", x[:6400], 16000, subtype="PCM_16")
    sf.write(root / "yes" / "long_nohash_0.wav", np.concatenate([x, x[:8000]]), 16000, subtype="PCM_16")
    return root


def _by_name(entries: list[dict]) -> dict[str, str]:
    return {Path(e["path"]).name.split("_nohash_")[0]: e["reason"] for e in entries}


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"folder", "stereo44k", "short", "long"}))
def test_read_audio_refuses_each_bad_kind_with_its_reason(tmp_path, clip, name):
    path = tmp_path / f"{name}.wav"
    path.write_bytes(_bad_files(clip)[name])
    with pytest.raises(UnusableAudio, match=EXPECTED[name][1]) as e:
        read_audio(path)
    assert "\n" not in str(e.value) and str(path) not in str(e.value)


def test_read_audio_says_what_a_path_of_the_wrong_kind_is(tmp_path):
    with pytest.raises(UnusableAudio, match="is a folder, expected an audio file"):
        read_audio(tmp_path)
    with pytest.raises(UnusableAudio, match="does not exist"):
        read_audio(tmp_path / "nope.wav")


def test_check_dataset_names_every_planted_file_with_its_reason(planted):
    report = check_dataset(planted, task=TASK)
    for kind in ("unusable", "converted", "padded", "cropped"):
        expected = {name: word for name, (k, word) in EXPECTED.items() if k == kind}
        got = _by_name(report[kind])
        assert got.keys() == expected.keys(), kind
        for name, word in expected.items():
            assert word in got[name], (name, got[name])
    assert report["usable"] == 8 + 8 + 4 + 3  # the real clips and the three usable planted ones


def test_cli_check_names_every_one_in_text_and_json(planted, capsys):
    assert main(["data", "check", str(planted)]) == 1
    out = capsys.readouterr().out
    for name, (kind, word) in EXPECTED.items():
        line = next((ln for ln in out.splitlines() if f"yes/{name}_nohash_0.wav" in ln), "")
        assert line.startswith(f"{kind}: ") and word in line, (name, line)
    assert "11 unusable, 1 converted, 1 padded, 1 cropped" in out
    assert main(["data", "check", str(planted), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {k: len(report[k]) for k in ("unusable", "converted", "padded", "cropped")} == {
        "unusable": 11,
        "converted": 1,
        "padded": 1,
        "cropped": 1,
    }


def test_converted_and_padded_alone_are_reported_not_fatal(planted, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(planted, root, ignore=lambda d, names: [n for n in names if n.split("_nohash_")[0] in _BAD])
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "converted: yes/stereo44k_nohash_0.wav" in out and "padded: yes/short_nohash_0.wav" in out


_BAD = {name for name, (kind, _) in EXPECTED.items() if kind == "unusable"}


def test_load_dataset_keeps_the_lists(planted):
    ds = load_dataset(planted, task=TASK, progress=False)
    loaded = {p for s in ds.splits.values() for p in s.paths}
    assert not {p for p in loaded if p.split("/")[1].split("_nohash_")[0] in _BAD}
    assert _by_name([{"path": p, "reason": r} for p, r in ds.issues.unusable]).keys() == _BAD
    assert ds.problems == ds.issues.unusable and ds.converted == len(ds.issues.converted) == 1
    line = ds.issues.summary_line()
    assert line.startswith("11 skipped (unusable), 1 converted, 1 padded, 1 cropped") and "\n" not in line


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))


def _summary(err: str, verb: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"{verb}: audio files: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_train_and_eval_print_one_summary_line_and_train_records_the_list(planted, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--arch", "seed@8", "--data", str(planted), "--out", str(run), "--epochs", "1"]
    assert main([*argv, "--batch-size", "16", "--quiet", "--threads", "1", "--words", "yes,no"]) == 0
    line = _summary(capsys.readouterr().err, "train")
    assert "11 skipped (unusable), 1 converted, 1 padded, 1 cropped" in line and str(run) in line
    record = json.loads((run / AUDIO_ISSUES_FILE).read_text())
    assert _by_name(record["unusable"]).keys() == _BAD and record["counts"]["padded"] == 1
    assert "0 data bytes" in _by_name(record["unusable"])["zero_data"]

    assert main(["eval", "--model", str(run), "--data", str(planted), "--split", "train", "--json"]) == 0
    captured = capsys.readouterr()  # the planted files are not in the list files: all in the train split
    assert "11 skipped (unusable), 1 converted, 1 padded, 1 cropped" in _summary(captured.err, "eval")
    issues = json.loads(captured.out)["audio_issues"]
    assert issues["counts"] == {"unusable": 11, "converted": 1, "padded": 1, "cropped": 1}
    assert _by_name(issues["padded"]) == {"short": "0.40 s, zero-padded to 1.00 s"}


def test_grow_prints_one_summary_line_and_records_the_list(planted, tmp_path, capsys, monkeypatch):
    import kws.grow

    class Loaded(Exception):
        pass

    def stop(*args, **kwargs):  # growing itself is tested in tests/test_grow.py: stop once the data is read
        raise Loaded

    monkeypatch.setattr(kws.grow, "features", stop)
    out = tmp_path / "grown"
    with pytest.raises(Loaded):
        main(
            [
                "grow",
                "--data",
                str(planted),
                "--out",
                str(out),
                "--seed-width",
                "8",
                "--budget-kparams",
                "3",
                "--words",
                "yes,no",
            ]
        )
    line = _summary(capsys.readouterr().err, "grow")
    assert "11 skipped (unusable), 1 converted, 1 padded, 1 cropped" in line and str(out) in line
    assert _by_name(json.loads((out / AUDIO_ISSUES_FILE).read_text())["unusable"]).keys() == _BAD


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> Path:
    """An untrained seed model saved as a run: predict and stream only need it to answer."""
    from kws.checkpoint import save_run
    from kws.frontend import FrontendConfig
    from kws.models import create
    from kws.recipe import TrainConfig

    path = tmp_path_factory.mktemp("model") / "run"
    save_run(path, create("seed").eval(), FrontendConfig(), TaskConfig().labels, TrainConfig())
    return path


def test_predict_prints_every_good_result_names_each_bad_file_and_fails_at_the_end(model_run, planted, capsys):
    yes = planted / "yes"
    good = sorted(str(f) for f in yes.glob("[0-9a-f]*.wav"))[:2] + [str(yes / "short_nohash_0.wav")]
    bad = [str(yes / f"{name}_nohash_0.wav") for name in ("zero_data", "cut_in_fmt", "folder")] + [str(yes / "nope")]
    files = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3]]
    assert main(["predict", "--model", str(model_run), *files]) == 2
    captured = capsys.readouterr()
    printed = [line.split(": ")[0] for line in captured.out.splitlines()]
    assert printed == good  # every good file's result, in order
    assert "padded: 0.40 s" in captured.out.splitlines()[2]
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(bad) and all(e.startswith("kws predict: error: ") for e in errors)
    reasons = ("0 data bytes", "truncated header", "is a folder", "does not exist")
    for f, e, reason in zip(bad, errors, reasons, strict=True):
        assert f"error: {f}: " in e and reason in e
    assert main(["predict", "--model", str(model_run), *files, "--json"]) == 2
    results = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in results] == files and [("error" in r) for r in results] == [f in bad for f in files]
    assert main(["predict", "--model", str(model_run), *good]) == 0


@pytest.mark.parametrize("name", ["zero_data", "cut_in_fmt", "cut_in_data_header", "streamed"])
def test_stream_refuses_a_bad_recording_by_name(model_run, planted, capsys, name):
    path = planted / "yes" / f"{name}_nohash_0.wav"
    assert main(["stream", "--model", str(model_run), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kws stream: error: {path}: ") and "\n" not in err and EXPECTED[name][1] in err
