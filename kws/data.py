"""The Speech Commands dataset layout as training data: splits and the 12-class task (features: kws.features).

Dataset folder (v0.01 and v0.02, Warden 2018, arXiv 1804.03209): one folder per word, `_background_noise_/` with
long noise recordings, and validation_list.txt / testing_list.txt naming held-out files. Without the lists a file
goes to a split by the SHA1 of its name with `_nohash_*` stripped (TensorFlow speech_commands `which_set`), so all
clips of one speaker land in the same split.

The task (Hello Edge, Zhang et al. 2017): `_silence_`, `_unknown_` and the keywords; per split, unknown clips drawn
from the other words and silence clips cut from the noise recordings, each silence_percent / unknown_percent of the
keyword-clip count. Everything is deterministic given TaskConfig.seed. Unusable files are skipped; they and the
files converted (other rate / channel count), zero-padded (shorter than a clip) or cropped are listed by name with
their reason in Dataset.issues (kws.audio.AudioIssues); AudioIssues.report() prints its one-line summary and records
the list in a run directory (audio_issues.json).

"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from kws.audio import AudioIssues, UnusableAudio, read_audio, read_clip
from kws.errors import KwsError, known_fields
from kws.frontend import FrontendConfig

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
NOISE_DIR = "_background_noise_"
SPLITS = ("train", "validation", "test")
LIST_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # TensorFlow speech_commands constant of the hash split
FIX_HINT = "run `kws data download --out DIR` (official set) or `kws data synth --out DIR` (offline) and pass DIR"


@dataclass(frozen=True, kw_only=True)
class TaskConfig:
    """Which words are classes, how much silence / unknown each split gets, and the seed that picks them."""

    words: tuple[str, ...] = WORDS
    silence_percent: float = 10.0  # of the keyword-clip count of each split
    unknown_percent: float = 10.0
    seed: int = 59185
    validation_percent: float = 10.0  # only for the hash split (a folder without list files)
    testing_percent: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(self.words))
        if not self.words or len(set(self.words)) != len(self.words) or any(w.startswith("_") for w in self.words):
            raise KwsError(f"task: words must be distinct folder names not starting with '_', got {self.words}")
        if min(self.silence_percent, self.unknown_percent, self.validation_percent, self.testing_percent) < 0:
            raise KwsError("task: percentages must be >= 0")

    @property
    def labels(self) -> list[str]:
        return [SILENCE, UNKNOWN, *self.words]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "words": list(self.words)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskConfig:
        return cls(**known_fields(cls, d, "task config"))


@dataclass
class Split:
    """Clips of one split; silence items have a path like "_background_noise_/<file>#<offset in samples>"."""

    name: str
    waveforms: np.ndarray  # float32 (N, clip_samples)
    labels: np.ndarray  # int64 (N,)
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Dataset:
    root: Path
    task: TaskConfig
    frontend: FrontendConfig
    labels: list[str]
    splits: dict[str, Split]
    noise: list[np.ndarray] = field(default_factory=list)  # float32 recordings at the frontend rate
    issues: AudioIssues = field(default_factory=AudioIssues)  # paths relative to root, each with its reason

    @property
    def problems(self) -> list[tuple[str, str]]:
        """The unusable (skipped) files: (path relative to root, reason)."""
        return self.issues.unusable

    @property
    def converted(self) -> int:
        """How many files were resampled or downmixed."""
        return len(self.issues.converted)

    def summary(self) -> dict[str, Any]:
        """Counts per split and label, and every skipped / converted / padded / cropped file: what a CLI prints."""
        return {
            "root": str(self.root),
            "splits": {
                n: {
                    lab: int(c)
                    for lab, c in zip(self.labels, np.bincount(s.labels, minlength=len(self.labels)), strict=True)
                }
                for n, s in self.splits.items()
            },
            "noise_files": len(self.noise),
            **self.issues.to_dict(),
        }


def speaker_of(path: str) -> str:
    """The speaker id: the file name before `_nohash_` (the whole stem if there is none)."""
    name = Path(path).name
    return name.split("_nohash_")[0] if "_nohash_" in name else Path(name).stem


def which_set(path: str, validation_percent: float = 10.0, testing_percent: float = 10.0) -> str:
    """TensorFlow speech_commands `which_set`: a stable split from SHA1 of the file name without `_nohash_*`.

    percentage = (int(sha1(name)) mod 2^27) * 100 / (2^27 - 1); below validation_percent -> validation, below
    validation + testing -> test, else train. Clips of one speaker share the hashed name, hence the split.
    """
    hash_name = re.sub(r"_nohash_.*$", "", Path(path).name)
    digest = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    percentage = (digest % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percent:
        return "validation"
    if percentage < validation_percent + testing_percent:
        return "test"
    return "train"


def _check_root(root: Path) -> None:
    if not root.is_dir():
        what = "is a file, expected a folder" if root.exists() else "does not exist"
        raise KwsError(f"dataset folder {root} {what}; {FIX_HINT}")
    if not any(d.is_dir() and not d.name.startswith((".", "_")) and any(d.glob("*.wav")) for d in root.iterdir()):
        raise KwsError(f"dataset folder {root} holds no word folders with .wav files; {FIX_HINT}")


def list_words(root: Path) -> dict[str, list[str]]:
    """Word folder -> sorted wav paths relative to root (posix), for every folder not starting with '_' or '.'.

    Every `*.wav` entry is listed, a folder or broken link too, so that the reader names it instead of dropping it.
    """
    return {
        d.name: sorted(f"{d.name}/{f.name}" for f in d.iterdir() if f.suffix.lower() == ".wav")
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith((".", "_"))
    }


def check_words(data_root: str | Path, words: tuple[str, ...]) -> None:
    """Every keyword names a folder of .wav clips in the dataset (checked before the dataset loads)."""
    root = Path(data_root)
    if not root.is_dir():
        return  # load_dataset says what is wrong with the folder itself
    present = {w for w, paths in list_words(root).items() if paths}
    missing = [w for w in words if w not in present]
    if missing:
        raise KwsError(
            f"--words: no folder of .wav clips for {', '.join(missing)} in {root}; it has "
            f"{', '.join(sorted(present)) or 'none'}"
        )


def assign_splits(root: Path, paths: list[str], task: TaskConfig) -> tuple[dict[str, str], str]:
    """path -> split name, and the rule used ("lists" or "sha1")."""
    present = {s: (root / name).is_file() for s, name in LIST_FILES.items()}
    if all(present.values()):
        held = {}
        for split, name in LIST_FILES.items():
            for line in (root / name).read_text().splitlines():
                if line.strip():
                    held[line.strip().replace("\\", "/")] = split
        return {p: held.get(p, "train") for p in paths}, "lists"
    if any(present.values()):
        have = [LIST_FILES[s] for s, ok in present.items() if ok]
        raise KwsError(f"{root}: has {have[0]} but not its partner; restore both lists, or remove it for a hash split")
    return {p: which_set(p, task.validation_percent, task.testing_percent) for p in paths}, "sha1"


def load_noise(root: Path, sample_rate_hz: int, issues: AudioIssues) -> tuple[list[str], list[np.ndarray]]:
    """The usable `_background_noise_` recordings: (file names, full-length mono float32 at sample_rate_hz).
    Unusable and converted ones are noted in issues."""
    names, noise = [], []
    for f in sorted((root / NOISE_DIR).glob("*.wav")) if (root / NOISE_DIR).is_dir() else []:
        path = f"{NOISE_DIR}/{f.name}"
        try:
            audio = read_audio(f, sample_rate_hz)
        except UnusableAudio as e:
            issues.unusable.append((path, str(e)))
            continue
        names.append(f.name)
        noise.append(audio.samples)
        issues.note(path, audio)
    return names, noise


def _read_clips(root, paths, frontend, issues, progress, desc, need=None):
    """Read clips in order, skipping unusable ones, until `need` are read: (waveforms, kept paths). Every skipped,
    converted, padded or cropped file is noted in issues."""
    waves, kept = [], []
    for p in tqdm(paths, desc=desc, disable=not progress, leave=False, unit="clip"):
        if need is not None and len(kept) >= need:
            break
        try:
            clip = read_clip(root / p, frontend.sample_rate_hz, frontend.clip_samples)
        except UnusableAudio as e:
            issues.unusable.append((p, str(e)))
            continue
        waves.append(clip.samples)
        kept.append(p)
        issues.note(p, clip)
    return waves, kept


def _silence(noise, names, count, frontend, rng):
    """count clips cut from random noise recordings at random offsets, scaled by a volume U(0, 1)."""
    n = frontend.clip_samples
    waves, paths = [], []
    for _ in range(count):
        i = int(rng.integers(len(noise)))
        offset = int(rng.integers(max(len(noise[i]) - n, 0) + 1))
        clip = np.pad(noise[i][offset : offset + n], (0, max(0, n - len(noise[i]))))
        waves.append((clip * rng.uniform(0.0, 1.0)).astype(np.float32))
        paths.append(f"{NOISE_DIR}/{names[i]}#{offset}")
    return waves, paths


def load_dataset(
    root: str | Path,
    task: TaskConfig = TaskConfig(),
    frontend: FrontendConfig = FrontendConfig(),
    splits: tuple[str, ...] = SPLITS,
    progress: bool = True,
) -> Dataset:
    """Load a Speech Commands dataset folder as the task's splits (waveforms in memory, features not computed)."""
    root = Path(root)
    _check_root(root)
    if set(splits) - set(SPLITS):
        raise KwsError(f"load_dataset: unknown split(s) {sorted(set(splits) - set(SPLITS))}; choose from {SPLITS}")
    words = list_words(root)
    missing = [w for w in task.words if not words.get(w)]
    if missing:
        raise KwsError(f"{root}: no clips for keyword(s) {missing}; check --words or the dataset folder")
    all_paths = [p for ps in words.values() for p in ps]
    split_of, _ = assign_splits(root, all_paths, task)
    labels = task.labels
    index = {w: labels.index(w) for w in task.words}
    issues = AudioIssues()
    noise_names, noise = load_noise(root, frontend.sample_rate_hz, issues)
    if task.silence_percent > 0 and not noise:
        raise KwsError(
            f"{root}/{NOISE_DIR} has no usable noise recordings, and the _silence_ class is cut from them; add .wav "
            "noise recordings there (the official dataset has 6; `kws data check DIR` names the unusable ones)"
        )
    out = {}
    for k, name in enumerate(SPLITS):
        if name not in splits:
            continue
        rng = np.random.default_rng([task.seed, k])
        known = [p for p in all_paths if split_of[p] == name and p.split("/")[0] in index]
        others = [p for p in all_paths if split_of[p] == name and p.split("/")[0] not in index]
        waves, kept = _read_clips(root, known, frontend, issues, progress, f"{name} keywords")
        y = [index[p.split("/")[0]] for p in kept]
        n_unknown = math.ceil(len(kept) * task.unknown_percent / 100)
        n_silence = math.ceil(len(kept) * task.silence_percent / 100)
        order = [others[i] for i in rng.permutation(len(others))]
        u_waves, u_kept = _read_clips(root, order, frontend, issues, progress, f"{name} unknown", n_unknown)
        s_waves, s_paths = _silence(noise, noise_names, n_silence, frontend, rng)
        all_waves = waves + u_waves + s_waves
        out[name] = Split(
            name=name,
            waveforms=np.stack(all_waves) if all_waves else np.zeros((0, frontend.clip_samples), np.float32),
            labels=np.array(y + [1] * len(u_kept) + [0] * len(s_paths), dtype=np.int64),
            paths=kept + u_kept + s_paths,
        )
    return Dataset(root, task, frontend, labels, out, noise, issues)


def load_test_set(
    root: str | Path, frontend: FrontendConfig = FrontendConfig(), labels: list[str] | None = None
) -> Dataset:
    """The official test-set layout (speech_commands_test_set_v0.02): one folder per label, `_silence_/` and
    `_unknown_/` included, every clip used as is. Returns a Dataset with the single split "test"."""
    root = Path(root)
    labels = list(labels) if labels is not None else TaskConfig().labels
    if not root.is_dir():
        what = "is a file, expected a folder" if root.exists() else "does not exist"
        raise KwsError(
            f"test-set folder {root} {what}; run `kws data download --out DIR` (it fetches the test set too)"
        )
    folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    extra = [f for f in folders if f not in labels and f != NOISE_DIR]
    if extra or not set(folders) & set(labels):
        raise KwsError(
            f"{root}: folders {extra or folders} are not labels {labels}; is this the 12-label test-set layout?"
        )
    paths = sorted(f"{d}/{f.name}" for d in folders if d in labels for f in (root / d).glob("*.wav"))
    issues = AudioIssues()
    waves, kept = _read_clips(root, paths, frontend, issues, False, "test")
    if not kept:
        raise KwsError(f"{root}: no usable .wav files in the label folders")
    split = Split("test", np.stack(waves), np.array([labels.index(p.split("/")[0]) for p in kept], np.int64), kept)
    task = TaskConfig(words=tuple(lab for lab in labels if not lab.startswith("_")))
    return Dataset(root, task, frontend, labels, {"test": split}, [], issues)


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n indices, as class-balanced as the counts allow (round robin over classes in a seeded random order within
    each class), sorted. The fixed, named subset used e.g. for calibration or the splitting statistics."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    picked: list[int] = []
    for rank in range(max(len(p) for p in pools)):
        for pool in pools:
            if rank < len(pool) and len(picked) < n:
                picked.append(int(pool[rank]))
    return np.sort(np.array(picked, dtype=np.int64))


def check_dataset(root: str | Path, task: TaskConfig = TaskConfig(), progress: bool = False) -> dict[str, Any]:
    """Read every file of a dataset folder: clips per split and word, speakers per split, task label counts
    available, and each unusable, converted, padded or cropped file with its reason (`kws data check DIR`)."""
    root = Path(root)
    _check_root(root)
    words = list_words(root)
    all_paths = [p for ps in words.values() for p in ps]
    split_of, rule = assign_splits(root, all_paths, task)
    issues = AudioIssues()
    noise_names, noise = load_noise(root, 16000, issues)
    _, usable = _read_clips(root, all_paths, FrontendConfig(), issues, progress, "check")
    report: dict[str, Any] = {"root": str(root), "split_rule": rule, "splits": {}}
    speakers: dict[str, set[str]] = {}
    for name in SPLITS:
        mine = [p for p in usable if split_of[p] == name]
        per_word = Counter(p.split("/")[0] for p in mine)
        speakers[name] = {speaker_of(p) for p in mine}
        report["splits"][name] = {
            "clips": len(mine),
            "speakers": len(speakers[name]),
            "words": dict(sorted(per_word.items())),
            "keywords": {w: per_word.get(w, 0) for w in task.words},
            "unknown_available": sum(c for w, c in per_word.items() if w not in task.words),
        }
    shared = set.union(
        *[speakers[a] & speakers[b] for a, b in (("train", "validation"), ("train", "test"), ("validation", "test"))]
    )
    report.update(
        speakers_in_several_splits=sorted(shared),
        missing_keywords=[w for w in task.words if not words.get(w)],
        noise_files=noise_names,
        noise_seconds=round(sum(len(x) for x in noise) / 16000, 1),
        usable=len(usable),
        counts=issues.counts(),
        **issues.to_dict(),
    )
    return report
