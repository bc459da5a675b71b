"""`kws report RUN_DIR`: write the growth report (HTML with embedded figures + PNGs) of a grown run."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="write the HTML growth report of a `kws grow` run directory")
    p.add_argument("run_dir", help="run directory written by `kws grow`")
    p.set_defaults(handler=_report)


def _report(args) -> int:
    from kws.report import write_report

    print(write_report(args.run_dir))
    return 0
