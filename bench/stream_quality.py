"""Streaming quality of exported int8 models: miss rate at 1 FA/h and FA/h at 5% misses on the test stream, at
10 dB and 20 dB SNR, beside MLPerf Tiny's streaming wakeword pass bar (<= 24 FA/h, <= 16% misses).

For each --model (a .tflite written by `kws export`) and each --snr-db, kws.streamreport.evaluate builds the
validation and test streams of --data (every clip of the split once, 1-3 s of silence between, --espeak-sentences
spoken negatives, the split's own noise files), runs the device pipeline (streaming frontend, LiteRT int8,
the recognizer kws_recognizer.c mirrors) and sweeps the recognizer's threshold for each averaging window.
Reported per (model, SNR):
- curve_test: the best over the sweep on the test stream (an oracle choice of window and threshold): miss rate
  at <= 1 FA/h and at <= 24 FA/h, FA/h at <= 5% and at <= 16% misses (None: the curve never gets there);
- at_operating_point / at_mlperf_operating_point: the (window, threshold) chosen on validation for
  --target-fa-per-hour and for 24 FA/h, and the test stream's figures there (what the device would ship), with the
  worst keywords, the wrong-keyword confusions and what the other false alarms fell on;
- the hours scored on each stream.

Run: PYTHONPATH=. .venv/bin/python bench/stream_quality.py --model EXPORT/model_int8.tflite --data DIR
     [--snr-db 10 20] [--espeak-sentences 16] [--out bench/out/stream_quality]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kws.streamreport import MLPERF_BAR, evaluate


def _worst(per_keyword: dict, n: int = 3) -> list[dict]:
    rows = [dict(keyword=k, **v) for k, v in per_keyword.items() if v["words"]]
    return sorted(rows, key=lambda r: -r["miss_rate"])[:n]


def _at(r: dict) -> dict:
    test = r["test"]
    return dict(
        target_fa_per_hour=r["target_fa_per_hour"],
        window_ms=r["device"]["average_window_ms"],
        threshold=r["operating_point"]["threshold"],
        minimum_count=r["device"]["minimum_count"],
        meets_target_on_validation=r["operating_point"]["meets_target"],
        validation=dict(miss_rate=r["validation"]["miss_rate"], fa_per_hour=r["validation"]["fa_per_hour"]),
        test=dict(miss_rate=test["miss_rate"], fa_per_hour=test["fa_per_hour"]),
        worst_keywords=_worst(test["per_keyword"]),
        confusions=test["confusions"],
        fa_sources=test["fa_sources"],
    )


def measure(model: str, data: str, snr_db: float, espeak: int, target: float, out: Path | None) -> dict:
    """One model at one SNR: the curves, and the test figures at the points chosen on validation for `target`
    FA/h and for MLPerf's 24 FA/h."""
    t0 = time.time()
    runs = [
        evaluate(
            model,
            data,
            snr_db=snr_db,
            espeak_sentences=espeak,
            target_fa_per_hour=t,
            out_dir=None if out is None else out / f"{Path(model).parent.name}_{snr_db:g}db_{t:g}fah",
        )
        for t in (target, MLPERF_BAR["fa_per_hour"])
    ]
    r = runs[0]
    curve = r["curves"]["test"]["summary"]
    return dict(
        model=model,
        snr_db=snr_db,
        hours=dict(validation=r["validation"]["hours"], test=r["test"]["hours"]),
        keywords=dict(validation=r["validation"]["words"], test=r["test"]["words"]),
        curve_test=curve,
        at_operating_point=_at(r),
        at_mlperf_operating_point=_at(runs[1]),
        mlperf_pass_at_its_point=runs[1]["mlperf_pass"],
        seconds=round(time.time() - t0, 1),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", required=True, help="exported .tflite files")
    p.add_argument("--data", required=True, help="Speech Commands folder with validation/testing lists")
    p.add_argument("--snr-db", type=float, nargs="+", default=[10.0, 20.0])
    p.add_argument("--espeak-sentences", type=int, default=16)
    p.add_argument("--target-fa-per-hour", type=float, default=1.0)
    p.add_argument("--out", help="also write each evaluation's files (DET PNG, JSON) under this folder")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else None
    rows = [
        measure(m, args.data, snr, args.espeak_sentences, args.target_fa_per_hour, out)
        for m in args.model
        for snr in args.snr_db
    ]
    text = json.dumps(dict(mlperf_bar=MLPERF_BAR, rows=rows), indent=1)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "stream_quality.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
