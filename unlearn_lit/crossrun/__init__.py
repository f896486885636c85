"""The cross-run report: ``python -m unlearn_lit report RUN_DIR [RUN_DIR ...] --out DIR``.

Compares several run directories (seeds, objectives, sparsities, forget sets): mask figures, mask
stability (pairwise overlap vs random masks), trade-off plots with confidence intervals over seeds, and
``report.md`` + a self-contained ``report.html``. See :mod:`unlearn_lit.crossrun.report`. Parsing and
reading runs import no torch.
"""

from __future__ import annotations

import argparse
import logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m unlearn_lit report",
        description="Compare run directories: mask figures, mask overlap vs random masks, trade-off plots "
        "(mean ± 95% CI over seeds), report.md and a self-contained report.html.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run directories (--out of `run`), or folders holding run directories")  # fmt: skip
    parser.add_argument("--out", required=True, help="report directory to create")
    parser.add_argument("--title", default=None, help="report title (default: 'Cross-run report: N runs')")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from unlearn_lit.crossrun.report import write_report

    try:
        out = write_report(args.runs, args.out, title=args.title, force=args.force)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    print(f"{out / 'report.html'}\n{out / 'report.md'}")
    return 0
