"""The least each of issue 14's MiniLM cost targets can cost at the sample sizes the method uses.

Issue 14 asks, on the MiniLM quickstart's setup (all-MiniLM-L6-v2, 4,000 bundled tweets, |D_f| = 128),
for MAPE-SO's whole cost ≤ 1 U, its selection ≤ phase 1, GA's selection ≤ 0.25 × its optimizer steps and
MAPE-SO ≤ 0.1 × RT, where U is one plain forward + backward pass over 1,000 training examples. This
script times the passes every implementation needs at least, per 1,000 examples, median of
``--repeats``, in this process:

- ``fwd``: a forward pass in inference mode (the selection sets: length-sorted batches of 32);
- ``fwd+act``: a forward pass and the backward pass of the activations only, no weight gradient at all
  (the least a mask gradient or a parameter gradient needs: phase 1, the Fisher, the forget gradient);

each in float32 and under bfloat16 autocast, and U itself (:func:`common.plain_pass_seconds`). From the
cheaper dtype of each it computes a **floor** per target: what the work costs with no overhead, no
weight gradient, every pass in the cheaper dtype, phase 1 and the SO statistics sharing one pass over
their examples (which the code does not do), and the selection measuring one candidate beside θ*'s row.
A floor above its target means no implementation meets the target at these sample sizes; the script
also prints the factor the sample sizes would have to shrink by for the floor to meet it.

    python experiments/cost_floor.py --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import common  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from unlearn_lit.data.buckets import sort_by_length  # noqa: E402
from unlearn_lit.selection import first_examples  # noqa: E402

# The MiniLM quickstart's sizes (configs/quickstart/minilm_tweets.yaml and the method defaults)
FORGET = 128  # |D_f|
PHASE1_RETAIN = 1024  # mask.retain_subsample
FISHER = 1024  # method_options.so.fisher_examples
SELECTION = 512 + FORGET + 512  # the selection sets: retain slice, D_f, validation
SCREEN = 3 * 64  # one checkpoint's screen (64 examples of each set)
GA_STEPS, GA_BATCH, GA_CANDIDATES = 40, 32, 20  # max_steps, forget_batch_size, candidates
RT_EXAMPLES = 3 * (4000 - FORGET)  # RT: 3 epochs over D_r (the recipe)


def embedding_module(model: nn.Module) -> nn.Module:
    """The backbone's embedding block (its output is where the activation backward can stop)."""
    for name, module in model.named_modules():
        if name.endswith("embeddings") and not name.endswith("word_embeddings"):
            return module
    raise ValueError("no embeddings module found")


def per_thousand(model: nn.Module, batches: list[dict], backward: bool, dtype: torch.dtype | None,
                 repeats: int) -> float:  # fmt: skip
    """Seconds per 1,000 examples of a forward pass (inference mode) or a forward + activation backward."""
    n = sum(len(b["labels"]) for b in batches)
    cast = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype else contextlib.nullcontext
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    hook = embedding_module(model).register_forward_hook(lambda m, i, out: out.detach().requires_grad_())
    try:

        def run() -> None:
            for batch in batches:
                if backward:
                    with cast():
                        loss = model.per_example_loss(batch).float().sum()
                    loss.backward()
                else:
                    with torch.inference_mode(), cast():
                        model(batch)

        run()  # warm-up
        seconds, _ = common.timed(run, repeats)
    finally:
        hook.remove()
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return seconds * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=512, help="retain tweets each pass is timed on")
    args = parser.parse_args()
    model, dm = common.minilm_tweets(args.threads)
    batches, _ = sort_by_length(first_examples(dm.retain_dataloader(subsample=args.examples, seed=0)), 32)
    unit = common.plain_pass_seconds(model, dm)
    model.eval()
    cost = {}
    for label, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
        cost[label] = {
            "fwd": per_thousand(model, batches, False, dtype, args.repeats) / unit,
            "fwd+act": per_thousand(model, batches, True, dtype, args.repeats) / unit,
        }
    fwd = min(c["fwd"] for c in cost.values())
    act = min(c["fwd+act"] for c in cost.values())
    print(f"U = {unit:.2f} s (plain forward + backward over 1,000 training examples, float32, train mode)")
    print("\n| pass, per 1,000 examples | float32 (U) | bfloat16 (U) |\n|---|---|---|")
    for key in ("fwd", "fwd+act"):
        print(f"| {key} | {cost['float32'][key]:.3f} | {cost['bfloat16'][key]:.3f} |")

    k = 1 / 1000
    phase1 = (PHASE1_RETAIN + FORGET) * act * k  # phase 1 alone
    fused = phase1  # phase 1 with the Fisher and forget gradient fused into its pass (not the code)
    full = SELECTION * fwd * k  # one measurement of the full selection sets
    total = fused + 2 * full  # θ*'s row and one candidate
    rt = RT_EXAMPLES * k  # RT's training passes, 1 U per 1,000 examples
    print(
        f"\nFloors at the quickstart's sizes: phase 1 on {PHASE1_RETAIN} + {FORGET} examples, the SO "
        f"statistics fused into it ({fused:.3f} U; the code runs its own Fisher over {FISHER} and forget "
        f"gradient over {FORGET}), and the selection measuring θ* and one candidate on its {SELECTION} "
        f"examples ({2 * full:.3f} U); RT's {RT_EXAMPLES} training examples ({rt:.2f} U).\n"
    )
    print("| target | floor | meets it | the sizes would have to shrink by |\n|---|---|---|---|")
    for name, floor, target in (("MAPE-SO total ≤ 1 U", total, 1.0), ("MAPE-SO / RT ≤ 0.1", total / rt, 0.1)):
        verdict = "yes" if floor <= target else "no"
        print(
            f"| {name} | {floor:.3f} | {verdict} | {'–' if floor <= target else f'{floor / target:.2f}x'} |"
        )
    ga_steps = GA_STEPS * GA_BATCH * k  # float32 training steps
    screens = GA_CANDIDATES * SCREEN / SELECTION  # in full measurements
    print(
        "\nBudgets in full measurements of the selection sets "
        f"({full:.3f} U each; a screen of {SCREEN} is {SCREEN / SELECTION:.2f} of one):\n"
    )
    print(
        "| target | budget (U) | full measurements it affords | the default search needs |\n|---|---|---|---|"
    )
    print(
        f"| MAPE-SO selection ≤ 1 × phase 1 (at its floor) | {phase1:.3f} | {phase1 / full:.1f} | θ* free, "
        f"12 screens ({12 * SCREEN / SELECTION:.1f}) + 2–4 full (screen choice, 3 bisection rounds) |"
    )
    print(
        f"| GA selection ≤ 0.25 × its {GA_STEPS} steps | {0.25 * ga_steps:.3f} | {0.25 * ga_steps / full:.1f} | "
        f"θ* free, {GA_CANDIDATES} screens ({screens:.1f}) + up to 4 confirmations |"
    )


if __name__ == "__main__":
    main()
