"""`kws export` (a trained run -> int8/float TFLite, ONNX, C arrays, settings, footprint report) and `kws targets`."""

from __future__ import annotations

import json
from pathlib import Path

from kws.device import ENGINES, PLATFORMS
from kws.errors import KwsError


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="convert a trained run for a Cortex-M target and report its footprint",
        description="Export a run to int8/float TFLite + ONNX + the generated C engine (or TFLM's C array), measure "
        "flash, RAM and time on the target's core (QEMU), check parity, and fail (exit 3) when the model does not "
        "fit the target or the target cannot keep up with the inference period.",
    )
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory written by `kws train`/`kws grow`")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the artifacts and report")
    p.add_argument("--target", default="cortex-m4", help="target core (see `kws targets`)")
    p.add_argument("--check", action="store_true", help="only measure and report; write no device files, never fail")
    p.add_argument("--flash-kb", type=int, help="override the board's flash size (KiB; default: the target board's)")
    p.add_argument("--ram-kb", type=int, help="override the board's RAM size (KiB; default: the target board's)")
    p.add_argument("--clock-mhz", type=float, help="override the board's clock (MHz; default: the target board's)")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="kws",
        help="kws: the generated C engine, measured on the target's core in QEMU (default); tflm: TFLite Micro, "
        "figures estimated",
    )
    p.add_argument(
        "--period-hops",
        type=int,
        help="inference period in 20 ms frontend hops (KWS_INFERENCE_PERIOD_HOPS; default 10 = 200 ms)",
    )
    p.add_argument("--calib-clips", type=int, default=200, help="training clips for int8 calibration")
    p.add_argument("--platform", choices=PLATFORMS, help="project shell (default: the target board's)")
    p.add_argument("--data", metavar="DIR", help="dataset root, when the run's recorded one has moved")
    p.add_argument("--json", action="store_true", help="print report.json instead of the table")
    p.add_argument(
        "--operating-point",
        metavar="FILE",
        help="operating_point.json of `kws stream-eval`: its window, threshold and min count go into kws_settings.h",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars on stderr (reading clips, MFCC, converting)")
    p.set_defaults(handler=_export)

    t = sub.add_parser("targets", help="list the deployment targets and their default boards")
    t.add_argument("--json", action="store_true", help="print the table as JSON")
    t.set_defaults(handler=_targets)


def _export(args) -> int:
    from kws.export import export_run
    from kws.export.report import summary_table

    if args.calib_clips < 1:
        raise KwsError(f"--calib-clips: must be >= 1, got {args.calib_clips}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise KwsError(f"--out {args.out} is a file, expected a folder; choose another --out")
    device, stream = _operating_point(args.operating_point)
    report = export_run(
        args.model,
        args.out,
        target=args.target,
        check_only=args.check,
        flash_kb=args.flash_kb,
        ram_kb=args.ram_kb,
        clock_mhz=args.clock_mhz,
        calib_clips=args.calib_clips,
        platform=args.platform,
        data_root=args.data,
        engine=args.engine,
        period_hops=args.period_hops,
        progress=not args.quiet,  # on a terminal or in a log alike: an export works for minutes
        device=device,
        stream=stream,
    )
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "calibration"}, indent=2))
    else:
        print(summary_table(report))
        print(
            f"wrote {args.out}/report.json, report.md"
            + (f" and {len(report['files'])} device files" if report["files"] else "")
        )
    if stream:
        from kws.streamreport import add_to_export

        print("\n".join(add_to_export(Path(args.out), stream)))
    return 0


def _operating_point(path: str | None):
    if path is None:
        return None, None
    from kws.streamreport import load_operating_point

    return load_operating_point(path)


def _targets(args) -> int:
    from kws.export.targets import TARGETS, targets_table

    if args.json:
        print(json.dumps({name: t.to_dict() for name, t in TARGETS.items()}, indent=2))
    else:
        print(targets_table())
    return 0
