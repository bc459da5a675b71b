"""`kws stream-eval --model M --data DIR --out DIR`: streaming quality on long synthesized recordings (validation
and test splits), the DET curve over the recognizer's threshold, and an operating point chosen on validation for
--target-fa-per-hour (kws.streamreport). `kws export --operating-point DIR/operating_point.json` then writes it
into kws_settings.h."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from kws.cli.options import at_least
from kws.errors import KwsError


def register(sub) -> None:
    p = sub.add_parser(
        "stream-eval", help="miss rate and false alarms per hour on long recordings; pick an operating point"
    )
    p.add_argument("--model", required=True, help="a .tflite (kws export; the int8 model the device runs) or run dir")
    p.add_argument("--data", required=True, metavar="DIR", help="Speech Commands folder with its validation/test lists")
    p.add_argument("--out", required=True, metavar="DIR", help="writes operating_point.json, stream_eval.json, det.png")
    p.add_argument("--snr-db", type=float, default=10.0, help="speech-to-noise ratio of the background noise (dB)")
    p.add_argument("--clean", action="store_true", help="no background noise (overrides --snr-db)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip order, gaps and noise offsets")
    p.add_argument("--minutes", type=float, help="cap each stream's length (default: as long as the split allows)")
    p.add_argument("--espeak-sentences", type=int, default=0, help="espeak-ng sentences as extra negatives (0-16)")
    p.add_argument("--unknown-per-keyword", type=float, default=1.0, help="unknown-word clips per keyword (<= split's)")
    p.add_argument("--target-fa-per-hour", type=float, default=1.0, help="false alarms per hour on validation")
    p.add_argument("--windows-ms", default="200,500,1000,1500", help="averaging windows to sweep, comma-separated")
    p.add_argument("--save-audio", action="store_true", help="also write validation.wav and test.wav")
    p.add_argument("--json", action="store_true", help="print stream_eval.json's figures (no DET points)")
    p.set_defaults(handler=run)


def _windows(text: str) -> tuple[int, ...]:
    try:
        windows = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        windows = ()
    if not windows or min(windows) < 1:
        raise KwsError(f"--windows-ms {text!r}: give comma-separated windows in ms, each >= 1 (e.g. 500,1000)")
    return windows


def _check(args: argparse.Namespace) -> None:
    if not Path(args.data).is_dir():
        raise KwsError(f"--data {args.data}: not a folder; give a Speech Commands folder")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise KwsError(f"--out {args.out} is a file, expected a folder")
    if not (math.isfinite(args.target_fa_per_hour) and args.target_fa_per_hour > 0):
        raise KwsError(f"--target-fa-per-hour {args.target_fa_per_hour}: must be > 0")
    if not math.isfinite(args.snr_db):
        raise KwsError(f"--snr-db {args.snr_db}: must be finite (use --clean for no noise)")
    if args.minutes is not None and not args.minutes > 0:
        raise KwsError(f"--minutes {args.minutes}: must be > 0")
    at_least("--espeak-sentences", args.espeak_sentences, 0)
    if not (math.isfinite(args.unknown_per_keyword) and args.unknown_per_keyword >= 0):
        raise KwsError(f"--unknown-per-keyword {args.unknown_per_keyword}: must be >= 0")


def run(args: argparse.Namespace) -> int:
    from kws.streamreport import evaluate, summary_lines
    from kws.streamsynth import SENTENCES

    _check(args)
    if args.espeak_sentences > len(SENTENCES):
        raise KwsError(f"--espeak-sentences {args.espeak_sentences}: at most {len(SENTENCES)}")
    result = evaluate(
        args.model,
        args.data,
        snr_db=None if args.clean else args.snr_db,
        seed=args.seed,
        max_minutes=args.minutes,
        espeak_sentences=args.espeak_sentences,
        unknown_per_keyword=args.unknown_per_keyword,
        windows_ms=_windows(args.windows_ms),
        target_fa_per_hour=args.target_fa_per_hour,
        out_dir=args.out,
        save_audio=args.save_audio,
    )
    if args.json:
        slim = {k: v for k, v in result.items() if k not in ("curves", "recordings")}
        slim["summary"] = {s: c["summary"] for s, c in result["curves"].items()}
        print(json.dumps(slim, indent=1))
    else:
        print("\n".join(summary_lines(result)))
    if not result["operating_point"]["meets_target"]:
        print(
            f"kws stream-eval: warning: no point reaches {args.target_fa_per_hour:g} FA/h on validation",
            file=sys.stderr,
        )
    print(f"wrote {args.out}/operating_point.json, stream_eval.json, det.png, stream_report.html", file=sys.stderr)
    return 0
