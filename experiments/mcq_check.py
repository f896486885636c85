"""Does a pretrained model know mcq_synthetic's facts? (METHOD.md §9: the WMDP analog needs a forget
topic the model answers above chance before unlearning.) Scores every topic's four-choice questions
with the project's scorer (:mod:`unlearn_lit.eval.mcq`) in both formats and prints the accuracy per
topic and the letter the model picks -- the numbers in the README's LLM section.

    python experiments/mcq_check.py                      # SmolLM2-135M-Instruct (offline, ~5 min on 2 cores)
    python experiments/mcq_check.py --backbone tiny_llama --backbone_options '{"tokenizer": "chars"}'
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np
import torch

from unlearn_lit.data import build_dataset
from unlearn_lit.eval.mcq import FORMATS, choice_logliks, predicted
from unlearn_lit.models import build_backbone


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="smollm2_135m")
    parser.add_argument("--backbone_options", type=json.loads, default={})
    parser.add_argument("--seed", type=int, default=0, help="mcq_synthetic's seed (the answer positions)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    backbone = build_backbone(args.backbone, **args.backbone_options).eval()
    spec = build_dataset("mcq_synthetic", seed=args.seed)
    rows = [*spec.eval_sets["forget_mcq"], *spec.eval_sets["retain_mcq"]]
    out: dict[str, dict[str, float]] = {}
    for fmt in args.formats:
        scores = choice_logliks(backbone, rows, fmt=fmt)
        picks = [predicted(s, e, fmt) for s, e in zip(scores, rows, strict=True)]
        right = collections.defaultdict(list)
        for e, p in zip(rows, picks, strict=True):
            right[e["topic"]].append(p == e["answer"])
        out[fmt] = {t: float(np.mean(v)) for t, v in right.items()}
        letters = collections.Counter("ABCD"[p] for p in picks)
        print(f"{fmt}: " + ", ".join(f"{t} {np.mean(v):.3f} ({sum(v)}/{len(v)})" for t, v in right.items())
              + f"; chosen letters {dict(sorted(letters.items()))}")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
