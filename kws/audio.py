"""Reading wav clips robustly: a bad file is reported with its reason, a different format is converted.

Speech Commands clips are 16 kHz mono int16, 1 s; real folders also hold empty files, files cut short by an
interrupted copy, stereo or 44.1 kHz recordings added by hand. read_audio() returns float32 mono at the requested
rate (int16 / 32768, channels averaged, resampled with a polyphase filter) and says whether it had to convert;
anything it cannot use raises UnusableAudio whose message is the reason, so a loader can skip and report it.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from kws.errors import KwsError


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


def _wav_truncation(path: Path) -> str | None:
    """For a RIFF/WAVE file: why its data chunk is shorter than its header says, or None if it is whole.

    libsndfile silently reads a cut-off wav as a shorter clip; a clip cut mid-word must not train as a full one.
    Walks the chunk list (id, little-endian size, payload padded to even) with seeks, reading a few bytes each.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not a wav container: leave the verdict to libsndfile
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - pos - 8
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                    return f"truncated: header declares {chunk_size} data bytes, file holds {available}"
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    return "truncated: no data chunk"


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


def read_audio(path: str | Path, sample_rate_hz: int = 16000) -> Audio:
    """Read any libsndfile format to mono float32 at sample_rate_hz. Raises UnusableAudio with the reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnusableAudio("empty file (0 bytes)")
        truncated = _wav_truncation(path)
        if truncated:
            raise UnusableAudio(truncated)
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except UnusableAudio:
        raise
    except (sf.LibsndfileError, RuntimeError, struct.error) as e:
        raise UnusableAudio(f"not readable audio ({str(e).splitlines()[0].replace(str(path), 'file')})") from None
    except OSError as e:
        raise UnusableAudio(f"cannot read ({e.strerror or e})") from None
    frames, channels = data.shape
    if frames == 0:
        raise UnusableAudio("no samples")
    if not np.isfinite(data).all():
        raise UnusableAudio("contains NaN or infinite samples")
    mono = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
    samples = resample(mono, int(rate), sample_rate_hz)
    return Audio(samples, sample_rate_hz, int(rate), channels, frames)


def read_clip(path: str | Path, sample_rate_hz: int, num_samples: int) -> tuple[np.ndarray, bool]:
    """A fixed-length clip: (float32 (num_samples,), converted). Raises UnusableAudio with the reason."""
    audio = read_audio(path, sample_rate_hz)
    return fit_length(audio.samples, num_samples), audio.converted
