"""What padding costs in the sets measured whole (issue 14): the selection sets and evaluation.

Builds the MiniLM quickstart's data (all-MiniLM-L6-v2, 4,000 bundled tweets, 512 validation, 1,000
test, a 512-example retain slice) and times, median of ``--repeats``:

- one selection-set measurement (:meth:`SelectionSets.measure`, the sets stored re-cut by length)
  against the same forward passes over the loaders' padded batches, as it ran before, and the re-cut
  measurement under bfloat16 autocast (``selection_precision: bf16``);
- ``predict`` on the test split (windows of batches re-cut by length) against a plain loop over the
  padded batches;
- SO's per-batch parameter Fisher (:func:`~unlearn_lit.methods.fisher.retain_fisher`, every parameter)
  over ``--fisher-examples`` retain tweets in the quickstart's batches of 32, each batch computed in
  length-sorted pieces without their padding (:func:`~unlearn_lit.data.buckets.length_parts`) against
  the same batches whole and padded, as it ran before.

It also prints the padding share of the tokens in both layouts, and checks that the re-cut
measurements equal the padded ones (largest difference of the per-example losses; the Fisher's largest
relative difference in norm).

    python experiments/bench_padding.py --threads 1
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import common  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import unlearn_lit.data.buckets  # noqa: E402
from unlearn_lit.data.buckets import sorted_windows  # noqa: E402
from unlearn_lit.eval.metrics import predict  # noqa: E402
from unlearn_lit.methods.fisher import ParamSelection, retain_fisher  # noqa: E402
from unlearn_lit.selection import SelectionSets, first_examples  # noqa: E402


def padding(batches: list[dict]) -> float:
    masks = [b["attention_mask"] for b in batches]
    return 1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)


@torch.inference_mode()
def padded_losses(model, batches: list[dict]) -> torch.Tensor:
    return torch.cat([F.cross_entropy(model(b), b["labels"], reduction="none") for b in batches])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fisher-examples", type=int, default=256)
    args = parser.parse_args()
    model, dm = common.minilm_tweets(args.threads)
    retain = first_examples(dm.retain_dataloader(subsample=512, seed=0))
    forget, val = first_examples(dm.forget_dataloader()), first_examples(dm.val_dataloader(), 512)
    sets = SelectionSets(model, retain, forget, val)
    padded = retain + forget + val
    recut = sets.retain + sets.forget + sets.val
    t_padded, losses = common.timed(lambda: padded_losses(model, padded), args.repeats)
    t_recut, _ = common.timed(lambda: sets.measure(model), args.repeats)
    bf16 = SelectionSets(model, retain, forget, val, autocast=torch.bfloat16)
    t_bf16, _ = common.timed(lambda: bf16.measure(model), args.repeats)
    test = first_examples(dm.test_dataloader())
    t_test_padded, test_losses = common.timed(lambda: padded_losses(model, test), args.repeats)
    t_test, out = common.timed(lambda: predict(model, dm.test_dataloader()), args.repeats)
    diff = (out.losses - test_losses).abs().max().item()
    ref = sets.ref["retain_loss"] - losses[: sets.sizes()["retain"]].double().mean().item()
    print(f"threads {args.threads}, median of {args.repeats}")
    print(
        "| set | examples | padding, padded batches | padding, re-cut | padded (s) | re-cut (s) | speed-up |"
    )
    print("|---|---|---|---|---|---|---|")
    n_sel = sum(sets.sizes().values())
    print(
        f"| selection sets (one candidate) | {n_sel} | {padding(padded):.1%} | {padding(recut):.1%} | "
        f"{t_padded:.2f} | {t_recut:.2f} | {t_padded / t_recut:.2f}x |"
    )
    print(
        f"| test split (predict) | {len(out.losses)} | {padding(test):.1%} | "
        f"{padding(_recut(test)):.1%} | "
        f"{t_test_padded:.2f} | {t_test:.2f} | {t_test_padded / t_test:.2f}x |"
    )
    fisher_batches = first_examples(
        dm.retain_dataloader(subsample=args.fisher_examples, seed=0, batch_size=32)
    )
    sel = ParamSelection(
        model, {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
    )
    t_pieces, pieces = common.timed(
        lambda: retain_fisher(model, fisher_batches, sel, mode="per_batch"), args.repeats
    )
    rows = unlearn_lit.data.buckets.PART_ROWS
    unlearn_lit.data.buckets.PART_ROWS = 10**9  # every batch whole and padded, as before length_parts
    try:
        t_whole, whole = common.timed(
            lambda: retain_fisher(model, fisher_batches, sel, mode="per_batch"), args.repeats
        )
    finally:
        unlearn_lit.data.buckets.PART_ROWS = rows
    diff2 = sum(float((pieces.sumsq[n] - w).pow(2).sum()) for n, w in whole.sumsq.items())
    rel = (diff2 / sum(float(w.pow(2).sum()) for w in whole.sumsq.values())) ** 0.5
    print(
        f"| per-batch Fisher, SO (batches of 32) | {args.fisher_examples} | {padding(fisher_batches):.1%} | "
        f"{padding(_pieces(fisher_batches)):.1%} | {t_whole:.2f} | {t_pieces:.2f} | {t_whole / t_pieces:.2f}x |"
    )
    print(
        f"selection sets (one candidate), re-cut, under bfloat16 autocast (selection_precision: bf16): "
        f"{t_bf16:.2f} s, {t_recut / t_bf16:.2f}x faster than float32; largest row difference "
        f"{max(abs(bf16.ref[k] - sets.ref[k]) for k in ('retain_loss', 'forget_loss', 'val_loss')):.1e} nats"
    )
    print(f"largest |loss difference| on the test split: {diff:.2e}; retain-loss mean difference: {ref:.2e}")
    print(f"Fisher, pieces against whole batches: relative difference {rel:.2e} (norm over every entry)")


def _pieces(batches: list[dict]) -> list[dict]:
    return [p for b in batches for p in unlearn_lit.data.buckets.length_parts(b)]


def _recut(batches: list[dict]) -> list[dict]:
    return [b for window, _ in sorted_windows(batches) for b in window]


if __name__ == "__main__":
    main()
