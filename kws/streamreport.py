"""The `kws stream-eval` job: validation and test streams -> DET curves, an operating point chosen on validation,
the test stream's figures at that point; written as operating_point.json, stream_eval.json, det.png and
stream_report.html. kws export --operating-point reads operating_point.json back (load_operating_point) and
writes its window, threshold and minimum count into kws_settings.h.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from collections.abc import Sequence
from pathlib import Path

from kws import streameval as se
from kws import streamsynth as ss
from kws.device import DeviceConfig
from kws.errors import KwsError
from kws.files import atomic_write_text

OPERATING_POINT = "operating_point.json"
DET_PNG = "det.png"
MLPERF_BAR = dict(fa_per_hour=24.0, miss_rate=0.16)  # MLPerf Tiny streaming wakeword v1.3 pass


def _summary(points: list[dict]) -> dict:
    return dict(
        miss_rate_at_1_fa_per_hour=se.miss_at_fa(points, 1.0),
        miss_rate_at_24_fa_per_hour=se.miss_at_fa(points, MLPERF_BAR["fa_per_hour"]),
        fa_per_hour_at_5pct_misses=se.fa_at_miss(points, 0.05),
        fa_per_hour_at_16pct_misses=se.fa_at_miss(points, MLPERF_BAR["miss_rate"]),
        lowest_miss_rate=min(p["miss_rate"] for p in points),
        fa_per_hour_at_lowest_miss_rate=min(points, key=lambda p: (p["miss_rate"], p["fa_per_hour"]))["fa_per_hour"],
    )


def evaluate(
    model: str | Path,
    data_root: str | Path,
    *,
    snr_db: float | None = 10.0,
    seed: int = 0,
    max_minutes: float | None = None,
    espeak_sentences: int = 0,
    unknown_per_keyword: float = 1.0,
    windows_ms: Sequence[int] = se.DEFAULT_WINDOWS_MS,
    target_fa_per_hour: float = 1.0,
    device: DeviceConfig = DeviceConfig(),
    out_dir: str | Path | None = None,
    save_audio: bool = False,
) -> dict:
    """Evaluate `model` (.tflite or run directory) on the validation and test streams of data_root."""
    if not target_fa_per_hour > 0:
        raise KwsError(f"--target-fa-per-hour: must be > 0, got {target_fa_per_hour}")
    if not windows_ms or min(windows_ms) < 1:
        raise KwsError(f"--windows-ms: need one or more windows >= 1 ms, got {list(windows_ms)}")
    scorer = se.stream.load_scorer(model)
    words = tuple(lab for lab in scorer.labels if not lab.startswith("_"))
    streams = {}
    for split in ss.STREAM_SPLITS:
        cfg = ss.StreamConfig(
            split=split,
            seed=seed,
            snr_db=snr_db,
            max_minutes=max_minutes,
            espeak_sentences=espeak_sentences,
            unknown_per_keyword=unknown_per_keyword,
        )
        rec = ss.synthesize(data_root, cfg, words)
        post = se.posteriors(rec.samples, scorer, device)
        streams[split] = (rec, post, se.sweep(post, rec.truth, device, scorer.frontend, windows_ms))
    val_rec, val_post, val_points = streams["validation"]
    op = se.choose_operating_point(val_points, target_fa_per_hour)
    chosen = se.device_for(device, op["window_ms"], scorer.frontend)
    chosen = dataclasses.replace(chosen, detection_threshold=op["threshold"])
    at = {
        split: se.score_at(post, rec, device, scorer.frontend, op["window_ms"], op["threshold_q"])
        for split, (rec, post, _) in streams.items()
    }
    result = dict(
        model=str(model),
        labels=scorer.labels,
        snr_db=snr_db,
        seed=seed,
        target_fa_per_hour=target_fa_per_hour,
        device=dataclasses.asdict(chosen),
        operating_point=op,
        validation=at["validation"],
        test=at["test"],
        curves={split: dict(summary=_summary(points), points=points) for split, (_, _, points) in streams.items()},
        recordings={split: rec.to_dict() for split, (rec, _, _) in streams.items()},
        mlperf_pass=at["test"]["fa_per_hour"] <= MLPERF_BAR["fa_per_hour"]
        and at["test"]["miss_rate"] <= MLPERF_BAR["miss_rate"],
    )
    if out_dir is not None:
        write_outputs(Path(out_dir), result, {s: r for s, (r, _, _) in streams.items()}, save_audio)
    return result


def _figures(d: dict) -> dict:
    keep = ("hours", "words", "misses", "miss_rate", "false_alarms", "fa_per_hour")
    return {k: d[k] for k in keep}


def write_outputs(out: Path, result: dict, recordings: dict, save_audio: bool = False) -> list[Path]:
    """operating_point.json (what export reads), stream_eval.json (everything), det.png, stream_report.html."""
    out.mkdir(parents=True, exist_ok=True)
    hours = {s: result[s]["hours"] for s in ss.STREAM_SPLITS}
    curves = {s: result["curves"][s]["points"] for s in ss.STREAM_SPLITS}
    png = se.plot_det(curves, out / DET_PNG, hours, result["target_fa_per_hour"])
    point = dict(
        device=result["device"],
        operating_point=result["operating_point"],
        snr_db=result["snr_db"],
        seed=result["seed"],
        model=result["model"],
        validation=_figures(result["validation"]),
        test=_figures(result["test"]),
        det_png=str(png.resolve()),
    )
    paths = [
        atomic_write_text(out / OPERATING_POINT, json.dumps(point, indent=1) + "\n"),
        atomic_write_text(out / "stream_eval.json", json.dumps(result, indent=1) + "\n"),
        png,
        atomic_write_text(out / "stream_report.html", html_report(result, png)),
    ]
    if save_audio:
        import soundfile as sf

        for split, rec in recordings.items():
            sf.write(out / f"{split}.wav", rec.samples, rec.config.sample_rate_hz, subtype="PCM_16")
            paths.append(out / f"{split}.wav")
    return paths


def img_tag(png: Path, key: str = "det") -> str:
    """An <img> with the PNG inline (the reports are single files)."""
    data = base64.b64encode(Path(png).read_bytes()).decode()
    return f'<img id="{key}" alt="{key}" src="data:image/png;base64,{data}">'


def summary_lines(result: dict) -> list[str]:
    """The operating point and the figures of both streams at it, one line each (CLI, reports)."""
    op, d = result["operating_point"], result["device"]
    lines = [
        f"operating point (validation, target {op['target_fa_per_hour']:g} FA/h"
        + ("" if op["meets_target"] else ", NOT met: fewest false alarms instead")
        + f"): window {d['average_window_ms']} ms, threshold {op['threshold']:.3f} ({op['threshold_q']} steps), "
        f"min count {d['minimum_count']}"
    ]
    for split in ss.STREAM_SPLITS:
        r = result[split]
        lines.append(
            f"{split:<10} {r['hours']:.3f} h, {r['words']} keywords: miss rate {100 * r['miss_rate']:.1f}% "
            f"({r['misses']}), {r['fa_per_hour']:.1f} FA/h ({r['false_alarms']}; one false alarm = "
            f"{1 / r['hours']:.1f} FA/h)"
        )
    return lines


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def html_report(result: dict, png: Path) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['words']}</td><td>{v['misses']}</td><td>{_pct(v['miss_rate'])}</td>"
        f"<td>{v['false_alarms']}</td><td>{v['fa_per_hour']:.1f}</td></tr>"
        for k, v in result["test"]["per_keyword"].items()
    )
    conf = html.escape(json.dumps(result["test"]["confusions"]))
    src = html.escape(json.dumps(result["test"]["fa_sources"]))
    body = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(result))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>kws stream evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}</style></head><body>"
        f"<h1>Streaming quality</h1><p>{html.escape(result['model'])}, SNR {result['snr_db']} dB, seed "
        f"{result['seed']}</p>{body}<h2>DET curve</h2>{img_tag(png)}"
        "<h2>Test stream per keyword</h2><table border=1 cellpadding=3><tr><th>keyword</th><th>words</th>"
        f"<th>misses</th><th>miss rate</th><th>false alarms</th><th>FA/h</th></tr>{rows}</table>"
        f"<p>wrong-keyword confusions (spoken: detected): {conf}</p><p>other false alarms: {src}</p>"
        "</body></html>\n"
    )


def add_to_export(out: Path, record: dict) -> list[str]:
    """Beside an export made with --operating-point: its DET curve (stream_det.png) and a section of report.md
    with the operating point and the streams' figures at it; returns those figures as lines."""
    op, d = record["operating_point"], record["device"]
    lines = [
        f"kws_settings.h: window {d['average_window_ms']} ms, threshold {d['detection_threshold']:.3f}, min count "
        f"{d['minimum_count']} (chosen on validation for {op['target_fa_per_hour']:g} FA/h"
        + ("" if op["meets_target"] else ", not met")
        + f"; SNR {record['snr_db']} dB, seed {record['seed']})"
    ]
    for split in ss.STREAM_SPLITS:
        r = record[split]
        lines.append(
            f"{split} stream at it: {r['hours']:.3f} h, {r['words']} keywords, miss rate {100 * r['miss_rate']:.1f}%,"
            f" {r['fa_per_hour']:.1f} FA/h"
        )
    png = Path(record.get("det_png", ""))
    md = ["", "## Streaming (kws stream-eval)", "", *[f"- {line}" for line in lines]]
    if png.is_file():
        (out / "stream_det.png").write_bytes(png.read_bytes())
        md += ["", "![DET curve](stream_det.png)"]
    report_md = out / "report.md"
    if report_md.is_file():
        atomic_write_text(report_md, report_md.read_text() + "\n".join(md) + "\n")
    return lines


def load_operating_point(path: str | Path) -> tuple[DeviceConfig, dict]:
    """(DeviceConfig, the whole record) from an operating_point.json written by `kws stream-eval`."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(DeviceConfig)}
        device = DeviceConfig(**{k: v for k, v in record["device"].items() if k in fields})
    except FileNotFoundError:
        raise KwsError(f"--operating-point: {path} does not exist; run `kws stream-eval --out DIR` first") from None
    except KwsError as e:
        raise KwsError(f"--operating-point: {path}: {e}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KwsError(f"--operating-point: {path} is not an operating_point.json of kws stream-eval ({e})") from None
    return device, record
