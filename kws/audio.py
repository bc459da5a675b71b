"""Reading wav clips robustly: a bad file is reported with its reason, a different format is converted.

Speech Commands clips are 16 kHz mono int16, 1 s; real folders also hold empty files, files cut short by an
interrupted copy, stereo or 44.1 kHz recordings added by hand. read_audio() returns float32 mono at the requested
rate (int16 / 32768, channels averaged, resampled with a polyphase filter) and says whether it had to convert;
anything it cannot use raises UnusableAudio whose message is the reason, so a loader can skip and report it.
read_clip() also says whether it padded or cropped the clip to the model's length, and AudioIssues collects, per
file, what a loader skipped, converted, padded or cropped: nothing is dropped or changed without a name.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from kws.errors import KwsError
from kws.files import atomic_write_json

AUDIO_ISSUES_FILE = "audio_issues.json"  # in a run directory: the files its dataset skipped, converted, padded, cropped
ISSUE_KINDS = ("unusable", "converted", "padded", "cropped")
WAV_HEADER_BYTES = 44  # RIFF + WAVE + a 16-byte fmt chunk + the data chunk header
PCM_FORMATS = (1, 3, 0xFFFE)  # integer PCM, IEEE float, WAVE_FORMAT_EXTENSIBLE: whole frames of block_align bytes


class UnusableAudio(KwsError):
    """A file that cannot be used as audio; the message is the reason (one line, without the path)."""


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples at the requested rate, and what the file held before conversion."""

    samples: np.ndarray
    sample_rate_hz: int
    source_rate_hz: int
    source_channels: int
    source_frames: int

    @property
    def converted(self) -> bool:
        """True if the file's rate or channel count differed from what was asked for."""
        return self.source_channels != 1 or self.source_rate_hz != self.sample_rate_hz

    @property
    def conversion(self) -> str:
        """What was converted, e.g. "2 channels averaged to mono, resampled 44100 -> 16000 Hz" ("" if nothing)."""
        parts = [f"{self.source_channels} channels averaged to mono"] if self.source_channels != 1 else []
        if self.source_rate_hz != self.sample_rate_hz:
            parts.append(f"resampled {self.source_rate_hz} -> {self.sample_rate_hz} Hz")
        return ", ".join(parts)


def _fmt_problem(payload: bytes) -> tuple[str | None, int, int]:
    """(why the fmt chunk is unusable or None, format tag, block_align in bytes)."""
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", payload[:16])
    if channels == 0:
        return "fmt chunk declares 0 channels", tag, block_align
    if rate == 0:
        return "fmt chunk declares a sample rate of 0 Hz", tag, block_align
    if tag in PCM_FORMATS and (bits == 0 or block_align == 0):
        return f"fmt chunk declares {bits} bits per sample and {block_align}-byte frames", tag, block_align
    return None, tag, block_align


def wav_header_problem(path: Path) -> str | None:
    """For a RIFF/WAVE file: why its header cannot be trusted, or None if it is sound (or not a RIFF file).

    libsndfile is lenient where a clip must not be: a data chunk that claims 0 bytes in a RIFF that claims only the
    header is "fixed" by reading the rest of the file as audio (garbage, at the header's rate), a cut-off file
    reads as a shorter clip. Walks the chunk list (id, little-endian u32 size, payload padded to even) with seeks.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if not (head.startswith(b"RIFF") or b"RIFF".startswith(head)):
            return None  # not a RIFF container: leave the verdict to libsndfile
        if len(head) < 12:
            return f"truncated header: {size} bytes, a WAV header needs {WAV_HEADER_BYTES}"
        if head[8:12] != b"WAVE":
            return None
        pos, fmt = 12, None
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"fmt ":
                payload = f.read(min(chunk_size, 40))
                if len(payload) < 16:
                    what = f"declares {chunk_size} bytes" if chunk_size < 16 else f"is cut off at byte {size}"
                    return f"truncated header: the fmt chunk {what} (16 needed)"
                problem, tag, block_align = _fmt_problem(payload)
                if problem:
                    return problem
                fmt = (tag, block_align)
            elif chunk_id == b"data":
                return _data_problem(chunk_size, size - pos - 8, fmt)
            pos += 8 + chunk_size + (chunk_size & 1)
    if fmt is None and size >= WAV_HEADER_BYTES:
        return "no fmt chunk and no data chunk"
    return f"truncated header: the file ends at byte {size}, before the data chunk"


def _data_problem(declared: int, available: int, fmt: tuple[int, int] | None) -> str | None:
    if fmt is None:
        return "no fmt chunk before the data chunk"
    if declared == 0:
        return "header declares 0 data bytes (an unfinished write?); libsndfile would read what follows as audio"
    if declared == 0xFFFFFFFF:
        return "header declares data size 0xFFFFFFFF (a streamed write never finalized); its length is unknown"
    if declared > available:
        return f"truncated: header declares {declared} data bytes, file holds {available}"
    tag, block_align = fmt
    if tag in PCM_FORMATS and declared % block_align:
        return f"truncated: {declared} data bytes is not a whole number of {block_align}-byte frames"
    return None


def resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy.signal.resample_poly, Kaiser-windowed FIR), float32."""
    if from_hz == to_hz:
        return np.asarray(x, dtype=np.float32)
    g = math.gcd(int(from_hz), int(to_hz))
    return resample_poly(x, int(to_hz) // g, int(from_hz) // g, axis=-1).astype(np.float32)


def fit_length(x: np.ndarray, num_samples: int) -> np.ndarray:
    """Zero-pad at the end or crop the end to num_samples (as TF's decode_wav(desired_samples=...) does)."""
    if len(x) >= num_samples:
        return x[:num_samples]
    return np.pad(x, (0, num_samples - len(x)))


def _open_problem(path: Path, e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "does not exist"
    if isinstance(e, IsADirectoryError) or path.is_dir():
        return "is a folder, expected an audio file"
    return f"cannot read ({e.strerror or e})"


def read_audio(path: str | Path, sample_rate_hz: int = 16000) -> Audio:
    """Read any libsndfile format to mono float32 at sample_rate_hz. Raises UnusableAudio with the reason."""
    path = Path(path)
    try:
        if path.is_dir():
            raise UnusableAudio("is a folder, expected an audio file")
        if path.stat().st_size == 0:
            raise UnusableAudio("empty file (0 bytes)")
        problem = wav_header_problem(path)
        if problem:
            raise UnusableAudio(problem)
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except UnusableAudio:
        raise
    except (sf.LibsndfileError, RuntimeError, struct.error) as e:
        raise UnusableAudio(f"not readable audio ({str(e).splitlines()[0].replace(str(path), 'file')})") from None
    except OSError as e:
        raise UnusableAudio(_open_problem(path, e)) from None
    frames, channels = data.shape
    if frames == 0:
        raise UnusableAudio("no samples")
    if not np.isfinite(data).all():
        raise UnusableAudio("contains NaN or infinite samples")
    mono = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
    samples = resample(mono, int(rate), sample_rate_hz)
    return Audio(samples, sample_rate_hz, int(rate), channels, frames)


@dataclass(frozen=True)
class Clip:
    """A clip fitted to the model's length, and what was done to it (each "" when nothing was)."""

    samples: np.ndarray  # float32 (num_samples,)
    converted: str = ""  # e.g. "2 channels averaged to mono, resampled 44100 -> 16000 Hz"
    padded: str = ""  # e.g. "0.40 s, zero-padded to 1.00 s"
    cropped: str = ""  # e.g. "1.50 s, cut to its first 1.00 s"


def read_clip(path: str | Path, sample_rate_hz: int, num_samples: int) -> Clip:
    """A fixed-length clip (zero-padded or cropped at the end) and what was done to it. Raises UnusableAudio."""
    audio = read_audio(path, sample_rate_hz)
    n = len(audio.samples)
    seconds, target = n / sample_rate_hz, num_samples / sample_rate_hz
    padded = f"{seconds:.2f} s, zero-padded to {target:.2f} s" if n < num_samples else ""
    cropped = f"{seconds:.2f} s, cut to its first {target:.2f} s" if n > num_samples else ""
    return Clip(fit_length(audio.samples, num_samples), audio.conversion, padded, cropped)


@dataclass
class AudioIssues:
    """Files a loader skipped (unusable), converted, padded or cropped: (path, reason) each, in reading order."""

    unusable: list[tuple[str, str]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    padded: list[tuple[str, str]] = field(default_factory=list)
    cropped: list[tuple[str, str]] = field(default_factory=list)

    def note(self, path: str, clip: Clip | Audio) -> None:
        """Record what was done to a usable file (a noise recording is an Audio: converted at most)."""
        if isinstance(clip, Audio):
            clip = Clip(clip.samples, clip.conversion)
        for kind in ISSUE_KINDS[1:]:
            if getattr(clip, kind):
                getattr(self, kind).append((path, getattr(clip, kind)))

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in ISSUE_KINDS}

    def summary_line(self) -> str:
        """One line: "2 skipped (unusable), 1 converted, 3 padded, 0 cropped"."""
        c = self.counts()
        return f"{c['unusable']} skipped (unusable), {c['converted']} converted, {c['padded']} padded, " + (
            f"{c['cropped']} cropped"
        )

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {kind: [{"path": p, "reason": r} for p, r in getattr(self, kind)] for kind in ISSUE_KINDS}

    def report(self, root: str | Path, run_dir: str | Path | None, verb: str) -> dict:
        """Print the one-line summary of what the loader of `root` skipped, converted, padded or cropped (stderr,
        prefixed with the verb) and, given a run directory, record the full list there. Returns the record."""
        record = {"root": str(root), "counts": self.counts(), **self.to_dict()}
        where = f"`kws data check {root}` lists them"
        if run_dir is not None:
            where = f"listed in {atomic_write_json(Path(run_dir) / AUDIO_ISSUES_FILE, record)}"
        print(f"{verb}: audio files: {self.summary_line()}; {where}", file=sys.stderr, flush=True)
        return record
