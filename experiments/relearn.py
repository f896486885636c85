"""Relearning attack (METHOD.md §7): fine-tune each unlearned model on half of D_f for a few steps and
compare its forget-accuracy curve with RT's under the same attack (same examples, order and seed; the
pipeline's ``relearn`` section).

An unlearned model whose accuracy on D_f -- above all on the held-out half it was not fine-tuned on --
climbs much faster than RT's has hidden D_f rather than removed it. The original model (which was
trained on D_f) is the other reference. The attacker uses Adam at the learning rate of the config's FT
(a rate that moves this model without wrecking it) unless ``--lr`` is given. The paper reports no
numbers for this figure in METHOD.md §8.

Online (the default; network and GPU) it runs ``configs/paper/glue_bert_base_mnli.yaml``;
``--offline`` runs ``configs/offline/vit_digits.yaml`` (tiny ViT on digits, 3 forget seeds).

    python experiments/relearn.py --offline
    python experiments/relearn.py --offline --methods so mape_so --steps 40

Writes ``relearn.{md,csv,png}`` (the markdown: forget and held-out accuracy at a few steps) and
``relearn_runs.csv`` (every step of every curve) under ``--out``.
"""

from __future__ import annotations

import common

METHODS = ("ft", "ga", "mape_ga", "so", "mape_so", "random_so")
CURVES = ("forget_acc", "heldout_acc", "attack_acc")
SHOWN = ("forget_acc", "heldout_acc")


def finetune_lr(cfg) -> float | None:
    """The full-parameter learning rate of the config's FT: fine-tuning this model at a rate that moves
    it without wrecking it is the attacker's natural choice. None when FT uses its default for the
    model's size (the attack then resolves the same default, ``attack_lr``)."""
    return cfg.method_options.resolve("ft").optim.lr


def curve_rows(summary: dict, seed: int) -> list[dict]:
    """One row per model and attack step of a run's ``relearn`` curves."""
    return [
        {"model": name, "seed": seed, **{k: r[k] for k in ("step", *CURVES)}}
        for name, curve in summary["relearn"].items()
        for r in curve
    ]


def snapshots(rows: list[dict], steps: list[int]) -> list[dict]:
    """One row per model with ``<curve>@<step>`` (and its ``_std``) for the shown curves at ``steps``."""
    out: dict[str, dict] = {}
    for r in rows:
        if r["step"] in steps:
            row = out.setdefault(r["model"], {"model": r["model"]})
            for c in SHOWN:
                row[f"{c}@{r['step']}"], row[f"{c}@{r['step']}_std"] = r[c], r[f"{c}_std"]
    return list(out.values())


def main() -> None:
    parser = common.base_parser(__doc__, "vit_digits.yaml")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="methods to attack")
    parser.add_argument("--steps", type=int, default=20, help="attack steps")
    parser.add_argument(
        "--lr", type=float, default=None, help="attack learning rate (default: the config's FT rate)"
    )
    parser.add_argument("--fraction", type=float, default=0.5, help="fraction of D_f the attacker trains on")
    parser.add_argument("--batch-size", type=int, default=16, help="attack batch size")
    args = parser.parse_args()
    config, seeds, out = common.resolve(args, "relearn")
    lr = args.lr if args.lr is not None else finetune_lr(common.load_config(config))
    attack = {"fraction": args.fraction, "steps": args.steps, "lr": lr, "batch_size": args.batch_size}
    raw, used = [], set()
    for seed in seeds:  # the attack's seed (which half of D_f) follows the forget seed
        overrides = {"methods": ["rt", *args.methods], "relearn": {**attack, "seed": seed}}
        summary = common.run_config(
            config, common.merge(overrides, common.seed_overrides(seed)), out / "runs" / f"seed{seed}"
        )
        raw += curve_rows(summary, seed)
        used |= {r["lr"] for curve in summary["relearn"].values() for r in curve if "lr" in r}
    rows = common.aggregate(raw, ("model", "step"), CURVES)
    steps = sorted({0, args.steps // 4, args.steps // 2, args.steps})
    columns = {f"{c}@{s}": (f"{common.COLUMNS[c][0]} @{s}", 100.0, 1) for c in SHOWN for s in steps}
    rate = ", ".join(f"{x:g}" for x in sorted(used)) + (
        "" if lr is not None else ": FT's default for this model"
    )
    notes = (
        f"Mean ± std over seeds {seeds}. Attack: {args.steps} Adam steps (batch {args.batch_size}, lr {rate}) "
        f"on a seeded {args.fraction:.0%} of D_f. `D_f acc @k` = accuracy on all of D_f after k steps, "
        "`held-out acc @k` = on the part of D_f the attacker did not train on. Compare each row with `rt` "
        "(never saw D_f) and `original` (trained on it). The paper gives no numbers for this figure."
    )
    table = common.markdown_table(snapshots(rows, steps), ("model",), list(columns), spec=columns)
    common.write_report(out, "relearn", "Relearning attack", notes, table, rows, raw)
    common.plot_panels(
        rows,
        "step",
        SHOWN,
        "model",
        out / "relearn.png",
        title="Relearning attack on half of D_f",
        xlabel="attack step",
    )


if __name__ == "__main__":
    main()
