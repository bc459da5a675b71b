"""`kws <verb>`: the command-line front end.

Each verb lives in its own module here with a `register(subparsers)` function; a handler parses its flags,
builds a config, calls ONE library function and prints a summary (a table, or JSON with --json). Heavy
libraries (TensorFlow, TFLM) are imported inside handlers so `kws --help` stays fast. Bad input raises
KwsError anywhere below; main() prints it as one line on stderr and exits with its code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kws import __version__
from kws.errors import KwsError

# kws.models.ACTIVATIONS, spelled out so that building the parser needs no torch (tests/test_cli_model.py checks).
ACTIVATIONS = ("relu", "silu", "hardswish")
# Modules in kws/cli/ that register verbs, in --help order.
VERB_MODULES = ("data", "model", "grow", "export", "stream", "streameval", "report", "demo")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows every flag's default (when it has one) after its help text; units belong in the help text.

    Flags without a default (None), switches (store_true) and help that already names its default are left as
    they are.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text or "default" in text:
            return text
        if action.option_strings and action.nargs != 0:
            return f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose verbs (subparsers share its class) all show their defaults in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="kws", description="Grow small keyword spotters and deploy them to Cortex-M.")
    parser.add_argument("--version", action="version", version=f"kws {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        module = importlib.import_module(f"kws.cli.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except KwsError as e:
        print(f"kws {args.verb}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(
            f"kws {args.verb}: interrupted; progress so far is checkpointed (use --resume where offered)",
            file=sys.stderr,
        )
        return 130
