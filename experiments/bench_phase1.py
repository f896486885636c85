"""Benchmark: phase-1 cost relative to plain training passes, and search cost relative to phase 1.

Prints, for MiniLM on the bundled tweets and a tiny ViT on digits (|D_f| = 128):

- phase-1 time / time of one plain forward+backward pass (weight gradients) over the same examples
  (target <= 1.2): the batched [B, L, n] mask trick should cost about one training pass;
- search time / phase-1 time (target <= 0.1);

each the median of ``--repeats`` runs. Also writes the MiniLM mask artifact (mask.safetensors,
mask.json, mask.png) under ``--out``.

    python experiments/bench_phase1.py --repeats 3 --out runs/bench_phase1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402

from unlearn_lit.data import build_datamodule  # noqa: E402
from unlearn_lit.models import build_backbone  # noqa: E402
from unlearn_lit.phases.mask_learning import (
    MaskConfig,  # noqa: E402
    learn_mask,  # noqa: E402
)

SETUPS = {
    "vit_digits": dict(backbone="vit_digits", data="digits", retain=1024, batch=64),
    "minilm_tweets": dict(backbone="minilm", data="tweets", retain=512, batch=32),
}


def plain_pass_seconds(backbone, examples, batch_size: int) -> float:
    """One forward+backward with weight gradients over ``examples`` (the cost phase 1 is compared to)."""
    backbone.eval()
    loader = DataLoader(examples, batch_size, collate_fn=backbone.collate)
    t0 = time.perf_counter()
    for batch in loader:
        backbone.zero_grad(set_to_none=True)
        backbone.per_example_loss(batch).mean().backward()
    return time.perf_counter() - t0


def bench(name: str, repeats: int, out: Path) -> dict:
    s = SETUPS[name]
    dm = build_datamodule(s["data"], forget="random", forget_size=128, seed=0)
    backbone = build_backbone(s["backbone"], num_labels=dm.dataset.num_labels)
    n_retain = min(s["retain"], len(dm.retain))
    cfg = MaskConfig(retain_subsample=n_retain, search_rows=n_retain, batch_size=s["batch"], seed=0)
    phase1, search, plain = [], [], []
    for _ in range(repeats):
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        art = learn_mask(
            backbone, cfg, dm.forget, dm.retain, out_dir=target, accelerator="cpu", enable_progress_bar=False
        )
        phase1.append(art.summary["time_s"]["phase1"])
        search.append(art.summary["time_s"]["search"])
        positions = torch.randperm(len(dm.retain), generator=torch.Generator().manual_seed(0))[:n_retain]
        examples = list(dm.forget) + list(Subset(dm.retain, positions.sort().values.tolist()))
        plain.append(plain_pass_seconds(backbone, examples, s["batch"]))
    med = {k: statistics.median(v) for k, v in (("phase1", phase1), ("search", search), ("plain", plain))}
    return {
        "setup": name,
        "forget": len(dm.forget),
        "retain_used": n_retain,
        "phase1_s": round(med["phase1"], 3),
        "plain_fwd_bwd_s": round(med["plain"], 3),
        "phase1_over_plain": round(med["phase1"] / med["plain"], 3),
        "search_s": round(med["search"], 3),
        "search_over_phase1": round(med["search"] / med["phase1"], 3),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="vit_digits,minilm_tweets", help=f"comma list of {list(SETUPS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_phase1"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = [bench(name, args.repeats, args.out) for name in args.setups.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phase1_bench.json").write_text(json.dumps(rows, indent=2))
    header = "| setup | |D_f| | retain used | phase 1 (s) | plain fwd+bwd (s) | ratio (≤ 1.2) | search (s) | search / phase 1 (≤ 0.1) |"
    print(header + "\n|" + "---|" * 8)
    for r in rows:
        print(
            f"| {r['setup']} | {r['forget']} | {r['retain_used']} | {r['phase1_s']} | {r['plain_fwd_bwd_s']} | "
            f"{r['phase1_over_plain']} | {r['search_s']} | {r['search_over_phase1']} |"
        )


if __name__ == "__main__":
    main()
