"""``python -m unlearn_lit <command> --config FILE [--key value ...] --out DIR``: the command-line interface.

One typed config (:class:`~unlearn_lit.config.RunConfig`) for every command; each stage reads what the
previous one wrote::

    train     θ* on D (RT on D_r with --retain_only)   -> DIR/model            (--original of the next)
    mask      phase 1 + greedy search on θ*            -> DIR/mask.safetensors (--mask_file of the next)
    unlearn   methods on θ*                            -> DIR/models/<method>/
    evaluate  saved models on the splits (vs --rt)     -> DIR/metrics.json
    compare   the whole comparison (alias: run)        -> DIR/metrics.json, models, mask
    report    finished runs compared (own parser)      -> DIR/report.html, report.md, figures

The arguments are generated from the config by jsonargparse (``--help``, ``--print_config``, YAML).
The command is read first and only its parser is built, and the config is parsed and validated before
torch is imported (:mod:`unlearn_lit.config` is torch-free): ``--help``, ``<command> --help`` and a
config error answer in about half a second; only the command's handler imports torch. User errors
(unknown keys or choices, wrong types, missing files) are one line, with a "did you mean" for typos;
Ctrl-C is one line too, and the interrupted run continues with ``--resume``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import re
import sys
import warnings
from argparse import ArgumentError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from unlearn_lit.errors import suggest

PROG = "python -m unlearn_lit"
OUT = ("--out", {"type": str, "required": True, "help": "directory to create (must not exist)"})
RESUME = (
    "--resume",
    {"action": "store_true", "help": "continue the failed or interrupted run of --out (same config)"},
)


@dataclass(frozen=True)
class Command:
    """A subcommand.

    Attributes:
        description: one line for ``--help``.
        handler: ``"module:function"``, imported only when the command runs; called as
            ``function(cfg, args) -> exit status`` (``cfg`` is None when ``config`` is False).
        arguments: the command's own arguments beside the config: ``(flag, add_argument kwargs)``.
        config: whether the command reads a :class:`RunConfig` (``--config`` and every field).
    """

    description: str
    handler: str
    arguments: tuple[tuple[str, dict[str, Any]], ...] = (OUT,)
    config: bool = True


COMMANDS: dict[str, Command] = {
    "train": Command(
        "Train θ* on D (or RT on D_r with --retain_only); writes DIR/model, the --original of later stages",
        "unlearn_lit.stages:train",
        (OUT, ("--retain_only", {"action": "store_true", "help": "train RT: D_r only, same recipe"})),
    ),
    "mask": Command(
        "Phase 1 + greedy search on θ* (--original, else trained); writes the mask artifact (--mask_file)",
        "unlearn_lit.stages:mask",
    ),
    "unlearn": Command(
        "Run the methods on θ* (--original, --mask_file); writes DIR/models/<method>/ and their metrics",
        "unlearn_lit.stages:unlearn",
        (OUT, RESUME),
    ),
    "evaluate": Command(
        "Evaluate saved models on the forget/retain/test splits, and against RT when --rt is given",
        "unlearn_lit.stages:evaluate",
        (
            OUT,
            ("--models", {"type": list[str], "required": True, "help": "model directories or files"}),
            ("--rt", {"type": str | None, "default": None, "help": "RT's model (for Avg.Gap)"}),
        ),
    ),
    "compare": Command(
        "The whole comparison: θ*, RT, phase 1, search, every method, evaluation, report",
        "unlearn_lit.stages:compare",
        (OUT, RESUME),
    ),
}
ALIASES = {"run": "compare"}


@functools.cache  # building the config's arguments takes about a second; parsing leaves the parser as is
def command_parser(name: str) -> ArgumentParser:
    """The parser of one command (``run`` is ``compare``), built once per process (no torch)."""
    return new_command_parser(name)


def new_command_parser(name: str) -> ArgumentParser:
    """A new parser of one command (:func:`build_parser` adopts it as a subcommand, which changes it)."""
    command = COMMANDS[ALIASES.get(name, name)]
    parser = ArgumentParser(prog=f"{PROG} {name}", description=command.description, exit_on_error=False)
    if command.config:
        from unlearn_lit.config import RunConfig

        parser.add_argument("--config", action=ActionConfigFile, help="YAML file of RunConfig fields")
        parser.add_class_arguments(RunConfig, None, as_positional=False)
    for flag, kwargs in command.arguments:
        parser.add_argument(flag, **kwargs)
    return parser


def build_parser(names: list[str] | None = None) -> ArgumentParser:
    """The whole CLI: a subcommand per name (default: every command and alias)."""
    parser = ArgumentParser(prog=PROG, description="Module-aware parameter-efficient unlearning")
    commands = parser.add_subcommands(dest="command")
    for name in names or [*COMMANDS, *ALIASES]:
        commands.add_subcommand(name, new_command_parser(name))
    return parser


def run_config(parser: ArgumentParser, args: Namespace) -> Any:
    """The validated :class:`RunConfig` of parsed arguments (of a command parser, or of
    :func:`build_parser` with the command's namespace inside); raises ValueError/TypeError."""
    from unlearn_lit.config import RunConfig

    ns = parser.instantiate(args)
    if "command" in ns:
        ns = ns[ns.command]
    fields = {f for f in RunConfig.__dataclass_fields__}
    return RunConfig(**{k: v for k, v in vars(ns).items() if k in fields})


def load_config(path: str | Path, *overrides: str) -> Any:
    """A config file plus CLI-style overrides (``"--mask.sparsity", "0.8"``), exactly as the CLI reads it."""
    parser = command_parser("compare")
    return run_config(parser, parser.parse_args(["--config", str(path), "--out", "-", *overrides]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv else None
    if name == "report":  # compares finished runs; its own parser, no torch (unlearn_lit.crossrun)
        from unlearn_lit.crossrun import main as report

        return report(argv[1:])
    if name not in (*COMMANDS, *ALIASES):
        return _usage(name)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = COMMANDS[ALIASES.get(name, name)]
    parser = command_parser(name)
    try:
        args = parser.parse_args(argv[1:])
        out = getattr(args, "out", None)
        if out is not None and Path(out).exists():
            raise FileExistsError(
                f"--out {out} exists; choose a new directory (results are never overwritten)"
            )
        cfg = run_config(parser, args) if command.config else None
    except (ArgumentError, ValueError, TypeError, OSError) as err:  # the user's: one line
        return _error(name, _hint(err, parser))
    module, function = command.handler.split(":")
    handler = getattr(importlib.import_module(module), function)
    _quiet_logging()  # after the handler's imports: importing Lightning resets its loggers' levels
    from unlearn_lit.rundir import RunInterrupted

    try:
        return handler(cfg, args)
    except RunInterrupted as err:
        print(err, file=sys.stderr)  # one line: what was kept and how to continue
        return 130
    except KeyboardInterrupt:  # before the run directory existed: nothing to keep
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:  # missing files, data or options that do not fit: the user's
        return _error(name, str(err), *getattr(err, "__notes__", ()))


def _usage(name: str | None) -> int:
    """Top-level help (no torch import) or an unknown command with a "did you mean"."""
    lines = [
        f"usage: {PROG} {{{','.join([*COMMANDS, *ALIASES, 'report'])}}} --config FILE [--key value ...] --out DIR",
        "",
    ]
    lines += [f"  {n:<9} {c.description}" for n, c in COMMANDS.items()]
    lines += [f"  {a:<9} alias of {c}" for a, c in ALIASES.items()]
    lines += [
        f"  {'report':<9} Compare finished runs: masks, their overlap, trade-offs (report.html, report.md)"
    ]
    lines += ["", f"{PROG} <command> --help lists the command's options."]
    if name in (None, "-h", "--help"):
        print("\n".join(lines))
        return 0
    return _error(
        None,
        suggest(f"unknown command {name!r}; valid choices: {', '.join([*COMMANDS, *ALIASES, 'report'])}"),
    )


def _hint(err: Exception, parser: ArgumentParser) -> str:
    """One line of a parse or config error, with a "did you mean" for a mistyped option or choice."""
    message = " ".join(str(err).split())
    flag = re.search(r"unrecognized arguments: --?([\w.]+)", message)  # on the command line
    group = re.search(r"Group '([\w.]+)' does not accept option '([\w.]+)'", message)  # in a config file
    option = re.search(r"Option '([\w.]+)' is not accepted", message)
    key = flag[1] if flag else f"{group[1]}.{group[2]}" if group else option[1] if option else None
    if key:
        options = [s.lstrip("-") for s in parser._option_string_actions if s.startswith("--")]
        close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean {'--' if flag else ''}{close[0]}?"
    return suggest(message)


def _error(name: str | None, *lines: str) -> int:
    where = f"{PROG} {name}" if name else PROG
    print(f"{where}: error: {' '.join(lines)}", file=sys.stderr)
    return 2


def _quiet_logging() -> None:
    # A comparison builds a dozen Trainers: keep Lightning's per-Trainer banners (accelerator, tips) quiet.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning 2.6 on torch 2.14, harmless
    # Masked unlearning trains θ*'s copy in eval mode on purpose (no dropout: METHOD.md §6); Lightning
    # would say so once per method.
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")


if __name__ == "__main__":
    sys.exit(main())
