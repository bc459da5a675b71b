"""`kws grow`: grow a DS-CNN by splitting steepest descent up to a params / MACs / RAM budget."""

from __future__ import annotations

import json
from dataclasses import replace

from kws.cli import ACTIVATIONS


def register(sub) -> None:
    # Defaults live in kws.grow.GrowConfig alone (printed by --help via its docstring table in the README);
    # flags left unset keep them, so importing torch is not needed to build the parser.
    p = sub.add_parser(
        "grow",
        help="grow a DS-CNN from a seed under a params / MACs / RAM budget",
        description="Unset flags keep the defaults of kws.grow.GrowConfig (see README).",
    )
    p.add_argument("--data", required=True, help="Speech Commands layout dataset folder")
    p.add_argument("--out", required=True, help="run directory (rounds/, final/, growth_report.*)")
    p.add_argument("--budget-kparams", type=float, help="max deployed parameters (BN folded), thousands")
    p.add_argument("--budget-mmacs", type=float, help="max multiply-accumulates per inference, millions")
    p.add_argument(
        "--budget-ram-kb",
        type=float,
        help="max peak int8 activation RAM (the tensors live at once: a layer's input+output, SiLU 3 outputs), KiB",
    )
    p.add_argument("--seed-arch", help="seed preset or spec JSON")
    p.add_argument("--seed-width", type=int, help="uniform seed width (0: preset's own)")
    p.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        help="default silu (best on validation, 1.5x ReLU's activation RAM); hardswish: ReLU's RAM in the seed's",
    )
    p.add_argument("--seed-epochs", type=int)
    p.add_argument("--epochs-per-round", type=int)
    p.add_argument("--final-epochs", type=int)
    p.add_argument("--total-epochs", type=int, help="fix the total epochs: the final stage gets what growth left")
    p.add_argument("--max-rounds", type=int)
    p.add_argument("--growth-per-round", type=float, help="cap on growth per round, fraction of the current cost")
    p.add_argument("--max-width", type=int, help="per-layer width cap")
    p.add_argument("--eps", type=float, help="split step size")
    p.add_argument("--tau", type=float, help="split only units with lambda_min < -tau")
    p.add_argument("--cost-metric", choices=["params", "macs", "both"])
    p.add_argument(
        "--selector",
        choices=["exact", "own", "random"],
        help="exact S_own+S_dw (ours), S_own only (public code), random units (ablation)",
    )
    p.add_argument("--split-clips", type=int, help="stratified clips for the splitting pass")
    p.add_argument(
        "--split-stride", type=int, dest="position_stride", help="keep ~1 in N (clip, position) rows in the pass"
    )
    p.add_argument(
        "--split-sampling", choices=["importance", "uniform"], help="how the pass draws its rows (default importance)"
    )
    p.add_argument(
        "--split-solver",
        choices=["auto", "dense", "lanczos"],
        help="auto (default): dense while the network is narrow, lanczos once wide; dense: form S and eigh "
        "(splitting.FAST); lanczos: matrix-free over every position (splitting.WIDE)",
    )
    p.add_argument(
        "--split-clip-sampling",
        choices=["stratified", "importance"],
        help="how the pass draws its clips: a stratified subset, or by how wrong the network is on them",
    )
    p.add_argument("--lanczos-iters", type=int, help="Lanczos steps per layer with --split-solver lanczos")
    p.add_argument(
        "--finish",
        choices=["continue", "retrain"],
        help="continue training the grown network, or retrain its architecture from scratch (default)",
    )
    p.add_argument("--retrain", action="store_const", const="retrain", dest="finish", help="same as --finish retrain")
    p.add_argument("--compare-retrain", action="store_true", help="finish both ways and report both")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--resume", action="store_true", help="continue from the last complete round")
    p.add_argument("--json", action="store_true", help="print the growth report as JSON")
    p.set_defaults(handler=_grow)


def _grow(args) -> int:
    from kws.grow import GrowConfig, grow
    from kws.report import write_report

    names = (
        "seed_arch",
        "activation",
        "budget_kparams",
        "budget_mmacs",
        "budget_ram_kb",
        "seed_epochs",
        "epochs_per_round",
        "final_epochs",
        "total_epochs",
        "max_rounds",
        "growth_per_round",
        "max_width",
        "eps",
        "tau",
        "cost_metric",
        "selector",
        "split_clips",
        "position_stride",
        "split_sampling",
        "split_solver",
        "split_clip_sampling",
        "lanczos_iters",
        "seed",
    )
    given = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.seed_width is not None:
        given["seed_width"] = args.seed_width or None
    base = GrowConfig(**given)
    train_over = {k: getattr(args, k) for k in ("batch_size", "lr") if getattr(args, k) is not None}
    cfg = replace(
        base,
        finish=args.finish or base.finish,
        compare_retrain=args.compare_retrain,
        train=replace(base.train, **train_over),
    )
    report = grow(args.data, args.out, cfg, resume=args.resume)
    html = write_report(args.out)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rounds"}, indent=1))
    else:
        print(f"grown: widths {report['arch']['conv1_width']} {report['arch']['widths']}")
        print(
            f"params {report['params']:,}  MACs {report['macs']:,}  peak activations "
            f"{report['peak_activation_bytes']:,} B  rounds {len(report['rounds']) - 1}"
        )
        for how, f in report["final"].items():
            print(f"final ({how}, {f['epochs']} epochs): test acc {f['test_acc']:.4f}  -> {f['run_dir']}")
        print(f"report: {html}")
    return 0
