"""Keyword spotting over a long recording, the way the device does it: streaming frontend + posterior smoothing.

The firmware (firmware_stub/src/kws_app.c) computes one MFCC frame per hop, keeps the last num_frames frames,
runs the model every DeviceConfig.inference_period_hops hops once a full input is buffered, and feeds the int8
scores to its recognizer (kws_recognizer.c). This module reproduces that schedule and recognizer in Python:
Recognizer mirrors the C one exactly (integer arithmetic, same queue, same rules), so a score sequence gives the
same detections on both sides (tests/test_stream.py checks this against the compiled C recognizer).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws import frontend as fe
from kws.device import DeviceConfig
from kws.errors import KwsError
from kws.firmware import DEFAULT_OUTPUT_SCALE, DEFAULT_OUTPUT_ZERO_POINT

FRAMES_PER_CHUNK = 2048  # frames of MFCC computed at once over a long recording (bounds memory to ~20 MB)


@dataclass(frozen=True)
class Recognition:
    """One recognizer verdict: top label index (-1 on error), its average score in int8 steps above the zero point,
    and whether this inference is a new detection."""

    label: int
    score_q: int
    is_new: bool


@dataclass(frozen=True)
class Detection:
    time_ms: int  # audio time of the newest sample of the detecting input
    label: str
    score: float  # average probability over the window (score_q * output scale)


class Recognizer:
    """kws_recognizer.c in Python: average int8 scores over the last window_ms, detect the top keyword when its
    average (steps above zero_point, truncated toward zero) reaches threshold_q over at least min_count
    inferences, then stay quiet for suppression_ms. The queue holds `capacity` entries (oldest dropped)."""

    def __init__(
        self,
        *,
        num_labels: int,
        is_keyword: Sequence[bool],
        window_ms: int,
        threshold_q: int,
        suppression_ms: int,
        min_count: int,
        zero_point: int,
        capacity: int,
    ) -> None:
        if len(is_keyword) != num_labels:
            raise KwsError(f"recognizer: {len(is_keyword)} keyword flags for {num_labels} labels")
        self.num_labels, self.is_keyword = num_labels, list(is_keyword)
        self.window_ms, self.threshold_q, self.suppression_ms = window_ms, threshold_q, suppression_ms
        self.min_count, self.zero_point = min_count, zero_point
        self.queue: deque[tuple[int, np.ndarray]] = deque(maxlen=capacity)
        self.last_time_ms: int | None = None
        self.last_detection_ms: int | None = None

    @classmethod
    def for_labels(
        cls,
        labels: Sequence[str],
        device: DeviceConfig,
        frontend: fe.FrontendConfig,
        output_scale: float = DEFAULT_OUTPUT_SCALE,
        output_zero_point: int = DEFAULT_OUTPUT_ZERO_POINT,
    ) -> Recognizer:
        """The recognizer the generated kws_settings.h configures (labels starting with '_' are not keywords)."""
        return cls(
            num_labels=len(labels),
            is_keyword=[not lab.startswith("_") for lab in labels],
            window_ms=device.average_window_ms,
            threshold_q=device.threshold_q(output_scale),
            suppression_ms=device.suppression_ms,
            min_count=device.minimum_count,
            zero_point=output_zero_point,
            capacity=device.queue_capacity(frontend),
        )

    def process(self, scores: Sequence[int], time_ms: int) -> Recognition:
        """Add one inference's int8 scores at audio time time_ms (ms, non-decreasing) and return the verdict."""
        if self.last_time_ms is not None and time_ms < self.last_time_ms:
            return Recognition(-1, 0, False)
        self.last_time_ms = time_ms
        self.queue.append((time_ms, np.asarray(scores, dtype=np.int64)))
        while len(self.queue) > 1 and self.queue[0][0] + self.window_ms <= time_ms:
            self.queue.popleft()
        sums = sum(s for _, s in self.queue) - self.zero_point * len(self.queue)
        top = int(np.argmax(sums))  # first maximum, like the C loop
        total, n = int(sums[top]), len(self.queue)
        score_q = abs(total) // n * (1 if total >= 0 else -1)  # C integer division truncates toward zero
        if n < self.min_count or score_q < self.threshold_q or not self.is_keyword[top]:
            return Recognition(top, score_q, False)
        if self.last_detection_ms is not None and time_ms - self.last_detection_ms < self.suppression_ms:
            return Recognition(top, score_q, False)
        self.last_detection_ms = time_ms
        return Recognition(top, score_q, True)


def stream_features(waveform: np.ndarray, frontend: fe.FrontendConfig = fe.FrontendConfig()) -> np.ndarray:
    """MFCC frames (frames, coefficients) of a recording of any length, frame k from samples [k hop, k hop + win),
    the frames the device's streaming frontend produces. Computed in chunks so hours of audio fit in memory."""
    x = np.asarray(waveform, dtype=np.float32)
    total = fe.frame_count(frontend, len(x))
    hop, win = frontend.hop_samples, frontend.window_samples
    chunks = []
    for start in range(0, total, FRAMES_PER_CHUNK):
        n = min(FRAMES_PER_CHUNK, total - start)
        chunks.append(fe.compute_mfcc(x[start * hop : (start + n - 1) * hop + win], frontend))
    return np.concatenate(chunks).astype(np.float32)


def inference_frames(num_frames_total: int, frontend: fe.FrontendConfig, device: DeviceConfig) -> list[int]:
    """Indices of the frames after which kws_loop() runs the model: its hop counter reaches the period while the
    feature ring is full."""
    out, counter = [], 0
    for f in range(num_frames_total):
        counter += 1
        if counter >= device.inference_period_hops and f + 1 >= frontend.num_frames:
            out.append(f)
            counter = 0
    return out


def frame_end_ms(frame: int, frontend: fe.FrontendConfig) -> int:
    """Audio time (ms, truncated like the C code) of the newest sample of frame `frame`."""
    return (frame * frontend.hop_samples + frontend.window_samples) * 1000 // frontend.sample_rate_hz


@dataclass
class Scorer:
    """A model as the recognizer sees it: float features (N, frames, coeffs) -> int8 scores (N, labels)."""

    labels: list[str]
    frontend: fe.FrontendConfig
    output_scale: float
    output_zero_point: int
    score: Callable[[np.ndarray], np.ndarray]


def _quantize_probs(probs: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.floor(np.asarray(probs, np.float64) / scale + 0.5) + zero_point, -128, 127).astype(np.int8)


def load_scorer(path: str | Path) -> Scorer:
    """A .tflite written by `kws export` (int8 scores from the model's own output quantization) or a run directory
    of `kws train` (torch softmax quantized like an int8 softmax: scale 1/256, zero point -128)."""
    path = Path(path)
    if path.suffix == ".tflite":
        from kws.export import TFLiteModel

        m = TFLiteModel(path)
        scale, zp = (m.output_scale, m.output_zero_point) if m.output_scale else (DEFAULT_OUTPUT_SCALE, -128)
        return Scorer(m.labels, m.frontend, scale, zp, lambda x: _quantize_probs(m.predict(x), scale, zp))
    if not path.is_dir():
        what = "is neither a .tflite file nor a run directory" if path.exists() else "does not exist"
        raise KwsError(f"--model: {path} {what}; give a run directory (kws train) or a .tflite (kws export)")
    import torch

    from kws.checkpoint import load_run

    run = load_run(path)

    def score(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            probs = torch.softmax(run.model(torch.from_numpy(np.asarray(x, np.float32))), dim=-1).numpy()
        return _quantize_probs(probs, DEFAULT_OUTPUT_SCALE, DEFAULT_OUTPUT_ZERO_POINT)

    return Scorer(list(run.labels), run.frontend, DEFAULT_OUTPUT_SCALE, DEFAULT_OUTPUT_ZERO_POINT, score)


def detect(
    waveform: np.ndarray, scorer: Scorer, device: DeviceConfig = DeviceConfig(), batch_size: int = 256
) -> tuple[list[Detection], dict]:
    """Run the device pipeline over waveform (float32 in [-1, 1] at the scorer's sample rate).

    Returns the detections and a summary (inferences, duration). Inputs are batched through the model; the
    recognizer then sees the scores in time order, exactly as on the device.
    """
    cfg = scorer.frontend
    if len(waveform) < cfg.clip_samples:
        raise KwsError(f"recording: {len(waveform)} samples is shorter than one {cfg.clip_ms} ms model input")
    frames = stream_features(waveform, cfg)
    at = inference_frames(len(frames), cfg, device)
    rec = Recognizer.for_labels(scorer.labels, device, cfg, scorer.output_scale, scorer.output_zero_point)
    detections = []
    for b in range(0, len(at), batch_size):
        batch = at[b : b + batch_size]
        inputs = np.stack([frames[f - cfg.num_frames + 1 : f + 1] for f in batch])
        for f, scores in zip(batch, scorer.score(inputs), strict=True):
            t = frame_end_ms(f, cfg)
            r = rec.process(scores, t)
            if r.is_new:
                detections.append(Detection(t, scorer.labels[r.label], r.score_q * scorer.output_scale))
    summary = dict(
        inferences=len(at),
        duration_s=len(waveform) / cfg.sample_rate_hz,
        period_ms=math.floor(device.inference_period_hops * cfg.hop_ms),
    )
    return detections, summary
