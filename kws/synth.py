"""An offline Speech-Commands-layout dataset spoken by espeak-ng, for trying the pipeline without a download.

Each "speaker" is one espeak-ng accent with one voice variant (`en-gb-x-rp+f2`), with its own base pitch
(-p, 0-99) and speed (-s, words per minute); every clip jitters both around the speaker's base. The 22,050 Hz
output is resampled to 16 kHz, trimmed of silence, scaled to a random peak and placed at a random offset in a
1 s int16 clip over a faint noise floor. Speakers, not clips, are assigned to validation / testing, so no
speaker spans two splits (the property the official `_nohash_` lists guarantee for real speech).

Synthetic speech is for exercising the pipeline, not for a deployable model: a DS-CNN trained on it reaches
about 32% on real speech (docs/device.md, measured on speech_commands_mini).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from math import gcd
from pathlib import Path

import numpy as np

from kws.errors import KwsError

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "house", "tree", "wow", "happy")
# The eight English accents of espeak-ng (Debian); "en" is British English.
ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
# Human-sounding variants only: the robotic, whispering and croaking ones would teach the model artefacts.
VARIANTS = (
    *(f"m{i}" for i in range(1, 8)),
    *(f"f{i}" for i in range(1, 6)),
    *("adam", "Andy", "Annie", "aunty", "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma"),
    *("grandpa", "john", "linda", "max", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "victor"),
)
NOISE_KINDS = ("white", "pink", "brown", "hum")
SYNTH_NOTE = (
    "Synthetic speech (espeak-ng) is for trying the pipeline end to end, not for a deployable model: "
    "a DS-CNN trained on it reaches only about 32% accuracy on real speech."
)


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """What to speak, by whom, and how the clips are placed; with the seed it fixes every output byte."""

    words: tuple[str, ...] = KEYWORDS
    unknown_words: tuple[str, ...] = UNKNOWN_WORDS
    per_word: int = 100
    seed: int = 0
    sample_rate_hz: int = 16000
    clip_ms: int = 1000
    accents: tuple[str, ...] = ACCENTS
    variants: tuple[str, ...] = VARIANTS
    pitch_range: tuple[int, int] = (25, 75)  # espeak-ng -p, 0-99, default 50: the speaker's base pitch
    pitch_jitter: int = 8  # +- per clip around the speaker's base
    speed_range_wpm: tuple[int, int] = (130, 210)  # espeak-ng -s, default 175
    speed_jitter_wpm: int = 15
    peak_range: tuple[float, float] = (0.25, 0.9)  # full scale = 1.0
    noise_floor_max: float = 0.003  # std of the white floor under each clip, drawn U(0, max)
    noise_seconds: float = 60.0  # length of each generated `_background_noise_` file
    validation_percent: float = 10.0
    testing_percent: float = 10.0
    espeak_binary: str = "espeak-ng"

    @property
    def clip_samples(self) -> int:
        return self.sample_rate_hz * self.clip_ms // 1000

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Speaker:
    voice: str  # espeak-ng -v argument, accent+variant
    speaker_id: str  # 8 hex digits, like the official dataset's speaker hashes
    pitch: int
    speed_wpm: int
    split: str


@dataclass(frozen=True, kw_only=True)
class Clip:
    """One planned utterance: everything needed to render it, so rendering is a pure function (any job order)."""

    word: str
    rel_path: str  # <word>/<speaker_id>_nohash_<n>.wav
    split: str
    voice: str
    pitch: int
    speed_wpm: int
    peak: float
    offset_fraction: float  # where in the free room of the 1 s clip the word starts, 0..1
    noise_floor: float
    noise_seed: int


def speaker_id(voice: str) -> str:
    """A stable 8-hex-digit name for a voice (independent of the seed, like a real speaker's hash)."""
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def available_voices(cfg: SynthConfig) -> list[str]:
    """accent+variant voices this espeak-ng installation really has (an unknown variant is silently ignored by
    espeak-ng, which would make two "speakers" sound identical)."""
    binary = shutil.which(cfg.espeak_binary)
    if binary is None:
        raise KwsError(
            f"{cfg.espeak_binary} not found on PATH; install it (Debian/Ubuntu: sudo apt-get install espeak-ng) "
            "or use `kws data download` for real speech"
        )
    listing = subprocess.run([binary, "--voices=variant"], capture_output=True, text=True, check=False).stdout
    have_variants = {line.split()[-1].split("/")[-1] for line in listing.splitlines()[1:] if "!v/" in line}
    accents = [a for a in cfg.accents if _voice_exists(binary, a)]
    variants = [v for v in cfg.variants if v in have_variants]
    if not accents or not variants:
        raise KwsError(
            f"{binary}: none of the English accents {cfg.accents} / variants are installed; install espeak-ng-data"
        )
    return [f"{a}+{v}" for a in accents for v in variants]


def _voice_exists(binary: str, accent: str) -> bool:
    return subprocess.run([binary, "-q", "-v", accent, "a"], capture_output=True, check=False).returncode == 0


def plan_speakers(voices: list[str], cfg: SynthConfig, rng: np.random.Generator) -> list[Speaker]:
    """Shuffle voices into splits (at least one speaker each) and draw each speaker's base pitch and speed."""
    order = rng.permutation(len(voices))
    n_val = max(1, round(len(voices) * cfg.validation_percent / 100))
    n_test = max(1, round(len(voices) * cfg.testing_percent / 100))
    if n_val + n_test >= len(voices):
        raise KwsError(f"only {len(voices)} espeak-ng voices: too few to give every split its own speakers")
    speakers = []
    for rank, i in enumerate(order):
        split = "validation" if rank < n_val else "testing" if rank < n_val + n_test else "train"
        speakers.append(
            Speaker(
                voice=voices[i],
                speaker_id=speaker_id(voices[i]),
                pitch=int(rng.integers(cfg.pitch_range[0], cfg.pitch_range[1] + 1)),
                speed_wpm=int(rng.integers(cfg.speed_range_wpm[0], cfg.speed_range_wpm[1] + 1)),
                split=split,
            )
        )
    return speakers


def plan_clips(speakers: list[Speaker], cfg: SynthConfig, rng: np.random.Generator) -> list[Clip]:
    """Every clip of the dataset; each word gets the validation / testing share of its clips exactly."""
    pools = {s: [p for p in speakers if p.split == s] for s in ("train", "validation", "testing")}
    clips = []
    for word in (*cfg.words, *cfg.unknown_words):
        n_val = round(cfg.per_word * cfg.validation_percent / 100)
        n_test = round(cfg.per_word * cfg.testing_percent / 100)
        counts = {"validation": n_val, "testing": n_test, "train": cfg.per_word - n_val - n_test}
        utterances: dict[str, int] = {}
        for split, n in counts.items():
            pool = pools[split]
            for k in rng.choice(len(pool), size=n, replace=n > len(pool)):
                s = pool[k]
                n_said = utterances.get(s.speaker_id, 0)
                utterances[s.speaker_id] = n_said + 1
                clips.append(
                    Clip(
                        word=word,
                        rel_path=f"{word}/{s.speaker_id}_nohash_{n_said}.wav",
                        split=split,
                        voice=s.voice,
                        pitch=int(np.clip(s.pitch + rng.integers(-cfg.pitch_jitter, cfg.pitch_jitter + 1), 0, 99)),
                        speed_wpm=int(s.speed_wpm + rng.integers(-cfg.speed_jitter_wpm, cfg.speed_jitter_wpm + 1)),
                        peak=float(rng.uniform(*cfg.peak_range)),
                        offset_fraction=float(rng.uniform()),
                        noise_floor=float(rng.uniform(0.0, cfg.noise_floor_max)),
                        noise_seed=int(rng.integers(2**31)),
                    )
                )
    return clips


def speak(text: str, voice: str, pitch: int, speed_wpm: int, binary: str = "espeak-ng") -> tuple[np.ndarray, int]:
    """espeak-ng's waveform for `text` as float32 in [-1, 1] and its sample rate (22,050 Hz on Debian).

    With --stdout espeak-ng streams a wav whose RIFF/data lengths are placeholders (0x7ffff000), so the header
    is parsed for the format and everything after the `data` chunk id is taken as the samples.
    """
    cmd = [binary, "--stdout", "-v", voice, "-p", str(pitch), "-s", str(speed_wpm), text]
    result = subprocess.run(cmd, capture_output=True, check=False)
    raw = result.stdout
    if result.returncode != 0 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise KwsError(f"{binary} -v {voice} {text!r} failed: {result.stderr.decode(errors='replace').strip()}")
    pos, rate = 12, 0
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            rate = int.from_bytes(raw[pos + 12 : pos + 16], "little")
        elif chunk == b"data":
            samples = np.frombuffer(raw[pos + 8 : len(raw) - (len(raw) - pos - 8) % 2], dtype="<i2")
            return samples.astype(np.float32) / 32768.0, rate
        pos += 8 + size
    raise KwsError(f"{binary} -v {voice} {text!r}: no audio in its output")


def render_clip(clip: Clip, cfg: SynthConfig) -> np.ndarray:
    """The int16 samples (clip_samples,) of one planned clip; deterministic given the clip."""
    from scipy.signal import resample_poly

    audio, rate = speak(clip.word, clip.voice, clip.pitch, clip.speed_wpm, cfg.espeak_binary)
    g = gcd(cfg.sample_rate_hz, rate)
    audio = resample_poly(audio, cfg.sample_rate_hz // g, rate // g).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max(initial=1e-9))
    if loud.size:
        audio = audio[loud[0] : loud[-1] + 1]
    audio = audio[: cfg.clip_samples]  # a very slow voice can overrun 1 s: keep the onset
    audio = audio * (clip.peak / max(float(np.abs(audio).max(initial=0.0)), 1e-9))
    noise_rng = np.random.default_rng(clip.noise_seed)
    out = noise_rng.standard_normal(cfg.clip_samples).astype(np.float32) * clip.noise_floor
    start = int(clip.offset_fraction * (cfg.clip_samples - audio.size))
    out[start : start + audio.size] += audio
    return np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)


def make_noise(kind: str, seconds: float, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A background-noise recording stand-in as float32: white, pink (1/f power), brown (1/f^2) or mains hum.

    Coloured noise shapes white noise's spectrum by f^(-alpha/2) in amplitude; hum is 50 Hz with decaying odd
    and even harmonics over a little white noise. All are scaled to an RMS of 0.1 (peaks well below 1).
    """
    n = int(seconds * sample_rate_hz)
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind in ("pink", "brown"):
        alpha = 1.0 if kind == "pink" else 2.0
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, d=1.0 / sample_rate_hz)
        f[0] = np.inf  # drop DC
        x = np.fft.irfft(spectrum * f ** (-alpha / 2), n=n)
    elif kind == "hum":
        t = np.arange(n) / sample_rate_hz
        x = sum(np.sin(2 * np.pi * 50.0 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 8))
        x = x + 0.05 * white
    else:
        raise KwsError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    x = x - x.mean()
    return (0.1 * x / max(float(np.sqrt(np.mean(x**2))), 1e-12)).astype(np.float32)


def _write_wav(path: Path, samples: np.ndarray, sample_rate_hz: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sample_rate_hz, subtype="PCM_16")


def _write_readme(root: Path, cfg: SynthConfig, n_clips: int, speakers: list[Speaker]) -> None:
    per_split = {s: sum(p.split == s for p in speakers) for s in ("train", "validation", "testing")}
    lines = [
        "# Synthetic Speech Commands (espeak-ng)",
        "",
        SYNTH_NOTE,
        "",
        f"Made by `kws data synth` with seed {cfg.seed}: {n_clips} one-second 16 kHz int16 clips, "
        f"{cfg.per_word} per word.",
        f"Keywords: {', '.join(cfg.words)}. Unknown words: {', '.join(cfg.unknown_words)}.",
        f"Speakers are espeak-ng accent+variant voices: {per_split['train']} train, {per_split['validation']} "
        f"validation, {per_split['testing']} testing; no speaker spans two splits.",
        f"`_background_noise_/` holds generated {', '.join(NOISE_KINDS)} noise; synth_config.json has the settings.",
    ]
    text = "\n".join(lines) + "\n"
    (root / "README.md").write_text(text)


def _write_dataset(
    staging: Path,
    cfg: SynthConfig,
    speakers: list[Speaker],
    clips: list[Clip],
    rng: np.random.Generator,
    workers: int,
    progress: bool,
) -> None:
    """Render every clip (in parallel), then the noise files, split lists, config JSON and README."""
    from tqdm import tqdm

    def job(clip: Clip) -> None:
        _write_wav(staging / clip.rel_path, render_clip(clip, cfg), cfg.sample_rate_hz)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # the work is espeak-ng subprocesses: threads suffice
        for _ in tqdm(
            pool.map(job, clips), total=len(clips), desc="synth", unit="clip", disable=not progress, file=sys.stderr
        ):
            pass
    for kind in NOISE_KINDS:
        noise = make_noise(kind, cfg.noise_seconds, cfg.sample_rate_hz, rng)
        _write_wav(staging / "_background_noise_" / f"{kind}_noise.wav", noise, cfg.sample_rate_hz)
    for split, list_name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        names = sorted(c.rel_path for c in clips if c.split == split)
        (staging / list_name).write_text("".join(f"{n}\n" for n in names))
    (staging / "synth_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    _write_readme(staging, cfg, len(clips), speakers)


def synthesize(
    out_dir: Path, cfg: SynthConfig = SynthConfig(), *, jobs: int | None = None, progress: bool = True
) -> dict:
    """Write a Speech-Commands-layout dataset to `out_dir`; return a summary (clips, speakers, seconds).

    Everything is planned up front from `cfg.seed` and each clip is rendered from its own plan, so the bytes do
    not depend on `jobs` or thread timing. Files are written to `<out_dir>.partial` and the folder is renamed
    into place at the end, so an interrupted run never leaves a dataset that looks complete.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise KwsError(f"--out {out_dir}: exists and is not empty; choose a new folder or delete it")
    if cfg.per_word < 1:
        raise KwsError(f"--per-word {cfg.per_word}: must be at least 1")
    if jobs is not None and jobs < 1:
        raise KwsError(f"--jobs {jobs}: must be at least 1")
    words = (*cfg.words, *cfg.unknown_words)
    if len(set(words)) != len(words) or any(not w.isalpha() for w in words):
        raise KwsError(f"--words / unknown words {words}: must be distinct single words of letters")
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    speakers = plan_speakers(available_voices(cfg), cfg, rng)
    clips = plan_clips(speakers, cfg, rng)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _write_dataset(staging, cfg, speakers, clips, rng, jobs or os.cpu_count() or 1, progress)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        out_dir.rmdir()
    os.replace(staging, out_dir)
    return {
        "out": str(out_dir),
        "clips": len(clips),
        "words": list(words),
        "speakers": {s: sum(p.split == s for p in speakers) for s in ("train", "validation", "testing")},
        "clips_per_split": {s: sum(c.split == s for c in clips) for s in ("train", "validation", "testing")},
        "seconds": round(time.perf_counter() - started, 2),
    }
