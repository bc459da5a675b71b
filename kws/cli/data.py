"""`kws data download | synth | check`: get a dataset in the Speech Commands layout and vet it before training.

Each action forwards to one library function (download.download_dataset, synth.synthesize, data.check_dataset)
and prints a short summary on stdout (JSON with --json); progress bars and notes go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="download, synthesize or check a Speech Commands dataset")
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _usage(parser))

    p = actions.add_parser("download", help="fetch + verify + extract the official archives (resumable)")
    p.add_argument("--version", default="v0.02", choices=("v0.02", "v0.01"), help="dataset version")
    p.add_argument("--out", type=Path, default=Path("data"), help="folder for the archives and extracted data")
    p.add_argument(
        "--url",
        help="mirror (a URL ending in '/' or a local folder, with the official file names), or one archive's "
        "http(s):// or file:// URL or local path (default: the official storage.googleapis.com archives)",
    )
    p.add_argument(
        "--sha256", help="expected sha256 (64 hex digits) of the archive --url names, when the built-in table lacks it"
    )
    p.add_argument("--no-test-set", action="store_true", help="skip the official 12-class test-set archive")
    p.add_argument("--delete-archives", action="store_true", help="delete each .tar.gz once extracted")
    p.add_argument("--json", action="store_true", help="print the extracted folders as JSON")
    p.set_defaults(handler=_download)

    p = actions.add_parser("synth", help="speak an offline dataset with espeak-ng (pipeline trials only)")
    p.add_argument("--out", type=Path, required=True, help="new folder for the dataset")
    p.add_argument("--words", nargs="+", help="keywords, one folder each (default: the 10 Speech Commands ones)")
    p.add_argument("--unknown-words", nargs="+", help="words for the unknown class (default: 8 other words)")
    p.add_argument("--per-word", type=int, default=100, help="clips per word (1 s each)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical files")
    p.add_argument("--jobs", type=int, default=None, help="parallel espeak-ng processes (default: the CPU count)")
    p.add_argument("--noise-seconds", type=float, default=60.0, help="length of each generated noise file (s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_synth)

    p = actions.add_parser("check", help="count clips per class/split and list unusable files (exit 1 if any)")
    p.add_argument("root", type=Path, help="dataset folder (Speech Commands layout)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _download(args: argparse.Namespace) -> int:
    from kws.download import download_dataset

    folders = download_dataset(
        args.out,
        version=args.version,
        url=args.url,
        sha256=args.sha256,
        test_set=not args.no_test_set,
        keep_archives=not args.delete_archives,
    )
    if args.json:
        print(json.dumps({"folders": [str(f) for f in folders]}))
    else:
        for folder in folders:
            print(f"ready: {folder}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from kws.synth import SYNTH_NOTE, SynthConfig, synthesize

    defaults = SynthConfig()
    cfg = SynthConfig(
        words=tuple(args.words or defaults.words),
        unknown_words=tuple(args.unknown_words or defaults.unknown_words),
        per_word=args.per_word,
        seed=args.seed,
        noise_seconds=args.noise_seconds,
    )
    summary = synthesize(args.out, cfg, jobs=args.jobs)
    if args.json:
        print(json.dumps(summary))
        return 0
    splits = summary["clips_per_split"]
    print(
        f"wrote {summary['clips']} clips of {len(summary['words'])} words to {summary['out']} in "
        f"{summary['seconds']:.1f} s (train {splits['train']}, validation {splits['validation']}, "
        f"testing {splits['testing']})"
    )
    print(f"note: {SYNTH_NOTE}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace) -> int:
    from kws.data import check_dataset

    report = check_dataset(args.root, progress=not args.quiet)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_check(report)
    return 1 if report["unusable"] else 0  # converted, padded and cropped files are named, not fatal


def _print_check(report: dict) -> None:
    """A word x split table (keywords first), speakers per split, noise, then one line per file that is unusable,
    converted, padded or cropped (each with its reason) and a count line."""
    splits: dict[str, dict] = report["splits"]
    names = list(splits)
    keywords = list(next(iter(splits.values()))["keywords"]) if splits else []
    others = sorted({w for s in splits.values() for w in s["words"]} - set(keywords))
    width = max([len(w) for w in keywords + others] + [10])
    print(f"{'word':<{width}}" + "".join(f"{s:>12}" for s in names) + f"  (split rule: {report['split_rule']})")
    for word in keywords + others:
        mark = "" if word in keywords else "  unknown"
        print(f"{word:<{width}}" + "".join(f"{splits[s]['words'].get(word, 0):>12}" for s in names) + mark)
    for key in ("clips", "speakers"):
        print(f"{key:<{width}}" + "".join(f"{splits[s][key]:>12}" for s in names))
    print(f"noise: {len(report['noise_files'])} file(s), {report['noise_seconds']} s")
    if report["missing_keywords"]:
        print(f"warning: no clips for keyword(s) {', '.join(report['missing_keywords'])}")
    if report["speakers_in_several_splits"]:
        print(f"warning: {len(report['speakers_in_several_splits'])} speaker(s) appear in more than one split")
    for kind in report["counts"]:
        for entry in report[kind]:
            print(f"{kind}: {entry['path']}: {entry['reason']}")
    counts = ", ".join(f"{n} {kind}" for kind, n in report["counts"].items())
    print(f"{report['usable']} usable file(s); {counts}")
