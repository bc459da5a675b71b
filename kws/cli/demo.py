"""`kws demo`: the pipeline end to end on offline data (what `make demo` runs)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="synthesize data, grow, export for cortex-m4 and write the report")
    p.add_argument("--out", default="demo_out", help="output folder (re-running resumes finished steps)")
    p.add_argument("--budget-kparams", type=float, default=12.0, help="max deployed parameters (BN folded), thousands")
    p.add_argument("--per-word", type=int, default=100, help="synthetic clips per word, >= 1")
    p.add_argument("--target", default="cortex-m4", help="export target board (kws export --target)")
    p.add_argument(
        "--words",
        help="comma-separated keywords to classify, plus _silence_ and _unknown_ (e.g. yes,no: micro_speech's "
        "task) (default: the 10 Speech Commands keywords)",
    )
    p.set_defaults(handler=_demo)


def _demo(args) -> int:
    from kws.cli.options import words_arg
    from kws.demo import run_demo

    words = words_arg(args.words) if args.words is not None else None
    where = run_demo(
        args.out, budget_kparams=args.budget_kparams, per_word=args.per_word, target=args.target, words=words
    )
    print(f"demo finished in {where['minutes']:.1f} min")
    for key in ("dataset", "model", "export", "report"):
        print(f"  {key:8s} {where[key]}")
    print(f"  test accuracy float {where['test_acc']:.3f}, int8 {where['int8_test_acc']:.3f} (synthetic speech)")
    print(
        f"  params {where['params']:,}  MACs {where['macs']:,}  flash {where['flash_bytes']:,} B  "
        f"RAM {where['ram_bytes']:,} B"
    )
    return 0
