"""Streaming quality: miss rate and false alarms per hour over long recordings, the DET curve over the recognizer's
threshold, and an operating point chosen on the validation stream.

Pipeline: kws.streamsynth builds a recording; posteriors() runs the device pipeline once (streaming frontend,
inference schedule, int8 model: kws.stream); smooth() then reproduces kws_recognizer.c's averaging for one window
in a few vectorized passes, and detections_at() its threshold, min-count and suppression rules, so a threshold
sweep costs one cheap scan per threshold (tests/test_streameval.py checks it against kws.stream.Recognizer).

Scoring follows MLPerf Tiny's streaming wakeword runner (v1.3):
- a detection of keyword k within [start, end + HIT_WINDOW_S] of a spoken k is a hit for that word (further
  detections of k in the same window are the same hit, not false alarms);
- any other detection is a false alarm, debounced: one within DEBOUNCE_S of the last counted false alarm is not
  counted again;
- a detection of the wrong keyword inside a word's window is a false alarm, and the word is a miss unless it is
  also detected correctly.
FA/h divides the false alarms by the hours of audio scored (the whole recording).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws import stream
from kws.device import DeviceConfig
from kws.errors import KwsError

HIT_WINDOW_S = 1.0  # after the word's end
DEBOUNCE_S = 1.0
DEFAULT_WINDOWS_MS = (200, 500, 1000, 1500)  # 200 ms: one inference, no averaging
MIN_SWEEP_THRESHOLD = 0.3  # below this a 12-class softmax average fires on noise: not worth plotting


@dataclass
class Posteriors:
    """The model's int8 scores at each inference of a recording (what the recognizer is fed)."""

    times_ms: np.ndarray  # (N,) int64, audio time of each inference's newest sample
    scores: np.ndarray  # (N, labels) int8
    labels: list[str]
    output_scale: float
    zero_point: int
    duration_s: float

    @property
    def is_keyword(self) -> np.ndarray:
        return np.array([not lab.startswith("_") for lab in self.labels])


def posteriors(waveform: np.ndarray, scorer: stream.Scorer, device: DeviceConfig, batch: int = 512) -> Posteriors:
    """Run the streaming frontend and the model over waveform on the device's schedule (kws.stream.detect's)."""
    cfg = scorer.frontend
    if len(waveform) < cfg.clip_samples:
        raise KwsError(f"recording: {len(waveform)} samples is shorter than one {cfg.clip_ms} ms model input")
    frames = stream.stream_features(waveform, cfg)
    at = stream.inference_frames(len(frames), cfg, device)
    out = []
    for b in range(0, len(at), batch):
        idx = at[b : b + batch]
        out.append(np.asarray(scorer.score(np.stack([frames[f - cfg.num_frames + 1 : f + 1] for f in idx])), np.int8))
    times = np.array([stream.frame_end_ms(f, cfg) for f in at], np.int64)
    return Posteriors(
        times,
        np.concatenate(out),
        list(scorer.labels),
        scorer.output_scale,
        scorer.output_zero_point,
        len(waveform) / cfg.sample_rate_hz,
    )


@dataclass
class Smoothed:
    """The recognizer's averaged verdict at each inference, before its threshold: top label, its average in int8
    steps above the zero point (truncated toward zero, like C) and how many inferences were averaged."""

    times_ms: np.ndarray
    top: np.ndarray
    score_q: np.ndarray
    count: np.ndarray


def smooth(post: Posteriors, window_ms: int, capacity: int) -> Smoothed:
    """kws_recognizer_process's queue and averages for every inference at once (strictly increasing times).

    After inference i the queue holds inferences lo..i: the last `capacity`, minus those with t + window <= t_i.
    """
    t = post.times_ms
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise KwsError("smooth: inference times must increase")
    i = np.arange(len(t))
    lo = np.maximum(i - capacity + 1, np.searchsorted(t, t - window_ms, side="right"))
    lo = np.minimum(lo, i)
    c = np.concatenate([np.zeros((1, post.scores.shape[1]), np.int64), np.cumsum(post.scores.astype(np.int64), 0)])
    n = (i - lo + 1).astype(np.int64)
    sums = c[i + 1] - c[lo] - post.zero_point * n[:, None]
    top = np.argmax(sums, axis=1)  # first maximum, like the C loop
    best = sums[i, top]
    score_q = np.sign(best) * (np.abs(best) // n)
    return Smoothed(t, top, score_q, n)


def detections_at(
    sm: Smoothed, threshold_q: int, min_count: int, suppression_ms: int, is_keyword: np.ndarray
) -> list[tuple[int, int]]:
    """(time_ms, label index) of each new detection for one threshold: the recognizer's rules after averaging."""
    ok = np.flatnonzero((sm.count >= min_count) & (sm.score_q >= threshold_q) & is_keyword[sm.top])
    out, last = [], None
    for k in ok:
        t = int(sm.times_ms[k])
        if last is not None and t - last < suppression_ms:
            continue
        last = t
        out.append((t, int(sm.top[k])))
    return out


def score_detections(
    truth: Sequence[tuple[str, float, float]],
    detections: Sequence[tuple[float, str]],
    duration_s: float,
    negatives: Sequence[tuple[str, float, float]] = (),
) -> dict:
    """MLPerf-Tiny-style scoring (module docstring). truth: (keyword, start_s, end_s); detections: (time_s,
    keyword); negatives: (what, start_s, end_s) of non-keyword speech, only to name what each false alarm hit."""
    truth = sorted(truth, key=lambda w: w[1])
    starts = [w[1] for w in truth]
    longest = max((e - s for _, s, e in truth), default=0.0) + HIT_WINDOW_S
    hit = [False] * len(truth)
    false_alarms, last_fa = [], None
    confusions: dict[str, Counter] = defaultdict(Counter)
    sources: Counter = Counter()
    for t, label in sorted(detections):
        inside, j = [], bisect.bisect_right(starts, t) - 1
        while j >= 0 and starts[j] >= t - longest:
            if t <= truth[j][2] + HIT_WINDOW_S:
                inside.append(j)
            j -= 1
        inside.reverse()
        same = [j for j in inside if truth[j][0] == label]
        if same:
            hit[next((j for j in same if not hit[j]), same[0])] = True
            continue
        if last_fa is not None and t - last_fa < DEBOUNCE_S:
            continue
        last_fa = t
        false_alarms.append((t, label))
        if inside:
            confusions[truth[inside[0]][0]][label] += 1
        else:
            near = [w for w, s, e in negatives if s <= t <= e + HIT_WINDOW_S]
            sources[f"{near[0]} (unknown speech)" if near else "noise / silence"] += 1
    hours = duration_s / 3600.0
    per_keyword = {}
    for kw in sorted({w[0] for w in truth} | {lab for _, lab in false_alarms}):
        n = sum(w[0] == kw for w in truth)
        missed = sum(w[0] == kw and not h for w, h in zip(truth, hit, strict=True))
        fa = sum(lab == kw for _, lab in false_alarms)
        per_keyword[kw] = dict(
            words=n, misses=missed, miss_rate=missed / n if n else None, false_alarms=fa, fa_per_hour=fa / hours
        )
    misses = hit.count(False)
    return dict(
        hours=hours,
        words=len(truth),
        hits=len(truth) - misses,
        misses=misses,
        miss_rate=misses / len(truth) if truth else 0.0,
        false_alarms=len(false_alarms),
        fa_per_hour=len(false_alarms) / hours,
        per_keyword=per_keyword,
        confusions={k: dict(v) for k, v in sorted(confusions.items())},
        fa_sources=dict(sources.most_common()),
    )


def _labelled(dets: list[tuple[int, int]], labels: list[str]) -> list[tuple[float, str]]:
    return [(t / 1000.0, labels[k]) for t, k in dets]


def device_for(device: DeviceConfig, window_ms: int, frontend) -> DeviceConfig:
    """device with this averaging window, and its minimum_count lowered to the inferences the window can hold
    (ceil(window / period)), so that a short window can fire at all."""
    period_ms = device.inference_period_hops * frontend.hop_samples * 1000 / frontend.sample_rate_hz
    fits = max(1, int(np.ceil(window_ms / period_ms - 1e-9)))
    return dataclasses.replace(device, average_window_ms=int(window_ms), minimum_count=min(device.minimum_count, fits))


def sweep(
    post: Posteriors,
    truth: Sequence[tuple[str, float, float]],
    device: DeviceConfig,
    frontend,
    windows_ms: Sequence[int] = DEFAULT_WINDOWS_MS,
) -> list[dict]:
    """(window, threshold) -> miss rate and FA/h, for every threshold step from MIN_SWEEP_THRESHOLD to 1."""
    q_min = max(1, round(MIN_SWEEP_THRESHOLD / post.output_scale))
    q_max = round(1.0 / post.output_scale)
    points = []
    for w in windows_ms:
        dev = device_for(device, w, frontend)
        sm = smooth(post, int(w), dev.queue_capacity(frontend))
        for q in range(q_min, q_max + 1):
            dets = detections_at(sm, q, dev.minimum_count, dev.suppression_ms, post.is_keyword)
            s = score_detections(truth, _labelled(dets, post.labels), post.duration_s)
            points.append(
                dict(
                    window_ms=int(w),
                    minimum_count=dev.minimum_count,
                    threshold_q=q,
                    threshold=q * post.output_scale,
                    miss_rate=s["miss_rate"],
                    fa_per_hour=s["fa_per_hour"],
                    false_alarms=s["false_alarms"],
                    misses=s["misses"],
                )
            )
    return points


def choose_operating_point(points: Sequence[dict], target_fa_per_hour: float) -> dict:
    """The lowest miss rate among the points with FA/h <= target that detect at least one word (ties: fewer
    false alarms, then the higher threshold, then the shorter window). When none meets the target (on a short
    stream one false alarm may already exceed it): the point with the fewest false alarms that detects
    something, with meets_target False."""
    live = [p for p in points if p["miss_rate"] < 1.0] or list(points)  # "never fire" meets any FA target
    ok = [p for p in live if p["fa_per_hour"] <= target_fa_per_hour]
    if ok:
        best = min(ok, key=lambda p: (p["miss_rate"], p["fa_per_hour"], -p["threshold_q"], p["window_ms"]))
    else:
        best = min(live, key=lambda p: (p["fa_per_hour"], p["miss_rate"], -p["threshold_q"], p["window_ms"]))
    return dict(best, meets_target=bool(ok), target_fa_per_hour=target_fa_per_hour)


def miss_at_fa(points: Sequence[dict], fa_per_hour: float) -> float | None:
    """The lowest miss rate on the curve at FA/h <= fa_per_hour (None if no point gets there)."""
    ok = [p["miss_rate"] for p in points if p["fa_per_hour"] <= fa_per_hour]
    return min(ok) if ok else None


def fa_at_miss(points: Sequence[dict], miss_rate: float) -> float | None:
    """The lowest FA/h on the curve at miss rate <= miss_rate (None if no point gets there)."""
    ok = [p["fa_per_hour"] for p in points if p["miss_rate"] <= miss_rate]
    return min(ok) if ok else None


def score_at(post: Posteriors, recording, device: DeviceConfig, frontend, window_ms: int, threshold_q: int) -> dict:
    """The full score (per keyword, confusions, false-alarm sources) of one recording at one operating point."""
    dev = device_for(device, window_ms, frontend)
    sm = smooth(post, int(window_ms), dev.queue_capacity(frontend))
    dets = detections_at(sm, threshold_q, dev.minimum_count, dev.suppression_ms, post.is_keyword)
    sr = recording.config.sample_rate_hz
    negatives = [
        (e.label, e.word_start_sample / sr, e.word_end_sample / sr) for e in recording.events if e.kind != "keyword"
    ]
    return score_detections(recording.truth, _labelled(dets, post.labels), post.duration_s, negatives)


def plot_det(curves: dict[str, list[dict]], path: Path, hours: dict[str, float], target: float | None = None) -> Path:
    """DET curves (miss rate vs FA/h, log axis) per (stream, window); FA/h 0 is drawn at half of one FA per hour
    scored. MLPerf Tiny's pass region (<= 24 FA/h, <= 16% misses) is shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    floor = min(0.5 / h for h in hours.values())
    for name, points in curves.items():
        style = "-" if name.startswith("test") else "--"
        for w in sorted({p["window_ms"] for p in points}):
            pts = sorted((p for p in points if p["window_ms"] == w), key=lambda p: p["threshold_q"])
            x = [max(p["fa_per_hour"], floor) for p in pts]
            ax.plot(x, [100 * p["miss_rate"] for p in pts], style, label=f"{name}, window {w} ms")
    ax.axvspan(floor * 0.8, 24, ymax=16 / 100, color="green", alpha=0.08, label="MLPerf Tiny pass")
    if target is not None:
        ax.axvline(target, color="grey", lw=0.8, ls=":", label=f"target {target:g} FA/h")
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel(f"false alarms per hour (0 drawn at {floor:.2g})")
    ax.set_ylabel("miss rate (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
