"""The TOFU table of METHOD.md §9: forget ROUGE / forget quality / model utility / time of RT, GA, MLR-GA,
GD, MLR-GD (and NPO, MLR-NPO) with the paper's Llama-2-7b-chat numbers beside ours.

Online (the default; the hub and GPUs) it runs ``configs/paper/tofu_llama2_forget{01,05,10}.yaml``.
``--offline`` runs ``configs/quickstart/tofu_smollm2.yaml`` (SmolLM2-135M on synthetic TOFU, forget10
style: tens of minutes on 2 CPU cores) and puts the paper's Forget10 numbers beside it -- a different
model and data, for the direction of the findings only (masked updates keep utility better than
full-parameter ones on Forget05/10; on Forget01 masking does not help).

    python experiments/tofu_table.py --offline
    python experiments/tofu_table.py --splits forget05 forget10

Writes ``tofu_table.md`` and ``tofu_table_runs.csv`` under ``--out``; the pipeline runs are kept under
``--out/runs``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import common

SPLITS = ("forget01", "forget05", "forget10")
METRICS = ("forget_rouge", "forget_quality", "model_utility", "time_s", "updated")
# METHOD.md §9, the SPE version's TOFU tables (Llama-2-7b-chat): ROUGE, forget quality, utility, time (s)
PAPER: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "forget01": {"rt": (0.39, 1.0, 0.62, math.nan), "ga": (0.49, 1.3e-3, 0.60, 96), "mape_ga": (0.43, 1.3e-3, 0.63, 148),
                 "gd": (0.55, 1.3e-3, 0.61, 221), "mape_gd": (0.48, 1.3e-3, 0.62, 173)},
    "forget05": {"rt": (0.39, 1.0, 0.62, math.nan), "ga": (0.10, 4.3e-4, 0.11, 404), "mape_ga": (0.17, 4.8e-5, 0.42, 342),
                 "gd": (0.30, 2.8e-4, 0.49, 1009), "mape_gd": (0.33, 0.63, 0.61, 461)},
    "forget10": {"rt": (0.41, 1.0, 0.61, math.nan), "ga": (1.2e-3, 5.4e-18, 0.0, 822), "mape_ga": (0.22, 0.34, 0.51, 589),
                 "gd": (1.3e-2, 1.1e-13, 0.42, 2043), "mape_gd": (0.31, 7.3e-3, 0.61, 844)},
}  # fmt: skip


def lm_rows(summary: Mapping[str, Any], **labels: Any) -> list[dict[str, Any]]:
    """One row per method of a TOFU run (failed methods: NaN metrics and the error)."""
    rows = []
    for name, r in summary["methods"].items():
        fq = r.get("forget_quality")
        rows.append({**labels, "method": name, "forget_rouge": r["forget_rouge"],
                     "forget_quality": math.nan if fq is None else fq, "model_utility": r["model_utility"],
                     "time_s": r["time_s"], "updated": r["params_updated"] / max(r["params_total"], 1),
                     "unlearned": r.get("unlearned"), "failed": ""})  # fmt: skip
    nan = dict.fromkeys(METRICS, math.nan)
    rows += [
        {**labels, "method": n, **nan, "unlearned": None, "failed": why}
        for n, why in summary["failed"].items()
    ]
    return rows


def table(rows: Sequence[Mapping[str, Any]], paper_split: str, title: str) -> str:
    """Markdown: ours (mean over seeds) beside the paper's numbers of ``paper_split``."""
    head = (f"# {title}\n\n| split | method | forget ROUGE | forget quality | model utility | time (s) | updated "
            f"| paper {paper_split}: ROUGE / FQ / MU / time |\n|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for r in common.aggregate(rows, ("split", "method"), METRICS):
        paper = PAPER[paper_split].get(r["method"])
        ref = " / ".join("–" if math.isnan(v) else f"{v:.3g}" for v in paper) if paper else "–"
        label = (
            r["method"].replace("mape_", "MLR-").upper() if r["method"].startswith("mape_") else r["method"]
        )
        lines.append(f"| {r['split']} | {label} | {common.fmt(r['forget_rouge'], digits=3)} | "
                     f"{r['forget_quality']:.3g} | {common.fmt(r['model_utility'], digits=3)} | "
                     f"{common.fmt(r['time_s'], digits=0)} | {100 * r['updated']:.1f}% | {ref} |")  # fmt: skip
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = common.base_parser(
        __doc__, "../quickstart/tofu_smollm2.yaml", online_config=None, offline_seeds=(0,)
    )
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="online: splits")
    args = parser.parse_args()
    _, seeds, out = common.resolve(args, "tofu_table")
    offline = args.offline or args.config is not None
    if offline:
        config = args.config or common.ROOT / "configs/quickstart/tofu_smollm2.yaml"
        settings = [(Path(config), common.load_config(Path(config)).data.options["forget_split"])]
    else:
        settings = [(common.ROOT / f"configs/paper/tofu_llama2_{s}.yaml", s) for s in args.splits]
    rows = []
    for seed in seeds:
        for config, split in settings:
            summary = common.run_config(
                config, common.seed_overrides(seed), out / "runs" / f"{split}-seed{seed}"
            )
            rows += lm_rows(summary, split=split, seed=seed)
    common.write_csv(rows, out / "tofu_table_runs.csv")
    paper_split = settings[-1][1]
    title = f"TOFU: ours (mean over seeds {seeds}) and the paper's Llama-2-7b-chat numbers"
    (out / "tofu_table.md").write_text(table(rows, paper_split, title))
    print((out / "tofu_table.md").read_text())


if __name__ == "__main__":
    main()
