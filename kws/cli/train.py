"""`kws train`: train a DS-CNN into a run directory (a thin handler over kws.train.train_run).

Registered by kws.cli.model beside eval / predict / cost. Defaults come from kws.recipe.TrainConfig (torch-free);
untyped flags stay out of the namespace, so with --resume the typed ones are checked against the run's record.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace

from kws.cli import ACTIVATIONS
from kws.cli.options import at_least, default_of, given, suppressing_parser, with_default, words_arg
from kws.recipe import OPTIMIZERS, TrainConfig

DEFAULT_ARCH = "ds-cnn-s"
CONFIG_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("augment", "schedule"))


def register(sub) -> None:
    p = suppressing_parser(
        sub,
        "train",
        help="train a DS-CNN into a run directory (torchrun-ready)",
        description="With --resume every setting comes from the run in --out; a setting flag typed with it must "
        "equal the run's record.",
    )
    d = lambda name: default_of(TrainConfig, name)  # noqa: E731 -- one short lookup per flag below
    p.add_argument(
        "--arch", help=with_default("preset (ds-cnn-s, ds-cnn-s*0.5, seed@12), spec JSON or .json file", DEFAULT_ARCH)
    )
    p.add_argument("--data", help="Speech Commands folder (v0.02 layout); required unless --resume")
    p.add_argument("--out", required=True, help="run directory to write (or, with --resume, to continue)")
    p.add_argument(
        "--words",
        help="comma-separated keyword folders to classify, plus _silence_ and _unknown_ (e.g. yes,no: "
        "micro_speech's task) (default: the 10 Speech Commands keywords)",
    )
    p.add_argument("--epochs", type=int, help=with_default("passes over the training split, >= 1", d("epochs")))
    p.add_argument("--batch-size", type=int, help=with_default("clips per optimizer step", d("batch_size")))
    p.add_argument(
        "--lr", type=float, help=with_default("peak learning rate (cosine-decayed to 0, per batch)", d("lr"))
    )
    p.add_argument(
        "--seed", type=int, help=with_default("seed of the initial weights, shuffling and augmentation", d("seed"))
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=with_default("sgd: momentum 0.9, Nesterov", d("optimizer")))
    p.add_argument(
        "--weight-decay", type=float, help=with_default("L2 coefficient (decoupled for adamw)", d("weight_decay"))
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        help=with_default("epochs of linear lr warm-up, below --epochs", d("warmup_epochs")),
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        help=with_default("target probability spread evenly over the classes, in [0, 1)", d("label_smoothing")),
    )
    p.add_argument(
        "--activation", choices=ACTIVATIONS, help="activation of every layer (default: the --arch spec's; relu)"
    )
    p.add_argument(
        "--dropout", type=float, help="dropout probability before the classifier, in [0, 1) (default: the spec's; 0)"
    )
    p.add_argument(
        "--no-augment",
        action="store_true",
        help="train on clean cached features (default: AugmentConfig's noise mix and time shift, every batch)",
    )
    p.add_argument(
        "--train-clips",
        type=int,
        help="train on a fixed class-balanced subset of N >= 1 clips, for smoke runs (default: every training clip)",
    )
    p.add_argument("--device", help="torch device: cpu, cuda, cuda:1 (default: this process's GPU if any, else cpu)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch, >= 1; 1 is fastest on a busy shared machine (default: torch's, one per core)",
    )
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out exactly")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from kws import train
    from kws.data import TaskConfig
    from kws.resume import resume_settings

    typed = given(args)
    at_least("--threads", typed.get("threads"))
    if "threads" in typed:
        import torch

        torch.set_num_threads(typed["threads"])
    cfg_typed = {k: typed[k] for k in CONFIG_FIELDS if k in typed}
    if typed.get("no_augment"):
        cfg_typed["augment"] = None
    words = words_arg(typed["words"]) if "words" in typed else None
    common = dict(
        arch=typed.get("arch"),
        data_root=typed.get("data"),
        activation=typed.get("activation"),
        dropout=typed.get("dropout"),
        train_clips=typed.get("train_clips"),
        progress=not typed.get("quiet"),
        device=typed.get("device"),
    )
    if typed.get("resume"):
        recorded = resume_settings(args.out)  # the run's own settings; typed ones must equal them
        cfg = replace(recorded.cfg, **cfg_typed) if cfg_typed else None
        task = replace(recorded.task, words=words) if words else None
        metrics = train.train_run(args.out, resume=True, cfg=cfg, task=task, **common)
    else:
        common["arch"] = common["arch"] or DEFAULT_ARCH
        task = TaskConfig(words=words) if words else None
        metrics = train.train_run(args.out, cfg=TrainConfig(**cfg_typed), task=task, **common)
    if not metrics:  # a non-zero rank under torchrun: rank 0 reports
        return 0
    if typed.get("json"):
        print(json.dumps(metrics, indent=2))
    else:
        test = metrics.get("test", {})
        print(
            f"{args.out}: best epoch {metrics.get('best_epoch')} (validation {metrics.get('best_val_acc', 0):.4f}), "
            f"test {test.get('acc', float('nan')):.4f} on {test.get('n', 0)} clips, "
            f"{metrics.get('seconds_per_epoch') or 0:.2f} s/epoch"
        )
    return 0
