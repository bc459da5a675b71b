"""`kws report RUN_DIR`: write the growth report (HTML with embedded figures + PNGs) of a grown run."""

from __future__ import annotations

from pathlib import Path

from kws.errors import KwsError


def register(sub) -> None:
    p = sub.add_parser("report", help="write the HTML growth report of a `kws grow` run directory")
    p.add_argument("run_dir", help="run directory written by `kws grow` (the report goes to RUN_DIR/report/)")
    p.set_defaults(handler=_report)


def _report(args) -> int:
    from kws.report import write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        what = "is a file, expected a folder" if run_dir.exists() else "does not exist"
        raise KwsError(f"{run_dir} {what}; give the --out folder of a `kws grow` run")
    print(write_report(run_dir))
    return 0
