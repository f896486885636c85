"""``python -m unlearn_lit run --config FILE [--key value ...] --out DIR``: the command-line interface.

The arguments are generated from :class:`~unlearn_lit.config.RunConfig` by jsonargparse, which gives
``--help``, ``--print_config`` and errors for unknown keys and invalid values before any work starts.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from unlearn_lit.config import RunConfig


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m unlearn_lit", description="Module-aware parameter-efficient unlearning"
    )
    commands = parser.add_subcommands(dest="command")
    run = ArgumentParser(description="Run a comparison: original, RT, phase 1, search, phase 2, evaluation")
    run.add_argument(
        "--config", action=ActionConfigFile, help="YAML file of RunConfig fields (flat overrides)"
    )
    run.add_class_arguments(RunConfig, None, as_positional=False)
    run.add_argument("--out", type=str, required=True, help="run directory to create (must not exist)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the failed or interrupted run of --out (same config): finished methods are kept",
    )
    commands.add_subcommand("run", run)
    return parser


def run_config(parser: ArgumentParser, args) -> RunConfig:
    """The validated :class:`RunConfig` of parsed ``run`` arguments (raises ValueError/TypeError)."""
    ns = parser.instantiate(args).run
    return RunConfig(
        **{k: v for k, v in vars(ns).items() if k not in ("out", "config", "resume", "__path__")}
    )


def load_config(path: str | Path, *overrides: str) -> RunConfig:
    """A config file plus CLI-style overrides (``"--mask.sparsity", "0.8"``), exactly as the CLI reads it."""
    parser = build_parser()
    return run_config(parser, parser.parse_args(["run", "--config", str(path), "--out", "-", *overrides]))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # A comparison builds a dozen Trainers: keep Lightning's per-Trainer banners (accelerator, tips) quiet.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning 2.6 on torch 2.14, harmless
    # Masked unlearning trains θ*'s copy in eval mode on purpose (no dropout: METHOD.md §6); Lightning
    # would say so once per method.
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        out = Path(args.run.out)
        if out.exists():
            parser.error(f"--out {out} exists; choose a new run directory (results are never overwritten)")
        try:
            cfg = run_config(parser, args)
        except (ValueError, TypeError) as err:  # invalid values: fail before any work
            parser.error(f"invalid configuration: {err}")
        from unlearn_lit.run import run
        from unlearn_lit.rundir import RunInterrupted

        try:
            run(cfg, out, resume=args.run.resume)
        except RunInterrupted as err:
            print(err, file=sys.stderr)  # one line: what was kept and how to continue
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
