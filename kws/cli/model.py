"""`kws train`, `kws eval`, `kws predict`, `kws cost`: thin handlers over kws.train, kws.predict and kws.cost.

`kws train` lives in kws.cli.train (registered here, in this order).
"""

from __future__ import annotations

import argparse
import json
import sys

from kws.cli import ACTIVATIONS


def register(sub: argparse._SubParsersAction) -> None:
    _register_cost(sub)
    _register_train(sub)
    _register_eval(sub)
    _register_predict(sub)


def _register_cost(sub) -> None:
    p = sub.add_parser("cost", help="parameters, MACs and peak activation bytes of an architecture")
    p.add_argument(
        "--arch",
        required=True,
        help="preset (ds-cnn-s), preset*width multiplier (ds-cnn-s*0.5), preset@channels (ds-cnn-s@100), spec JSON "
        "or a .json file",
    )
    p.add_argument("--classes", type=int, default=12, help="classifier outputs (labels, _silence_ and _unknown_ too)")
    p.add_argument(
        "--activation", choices=ACTIVATIONS, help="override the spec's (changes the RAM peak; default: the spec's)"
    )
    p.add_argument("--json", action="store_true", help="print the figures and every layer as JSON")
    p.set_defaults(handler=_cost)


def _register_train(sub) -> None:
    from kws.cli import train  # kws train's flags and handler have their own module

    train.register(sub)


def _register_eval(sub) -> None:
    p = sub.add_parser("eval", help="top-1, per-class accuracy and confusion matrix of a run or .tflite")
    p.add_argument("--model", required=True, help="run directory or .tflite file")
    p.add_argument("--data", help="Speech Commands folder; the split is rebuilt with the run's task")
    p.add_argument(
        "--split", default="test", choices=("train", "validation", "test"), help="which split of --data to score"
    )
    p.add_argument("--test-set", help="official test-set folder (12 label folders) instead of --data")
    p.add_argument("--json", action="store_true", help="print accuracy, confusion and skipped files as JSON")
    p.set_defaults(handler=_eval)


def _register_predict(sub) -> None:
    p = sub.add_parser("predict", help="label and class probabilities of wav files")
    p.add_argument("--model", required=True, help="run directory or .tflite file")
    p.add_argument("files", nargs="+", help="wav files (resampled, padded or cut to the model's clip, e.g. 1 s)")
    p.add_argument("--json", action="store_true", help="print each file's label and probabilities as JSON")
    p.set_defaults(handler=_predict)


def _cost(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kws.cost import cost
    from kws.errors import KwsError
    from kws.models import resolve_arch

    if args.classes < 1:
        raise KwsError("--classes must be >= 1")
    spec = resolve_arch(args.arch)
    if args.activation:
        spec = replace(spec, activation=args.activation)
    c = cost(spec, num_classes=args.classes)
    if args.json:
        print(json.dumps(c.to_dict(), indent=2))
        return 0
    print(f"{'layer':<14}{'kind':<11}{'output':>14}{'params':>10}{'MACs':>12}{'act bytes':>11}")
    for layer in c.per_layer:
        shape = "x".join(str(v) for v in layer.out)
        print(
            f"{layer.name:<14}{layer.kind:<11}{shape:>14}{layer.params_deployed:>10,}{layer.macs:>12,}"
            f"{layer.activation_bytes:>11,}"
        )
    print(
        f"params: {c.params_deployed:,} deployed (BN folded), {c.params_trainable:,} trainable; "
        f"MACs {c.macs:,}; peak int8 activations {c.peak_activation_bytes:,} B; "
        f"int8 weights {c.weight_bytes_int8:,} B"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from kws.predict import evaluate_model

    result = evaluate_model(args.model, data=args.data, split=args.split, test_set=args.test_set)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    labels = result["labels"]
    print(f"{args.model}: top-1 {result['acc']:.4f} on {result['n']} clips")
    width = max(len(lab) for lab in labels) + 2
    print(" " * width + "".join(f"{lab[:6]:>7}" for lab in labels) + "    acc")
    for lab, row in zip(labels, result["confusion"], strict=True):
        acc = result["per_class_acc"][lab]
        print(f"{lab:<{width}}" + "".join(f"{v:>7}" for v in row) + f"  {acc:.3f}")
    print("(rows: true class, columns: predicted)", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from kws.predict import predict_files

    results = predict_files(args.model, args.files)
    if args.json:
        print(json.dumps(results, indent=2))
    for r in results:
        if "error" in r:
            print(f"kws predict: error: {r['file']}: {r['error']}; skipped it", file=sys.stderr)
        elif not args.json:
            top = sorted(r["probs"].items(), key=lambda kv: -kv[1])[:3]
            note = f"  [{r['note']}]" if "note" in r else ""
            print(f"{r['file']}: {r['label']}  (" + ", ".join(f"{k} {v:.3f}" for k, v in top) + ")" + note)
    return 2 if any("error" in r for r in results) else 0  # every good file's result is printed first
