"""Relearning attack (METHOD.md §7): how fast does forgotten knowledge come back?

Fine-tune a copy of a model on a seeded part of D_f for k steps and record, after every step, the
accuracy (and mean loss) on the whole forget set, on the attacked part and on the held-out rest of D_f.
The same attack -- same examples, same batch order, same seed -- on RT gives the reference curve: an
unlearned model whose forget accuracy climbs much faster than RT's has hidden, not removed, D_f.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from unlearn_lit.config.phases import RELEARN_OPTIMIZERS as OPTIMIZERS  # noqa: F401  (re-exported)
from unlearn_lit.config.phases import RelearnConfig
from unlearn_lit.models.base import Backbone


def _optimizer(params, cfg: RelearnConfig, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, weight_decay=cfg.weight_decay)


def attack_lr(model: Backbone, cfg: RelearnConfig) -> float:
    """The attack's learning rate: ``cfg.lr``, or FT's default for ``model``'s size when it is None."""
    if cfg.lr is not None:
        return float(cfg.lr)
    from unlearn_lit.methods.finetune import auto_lr  # methods import the eval package

    return auto_lr(sum(p.numel() for p in model.parameters()))


def split_attack(n_forget: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (attacked, held-out) positions into D_f; at least one attacked example."""
    perm = np.random.default_rng([seed, 7]).permutation(n_forget)
    k = max(1, round(fraction * n_forget))
    return np.sort(perm[:k]), np.sort(perm[k:])


@torch.inference_mode()
def _measure(model: Backbone, loader: DataLoader | None, device: torch.device) -> tuple[float, float]:
    """(accuracy, mean loss); accuracy is NaN for non-classification tasks, both NaN for an empty set."""
    if loader is None:
        return math.nan, math.nan
    model.eval()
    correct, losses = [], []
    for batch in loader:
        batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        logits = model(batch)
        losses.append(model.per_example_loss(batch, logits).double())
        if model.task == "classification":
            correct.append((logits.argmax(-1) == batch["labels"]).double())
    acc = torch.cat(correct).mean().item() if correct else math.nan
    return acc, torch.cat(losses).mean().item()


def relearn_attack(
    model: Backbone,
    forget: Dataset | Sequence[dict[str, Any]],
    cfg: RelearnConfig,
    collate: Callable | None = None,
) -> list[dict[str, float]]:
    """Fine-tunes a copy of ``model`` on part of ``forget``; ``model`` itself is untouched.

    Args:
        model: the model under attack (an unlearned model, or RT for the reference curve).
        forget: D_f as raw examples.
        cfg: the attack.
        collate: batch function (default ``model.collate``).

    Returns:
        One dict per step 0..k: ``step``, ``forget_acc``/``forget_loss`` (all of D_f),
        ``attack_acc``/``attack_loss`` (the fine-tuned part) and ``heldout_acc``/``heldout_loss`` (the rest),
        ``train_loss`` (the step's batch loss; NaN at step 0) and ``lr`` (the attack's learning rate,
        :func:`attack_lr`).
    """
    collate = collate or model.collate
    attacked, held = split_attack(len(forget), cfg.fraction, cfg.seed)
    device = next(model.parameters()).device

    def loader(pos, shuffle=False, generator=None):
        if len(pos) == 0:
            return None
        size = cfg.batch_size if shuffle else cfg.eval_batch_size
        return DataLoader(
            Subset(forget, pos.tolist()), size, shuffle=shuffle, generator=generator, collate_fn=collate
        )

    evals = {"forget": loader(np.arange(len(forget))), "attack": loader(attacked), "heldout": loader(held)}
    attacker = copy.deepcopy(model)
    lr = attack_lr(model, cfg)
    opt = _optimizer([p for p in attacker.parameters() if p.requires_grad], cfg, lr)
    train = loader(attacked, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed))
    rows, batches, train_loss = [], iter(()), math.nan
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        for step in tqdm(range(cfg.steps + 1), desc="relearn", leave=False, disable=None):
            if step > 0:
                batch = next(batches, None)
                if batch is None:  # a new pass over the attacked part
                    batches = iter(train)
                    batch = next(batches)
                batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                attacker.train()
                loss = attacker.per_example_loss(batch).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                train_loss = loss.item()
            row = {"step": step, "train_loss": train_loss, "lr": lr}
            for name, ld in evals.items():
                row[f"{name}_acc"], row[f"{name}_loss"] = _measure(attacker, ld, device)
            rows.append(row)
    return rows


def relearn_curves(
    models: Mapping[str, Backbone], forget: Dataset | Sequence[dict[str, Any]], cfg: RelearnConfig
) -> dict[str, list[dict[str, float]]]:
    """The same attack on every model, e.g. ``{"unlearned": θ_u, "retrain": RT}``."""
    return {name: relearn_attack(m, forget, cfg) for name, m in models.items()}


def plot_relearn(
    curves: Mapping[str, list[dict[str, float]]],
    path: str | os.PathLike,
    metric: str = "forget_acc",
    title: str = "",
) -> Path:
    """Writes a PNG of ``metric`` per step, one line per model (written atomically, Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, rows in curves.items():
        if rows and metric not in rows[0]:
            raise KeyError(f"metric {metric!r} not in the curves; valid choices: {', '.join(rows[0])}")
        ax.plot([r["step"] for r in rows], [r[metric] for r in rows], marker="o", ms=3, label=name)
    ax.set_xlabel("relearning step")
    ax.set_ylabel(metric)
    ax.set_title(title or "relearning attack on D_f")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png.tmp", delete=False) as f:
        fig.savefig(f, format="png", dpi=120)
    os.replace(f.name, path)
    return path
