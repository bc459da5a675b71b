"""`kws stream --model RUN_DIR_OR_TFLITE recording.wav`: keyword detections with timestamps over a long recording,
computed with the device's streaming frontend, inference schedule and recognizer (kws.stream)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser("stream", help="detect keywords in a long recording as the device would", description=__doc__)
    p.add_argument("recording", help="wav (or any libsndfile format); resampled to the model's rate")
    p.add_argument("--model", required=True, help="a run directory (kws train) or a .tflite (kws export)")
    # Defaults (None) are DeviceConfig's, the values the firmware is generated with.
    p.add_argument("--threshold", type=float, help="detection threshold on the averaged probability (0.7)")
    p.add_argument("--window-ms", type=int, help="posterior averaging window (1000)")
    p.add_argument("--suppression-ms", type=int, help="quiet time after a detection (1500)")
    p.add_argument("--min-count", type=int, help="inferences needed in the window (3)")
    p.add_argument("--period-hops", type=int, help="one inference every N hops of 20 ms (10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kws.audio import UnusableAudio, read_audio
    from kws.errors import KwsError
    from kws.firmware import DeviceConfig
    from kws.stream import detect, load_scorer

    given = dict(
        inference_period_hops=args.period_hops,
        average_window_ms=args.window_ms,
        detection_threshold=args.threshold,
        suppression_ms=args.suppression_ms,
        minimum_count=args.min_count,
    )
    device = DeviceConfig(**{k: v for k, v in given.items() if v is not None})
    scorer = load_scorer(args.model)
    try:
        audio = read_audio(args.recording, scorer.frontend.sample_rate_hz)
    except UnusableAudio as e:
        raise KwsError(f"{args.recording}: {e}") from None
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
