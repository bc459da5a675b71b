"""Long test recordings for streaming evaluation: one split's clips at known times over background noise.

A recording is a sequence of events separated by silence: every keyword clip of the split, its unknown-word
clips and (optionally) espeak-ng sentences, each used once, in an order drawn from the seed. Background noise from
`_background_noise_` runs under the whole recording at a stated SNR. The noise files are kept apart between the
validation and the test stream by a fixed assignment (NOISE_FILES): each split gets one colored noise and two
real-world recordings, so an operating point chosen on validation is judged on noise it never saw. (Training
augmentation may use all six; only validation and test are kept apart.)

SNR: 10 log10(P_speech / P_noise), where P_speech is the mean power of the placed clips' words (each word's span,
see word_span) and P_noise the mean power of the noise track over the whole recording; one gain for the recording.

Ground truth: each keyword's (keyword, start_s, end_s) is its word span inside the clip, placed exactly at a
sample offset (Event.start_sample + span), so the times are exact to the sample.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kws.audio import UnusableAudio, read_audio, resample
from kws.data import LIST_FILES, NOISE_DIR, WORDS
from kws.errors import KwsError

# A fixed, documented assignment; no file is in both lists.
NOISE_FILES = {
    "validation": ("white_noise.wav", "doing_the_dishes.wav", "running_tap.wav"),
    "test": ("pink_noise.wav", "dude_miaowing.wav", "exercise_bike.wav"),
}
STREAM_SPLITS = tuple(NOISE_FILES)
# Sentences without any of the ten keywords, as a speech-like negative source (espeak-ng voices, seeded).
SENTENCES = (
    "the weather was warm and the garden looked bright",
    "please bring the paper to the kitchen table",
    "my brother reads a book every evening",
    "she painted the fence with a small brush",
    "we walked along the river after lunch",
    "the train arrives at seven in the morning",
    "a quiet cat sleeps beside the window",
    "they bought fresh bread at the market",
    "the music was loud at the party last night",
    "he fixed the bicycle with a new chain",
    "the children laughed at the funny clown",
    "coffee tastes better with a little milk",
    "the phone rang twice before she answered",
    "our teacher explained the lesson slowly",
    "the wind moved the tall grass in the field",
    "i think the meeting starts at nine",
)
ESPEAK_VOICES = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland")


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    """How a recording is built. max_minutes None: every usable clip of the split (as long as it allows)."""

    split: str = "test"
    seed: int = 0
    snr_db: float | None = 10.0  # None: no noise (clean speech and digital silence)
    max_minutes: float | None = None
    min_gap_s: float = 1.0  # silence between two events, drawn uniformly in [min_gap_s, max_gap_s]
    max_gap_s: float = 3.0
    unknown_per_keyword: float = 1.0  # unknown-word clips per keyword clip (at most the split's)
    espeak_sentences: int = 0  # at most len(SENTENCES)
    sample_rate_hz: int = 16000

    def __post_init__(self) -> None:
        if self.split not in NOISE_FILES:
            raise KwsError(f"--split: {self.split!r} is not one of {', '.join(NOISE_FILES)}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise KwsError(f"--minutes: must be > 0, got {self.max_minutes}")
        if not 0 <= self.min_gap_s <= self.max_gap_s:
            raise KwsError(f"stream: need 0 <= min_gap_s <= max_gap_s, got {self.min_gap_s}, {self.max_gap_s}")
        if self.unknown_per_keyword < 0:
            raise KwsError(f"--unknown-per-keyword: must be >= 0, got {self.unknown_per_keyword}")
        if not 0 <= self.espeak_sentences <= len(SENTENCES):
            raise KwsError(f"--espeak-sentences: must be in [0, {len(SENTENCES)}], got {self.espeak_sentences}")
        if self.snr_db is not None and not math.isfinite(self.snr_db):
            raise KwsError(f"--snr-db: must be finite, got {self.snr_db}")


@dataclass(frozen=True)
class Event:
    """One placed source: its kind ("keyword", "unknown", "espeak"), word or sentence, where it came from, the
    sample where the clip starts, and the word span inside the recording (samples, end exclusive)."""

    kind: str
    label: str
    source: str
    start_sample: int
    word_start_sample: int
    word_end_sample: int


@dataclass
class Recording:
    config: StreamConfig
    samples: np.ndarray  # float32 in [-1, 1]
    events: list[Event]
    noise_files: list[str]
    noise_gain: float
    info: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.config.sample_rate_hz

    @property
    def truth(self) -> list[tuple[str, float, float]]:
        """(keyword, word start s, word end s) of every keyword, in time order."""
        sr = self.config.sample_rate_hz
        return [(e.label, e.word_start_sample / sr, e.word_end_sample / sr) for e in self.events if e.kind == "keyword"]

    def to_dict(self) -> dict:
        return dict(
            config=asdict(self.config),
            duration_s=self.duration_s,
            noise_files=self.noise_files,
            noise_gain=self.noise_gain,
            events=[asdict(e) for e in self.events],
            **self.info,
        )


def word_span(x: np.ndarray, sample_rate_hz: int, below_peak_db: float = 30.0) -> tuple[int, int]:
    """(first, end) samples of the word in a clip: the 10 ms frames whose energy is within below_peak_db of the
    loudest frame's. The whole clip when it is silent."""
    hop = sample_rate_hz // 100
    n = len(x) // hop
    if n == 0:
        return 0, len(x)
    energy = (np.asarray(x[: n * hop], np.float64).reshape(n, hop) ** 2).mean(axis=1)
    if energy.max() <= 0:
        return 0, len(x)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (-below_peak_db / 10))
    return int(loud[0] * hop), int(min(len(x), (loud[-1] + 1) * hop))


def split_clips(root: Path, split: str, words: tuple[str, ...] = WORDS) -> tuple[list[str], list[str]]:
    """(keyword clips, unknown-word clips) of a split from its list file, sorted, paths relative to root."""
    listing = root / LIST_FILES[split]
    if not listing.is_file():
        raise KwsError(f"--data: {listing} not found; streams need the official validation/testing lists")
    paths = sorted({p.strip() for p in listing.read_text().splitlines() if p.strip()})
    keywords = [p for p in paths if p.split("/")[0] in words]
    unknown = [p for p in paths if p.split("/")[0] not in words and not p.startswith("_")]
    return keywords, unknown


def _noise_track(root: Path, split: str, n: int, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """The split's noise files one after another from a seeded offset, repeated to n samples."""
    parts, names = [], []
    for name in NOISE_FILES[split]:
        try:
            parts.append(read_audio(root / NOISE_DIR / name, sr).samples)
            names.append(name)
        except UnusableAudio as e:
            raise KwsError(f"--data: {NOISE_DIR}/{name}: {e}; the {split} stream needs its noise files") from None
    loop = np.concatenate(parts)
    start = int(rng.integers(len(loop)))
    reps = math.ceil((start + n) / len(loop))
    return np.tile(loop, reps)[start : start + n].astype(np.float32), names


def _espeak(text: str, voice: str, sr: int) -> np.ndarray:
    from kws.synth import speak

    x, rate = speak(text, voice, pitch=50, speed_wpm=160)
    x = resample(x, rate, sr)
    return (x * (0.3 / max(1e-6, float(np.abs(x).max())))).astype(np.float32)  # Speech Commands' typical peak


def _sources(root: Path, cfg: StreamConfig, words: tuple[str, ...], rng: np.random.Generator) -> list[tuple]:
    """(kind, label, source) of every event, shuffled; each clip at most once."""
    keywords, unknown = split_clips(root, cfg.split, words)
    n_unknown = min(len(unknown), round(cfg.unknown_per_keyword * len(keywords)))
    unknown = [unknown[i] for i in sorted(rng.choice(len(unknown), n_unknown, replace=False))] if n_unknown else []
    items = [("keyword", p.split("/")[0], p) for p in keywords] + [("unknown", p.split("/")[0], p) for p in unknown]
    items += [("espeak", s, ESPEAK_VOICES[i % len(ESPEAK_VOICES)]) for i, s in enumerate(SENTENCES)][
        : cfg.espeak_sentences
    ]
    return [items[i] for i in rng.permutation(len(items))]


def synthesize(root: str | Path, cfg: StreamConfig = StreamConfig(), words: tuple[str, ...] = WORDS) -> Recording:
    """Build the recording of cfg.split (deterministic given cfg and the dataset)."""
    root, sr = Path(root), cfg.sample_rate_hz
    rng = np.random.default_rng([cfg.seed, STREAM_SPLITS.index(cfg.split)])
    limit = None if cfg.max_minutes is None else int(cfg.max_minutes * 60 * sr)
    pieces, events, pos, skipped = [], [], 0, []
    for kind, label, source in _sources(root, cfg, words, rng):
        gap = int(rng.uniform(cfg.min_gap_s, cfg.max_gap_s) * sr)
        if kind == "espeak":
            x = _espeak(label, source, sr)
        else:
            try:
                x = read_audio(root / source, sr).samples
            except UnusableAudio as e:
                skipped.append((source, str(e)))
                continue
        if limit is not None and pos + gap + len(x) > limit:
            break
        first, end = word_span(x, sr)
        start = pos + gap
        pieces += [np.zeros(gap, np.float32), x]
        events.append(Event(kind, label, source, start, start + first, start + end))
        pos = start + len(x)
    if not any(e.kind == "keyword" for e in events):
        raise KwsError(f"stream: no keyword clip fits in the {cfg.split} stream; raise --minutes")
    tail = int(cfg.max_gap_s * sr) + sr  # room for the last word's end + 1 s hit window
    speech = np.concatenate([*pieces, np.zeros(tail, np.float32)])
    noise_files, gain = list(NOISE_FILES[cfg.split]), 0.0
    if cfg.snr_db is not None:
        noise, noise_files = _noise_track(root, cfg.split, len(speech), sr, rng)
        p_speech = np.mean([np.mean(speech[e.word_start_sample : e.word_end_sample] ** 2) for e in events])
        p_noise = float(np.mean(noise.astype(np.float64) ** 2))
        gain = math.sqrt(p_speech / (p_noise * 10 ** (cfg.snr_db / 10))) if p_noise > 0 else 0.0
        speech = speech + np.float32(gain) * noise
    samples = np.clip(speech, -1.0, 1.0).astype(np.float32)
    info = dict(skipped=skipped, keywords=sum(e.kind == "keyword" for e in events))
    return Recording(cfg, samples, events, noise_files if cfg.snr_db is not None else [], gain, info)
