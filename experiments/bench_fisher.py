"""What MAPE-SO's statistics cost with a weight's gradient taken on its selected rows or columns only.

Builds the MiniLM quickstart's data (all-MiniLM-L6-v2, 4,000 bundled tweets) and times, median of
``--repeats``, the per-batch parameter Fisher over ``--fisher-examples`` retain tweets in batches of 32
(:func:`~unlearn_lit.methods.fisher.retain_fisher`) and the forget gradient sum over D_f:

- for SO (every parameter), for reference;
- for a unit mask at ``--sparsity`` (random units per type, the shape of MAPE-SO's and the random-unit
  control's masks) with :class:`~unlearn_lit.methods.fisher.SlicedGradient` slicing each unit weight's
  gradient to its selected rows or columns and the batches' examples sharing length-sorted pieces
  (the default), against the same mask one batch at a time (``MAX_WINDOW = 1``: each batch in its own
  length-sorted pieces, as before the sharing) and with every weight's whole gradient as well
  (``SLICE_FRACTION = 0``, as before the slicing).

It checks that both give the same statistics (largest relative difference in norm) and prints U, one
plain forward + backward pass over 1,000 training examples in the same process.

    python experiments/bench_fisher.py --threads 2
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import common  # noqa: E402
import torch  # noqa: E402

import unlearn_lit.methods.fisher as fisher_module  # noqa: E402
from unlearn_lit.methods.fisher import ParamSelection, forget_gradient_sum, retain_fisher  # noqa: E402
from unlearn_lit.selection import first_examples  # noqa: E402
from unlearn_lit.units import unit_layout  # noqa: E402


def relative(a: dict, b: dict) -> float:
    num = sum(float((a[n] - b[n]).double().pow(2).sum()) for n in b)
    return (num / max(sum(float(v.double().pow(2).sum()) for v in b.values()), 1e-300)) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fisher-examples", type=int, default=256)
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args()
    model, dm = common.minilm_tweets(args.threads)
    retain = first_examples(dm.retain_dataloader(subsample=args.fisher_examples, seed=0, batch_size=32))
    forget = first_examples(dm.forget_dataloader(batch_size=32))
    params = dict(model.named_parameters())
    layout = unit_layout(model)
    gen = torch.Generator().manual_seed(0)
    units = {}
    for kind in layout.kinds:
        shape = layout.shape(kind)
        k = round((1 - args.sparsity) * shape[0] * shape[1])
        flat = torch.zeros(shape[0] * shape[1], dtype=torch.bool)
        flat[torch.randperm(flat.numel(), generator=gen)[:k]] = True
        units[kind] = flat.view(shape)
    masked = ParamSelection(model, layout.param_masks(units, params))
    full = ParamSelection(model, {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()})

    def stats(sel):
        f = retain_fisher(model, retain, sel, mode="per_batch", desc="")
        g, _ = forget_gradient_sum(model, forget, sel, desc="")
        return f, g

    u = common.plain_pass_seconds(model, dm)
    model.eval()
    rows = []
    t_full, _ = common.timed(lambda: stats(full), args.repeats)
    rows.append(("SO: every parameter", full.numel, t_full))
    t_sliced, (f_sliced, g_sliced) = common.timed(lambda: stats(masked), args.repeats)
    saved = fisher_module.SLICE_FRACTION, fisher_module.MAX_WINDOW
    try:
        fisher_module.MAX_WINDOW = 1  # each batch alone (in its own length-sorted pieces)
        t_alone, (f_alone, g_alone) = common.timed(lambda: stats(masked), args.repeats)
        fisher_module.SLICE_FRACTION = 0.0  # and every weight's whole gradient, then its selected entries
        t_whole, (f_whole, g_whole) = common.timed(lambda: stats(masked), args.repeats)
    finally:
        fisher_module.SLICE_FRACTION, fisher_module.MAX_WINDOW = saved
    rows.append(
        (
            f"units at sparsity {args.sparsity}: whole weight gradients, each batch alone",
            masked.numel,
            t_whole,
        )
    )
    rows.append((f"units at sparsity {args.sparsity}: sliced, each batch alone", masked.numel, t_alone))
    rows.append(
        (
            f"units at sparsity {args.sparsity}: sliced, batches sharing pieces (default)",
            masked.numel,
            t_sliced,
        )
    )
    print(
        f"threads {args.threads}, median of {args.repeats}; per-batch Fisher over {args.fisher_examples} retain "
        f"tweets in batches of 32 + forget gradient over {len(dm.forget)}; U = {u:.2f} s"
    )
    print("| statistics of | entries | time (s) | in U |")
    print("|---|---|---|---|")
    for what, n, t in rows:
        print(f"| {what} | {n:,} | {t:.2f} | {t / u:.3f} |")
    print(
        f"sliced against whole: {t_whole / t_alone:.2f}x faster; sharing pieces: {t_alone / t_sliced:.2f}x more"
    )
    print(
        f"largest relative difference (norm) against the whole gradients: Fisher "
        f"{relative(f_sliced.sumsq, f_whole.sumsq):.1e} (each batch alone {relative(f_alone.sumsq, f_whole.sumsq):.1e}), "
        f"forget gradient {relative(g_sliced, g_whole):.1e}"
    )


if __name__ == "__main__":
    main()
