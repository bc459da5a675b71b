"""`kws stream --model RUN_DIR_OR_TFLITE recording.wav`: keyword detections with timestamps over a long recording,
computed with the device's streaming frontend, inference schedule and recognizer (kws.stream)."""

from __future__ import annotations

import argparse
import json
import sys

from kws.cli.options import at_least, default_of
from kws.device import DeviceConfig
from kws.errors import KwsError

# flag dest -> (kws.device.DeviceConfig field, its default): the values the firmware is generated with, read from the
# (torch-free) dataclass, never retyped.
DEVICE_FLAGS = {
    dest: (field, default_of(DeviceConfig, field))
    for dest, field in (
        ("period_hops", "inference_period_hops"),
        ("window_ms", "average_window_ms"),
        ("threshold", "detection_threshold"),
        ("suppression_ms", "suppression_ms"),
        ("min_count", "minimum_count"),
    )
}


def register(sub) -> None:
    p = sub.add_parser("stream", help="detect keywords in a long recording as the device would", description=__doc__)
    p.add_argument("recording", help="wav (or any libsndfile format); resampled to the model's rate")
    p.add_argument("--model", required=True, help="a run directory (kws train) or a .tflite (kws export)")
    d = {dest: default for dest, (_, default) in DEVICE_FLAGS.items()}
    p.add_argument(
        "--threshold",
        type=float,
        default=d["threshold"],
        help="detection threshold on the window-averaged probability, in (0, 1]",
    )
    p.add_argument("--window-ms", type=int, default=d["window_ms"], help="posterior averaging window (ms)")
    p.add_argument("--suppression-ms", type=int, default=d["suppression_ms"], help="quiet time after a detection (ms)")
    p.add_argument("--min-count", type=int, default=d["min_count"], help="inferences needed in the window (>= 1)")
    p.add_argument(
        "--period-hops", type=int, default=d["period_hops"], help="one inference every N hops of the frontend (20 ms)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def _check_flags(args: argparse.Namespace) -> None:
    """Each bad value named by its flag (DeviceConfig would name its field)."""
    if not 0 < args.threshold <= 1:
        raise KwsError(f"--threshold {args.threshold}: must be in (0, 1], a probability averaged over --window-ms")
    at_least("--window-ms", args.window_ms)
    at_least("--suppression-ms", args.suppression_ms, 0)
    at_least("--min-count", args.min_count)
    at_least("--period-hops", args.period_hops)


def run(args: argparse.Namespace) -> int:
    from kws.audio import UnusableAudio, read_audio
    from kws.stream import detect, load_scorer

    _check_flags(args)
    device = DeviceConfig(**{field: getattr(args, dest) for dest, (field, _) in DEVICE_FLAGS.items()})
    scorer = load_scorer(args.model)
    try:
        audio = read_audio(args.recording, scorer.frontend.sample_rate_hz)
    except UnusableAudio as e:
        raise KwsError(f"{args.recording}: {e}; give a readable recording") from None
    if audio.converted:
        print(f"kws stream: note: {args.recording}: {audio.conversion}", file=sys.stderr)
    seconds, clip_ms = len(audio.samples) / scorer.frontend.sample_rate_hz, scorer.frontend.clip_ms
    if len(audio.samples) < scorer.frontend.clip_samples:
        raise KwsError(f"{args.recording}: {seconds:.2f} s is shorter than one {clip_ms} ms model input")
    detections, summary = detect(audio.samples, scorer, device)
    if args.json:
        print(json.dumps(dict(summary, detections=[d.__dict__ for d in detections]), indent=1))
        return 0
    print(
        f"{args.recording}: {summary['duration_s']:.1f} s, {summary['inferences']} inferences "
        f"(one per {summary['period_ms']} ms), {len(detections)} detections",
        file=sys.stderr,
    )
    for d in detections:
        print(f"{d.time_ms / 1000:9.2f} s  {d.label:<10} {d.score:.2f}")
    return 0
