"""Unit scores and top-k unit selection for mask learning (MAPE-Unlearn, METHOD.md §3).

Statistics and scores are dicts ``kind -> [L, n]`` tensors, with ``kind`` in ``("head", "filter")``,
``L`` layers and ``n`` units per layer (heads or filters). Each objective maps statistics to scores:

- **MLR**: ``SC_i = g^f_i + α · F^r_i`` (g^f: signed sum of forget mask gradients, F^r: mean of squared
  retain mask gradients). Freezing unit i costs ``SC_i`` in retain loss, so the top k are selected.
- **MLF**: ``SC_i = g^r_i + α · F^f_i``; read literally the argmax freezes the highest scores, so the
  bottom k are selected by default.
- **NORM**: the L2 norm over D_f of a unit's per-example mask gradients.
- **random**: seeded uniform scores, a control.

:func:`select_units` then selects ``k = round((1 − S) · n_kind)`` units per kind, ranked globally across
layers (or one budget over all maskable kinds).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

import torch
from torch import Tensor

from unlearn_lit.config.names import KINDS, MASKABLE, check_sparsity, maskable_kinds  # noqa: F401  (re-exported)
from unlearn_lit.registry import Registry

Budget = Literal["per_kind", "joint"]
Select = Literal["top", "bottom"]
FisherScale = Literal["mean", "sum"]
PerKind = dict[str, Tensor]


def _check_choice(name: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_per_kind(
    name: str, tensors: Mapping[str, Tensor], like: Mapping[str, Tensor] | None = None
) -> PerKind:
    """Validates a ``kind -> [L, n]`` dict (finite floating tensors) and returns it as a plain dict.

    Raises:
        ValueError: unknown kind, wrong rank or dtype, non-finite entries, or kinds / shapes differing
            from ``like``.
    """
    if not isinstance(tensors, Mapping) or not tensors:
        raise ValueError(f"{name} must be a non-empty dict kind -> [L, n] tensor with kinds in {KINDS}")
    for kind, t in tensors.items():
        _check_choice(f"{name} kind", kind, KINDS)
        if not isinstance(t, Tensor) or t.dim() != 2 or not t.is_floating_point():
            found = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name}[{kind!r}] must be a floating [L, n] tensor; found {found}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}[{kind!r}] has non-finite entries")
        if like is not None and (kind not in like or like[kind].shape != t.shape):
            expected = tuple(like[kind].shape) if kind in like else "no such kind"
            raise ValueError(f"{name}[{kind!r}] has shape {tuple(t.shape)}; expected {expected}")
    if like is not None and set(like) != set(tensors):
        raise ValueError(f"{name} has kinds {sorted(tensors)}; expected {sorted(like)}")
    return dict(tensors)


def mlr_scores(
    forget_grad_sum: PerKind,
    retain_fisher: PerKind,
    *,
    alpha: float = 0.5,
    fisher_scale: FisherScale = "mean",
    num_retain: int | None = None,
) -> PerKind:
    """MLR score ``SC = g^f + α · F^r`` (METHOD.md §3).

    Args:
        forget_grad_sum: g^f, the signed sum over D_f of per-example mask gradients.
        retain_fisher: F^r, the mean over D_r of squared per-example mask gradients.
        alpha: weight of the Fisher term (1/2 in the paper).
        fisher_scale: ``"mean"`` keeps the literal scale; ``"sum"`` multiplies F^r by ``num_retain``.
        num_retain: |D_r|, required for ``fisher_scale="sum"``.
    """
    grads = check_per_kind("forget_grad_sum", forget_grad_sum)
    fisher = check_per_kind("retain_fisher", retain_fisher, like=grads)
    return _gradient_plus_fisher(grads, fisher, alpha, fisher_scale, num_retain, "num_retain")


def mlf_scores(
    retain_grad_sum: PerKind,
    forget_fisher: PerKind,
    *,
    alpha: float = 0.5,
    fisher_scale: FisherScale = "mean",
    num_forget: int | None = None,
) -> PerKind:
    """MLF score ``SC = g^r + α · F^f``; the registered default selects the bottom k (METHOD.md §3).

    Args:
        retain_grad_sum: g^r, the signed sum over D_r of per-example mask gradients.
        forget_fisher: F^f, the mean over D_f of squared per-example mask gradients.
        alpha: weight of the Fisher term.
        fisher_scale: ``"mean"`` (literal) or ``"sum"`` (F^f multiplied by ``num_forget``).
        num_forget: |D_f|, required for ``fisher_scale="sum"``.
    """
    grads = check_per_kind("retain_grad_sum", retain_grad_sum)
    fisher = check_per_kind("forget_fisher", forget_fisher, like=grads)
    return _gradient_plus_fisher(grads, fisher, alpha, fisher_scale, num_forget, "num_forget")


def _gradient_plus_fisher(
    grads: PerKind, fisher: PerKind, alpha: float, fisher_scale: str, count: int | None, count_name: str
) -> PerKind:
    _check_choice("fisher_scale", fisher_scale, ("mean", "sum"))
    scale = 1.0
    if fisher_scale == "sum":
        if not isinstance(count, int) or count <= 0:
            raise ValueError(f"fisher_scale='sum' needs {count_name} > 0; got {count!r}")
        scale = float(count)
    return {kind: grads[kind] + alpha * scale * fisher[kind] for kind in grads}


def norm_scores(forget_grad_sq_sum: PerKind) -> PerKind:
    """NORM score ``sqrt(Σ_{x∈D_f} (∂ℓ(x)/∂m_i)²)`` from the per-unit sums of squares."""
    forget_grad_sq_sum = check_per_kind("forget_grad_sq_sum", forget_grad_sq_sum)
    for kind, t in forget_grad_sq_sum.items():
        if (t < 0).any():
            raise ValueError(
                f"forget_grad_sq_sum[{kind!r}] has negative entries; it must be a sum of squares"
            )
    return {kind: t.sqrt() for kind, t in forget_grad_sq_sum.items()}


def random_scores(
    shapes: Mapping[str, Sequence[int]], *, seed: int = 0, device: torch.device | str = "cpu"
) -> PerKind:
    """Seeded uniform scores, so that top-k selects k random units per kind.

    Args:
        shapes: ``kind -> (L, n)``.
        seed: the same seed gives the same scores (kinds are drawn in the fixed order of ``KINDS``).
        device: where the scores live.
    """
    if not shapes:
        raise ValueError(f"shapes must be a non-empty dict kind -> (L, n) with kinds in {KINDS}")
    for kind, shape in shapes.items():
        _check_choice("shapes kind", kind, KINDS)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shapes[{kind!r}] must be (L, n) with L, n >= 1; got {tuple(shape)}")
    generator = torch.Generator().manual_seed(seed)
    return {
        kind: torch.rand(tuple(shapes[kind]), generator=generator, dtype=torch.float64).to(device)
        for kind in KINDS
        if kind in shapes
    }


@dataclass(frozen=True)
class Objective:
    """A registered mask-learning objective.

    Attributes:
        score: computes ``kind -> [L, n]`` scores from statistics (keyword arguments) and options.
        statistics: the statistics ``score`` needs, as keys of the mapping given to :func:`compute_scores`.
        select: the default selection direction (``"top"`` selects the highest scores).
        block_search: the objective has a block form the greedy search refines (METHOD.md §4; MLR).
    """

    score: Callable[..., PerKind]
    statistics: tuple[str, ...]
    select: Select
    block_search: bool = False


OBJECTIVES: Registry[Objective] = Registry("mask objective")
OBJECTIVES.register("mlr")(
    Objective(mlr_scores, ("forget_grad_sum", "retain_fisher"), "top", block_search=True)
)
OBJECTIVES.register("mlf")(Objective(mlf_scores, ("retain_grad_sum", "forget_fisher"), "bottom"))
OBJECTIVES.register("norm")(Objective(norm_scores, ("forget_grad_sq_sum",), "top"))
OBJECTIVES.register("random")(Objective(random_scores, (), "top"))


def compute_scores(name: str, statistics: Mapping[str, object], **options: object) -> PerKind:
    """Scores of the objective ``name`` from a mapping that holds (at least) its statistics.

    Options are passed on as keyword arguments (e.g. ``alpha``, ``fisher_scale``, ``num_retain``;
    ``shapes`` and ``seed`` for ``"random"``).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the objectives).
        ValueError: a statistic or an option is missing or invalid.
    """
    objective = OBJECTIVES.get(name)
    missing = [s for s in objective.statistics if s not in statistics]
    if missing:
        raise ValueError(
            f"objective {name!r} needs statistics {list(objective.statistics)}; missing {missing}"
        )
    valid = [p for p in inspect.signature(objective.score).parameters if p not in objective.statistics]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"objective {name!r} does not take options {unknown}; valid options: {valid}")
    return objective.score(**{s: statistics[s] for s in objective.statistics}, **options)


def objective_options(name: str, available: Mapping[str, object]) -> dict[str, object]:
    """The options objective ``name`` takes, picked from ``available`` by its score function's signature
    (``alpha``, ``fisher_scale``, ``num_retain``/``num_forget``, ``shapes``, ``seed``, ...): callers pass
    everything they have and never branch on objective names."""
    objective = OBJECTIVES.get(name)
    takes = set(inspect.signature(objective.score).parameters) - set(objective.statistics)
    return {k: v for k, v in available.items() if k in takes}


def num_selected(num_units: int, sparsity: float) -> int:
    """``k = round((1 − S) · n)``, rounding halves up in exact decimal arithmetic (0.9 means 9/10)."""
    check_sparsity(sparsity)
    keep = (1 - Decimal(repr(float(sparsity)))) * num_units
    return int(keep.to_integral_value(rounding=ROUND_HALF_UP))


def select_units(
    scores: Mapping[str, Tensor],
    sparsity: float,
    budget: Budget = "per_kind",
    select: Select = "top",
    kinds: Collection[str] | None = None,
) -> dict[str, Tensor]:
    """Selects units by score, ranked globally across layers (METHOD.md §3, warm start of §4).

    Args:
        scores: ``kind -> [L, n]`` scores.
        sparsity: S, the fraction of frozen units among the maskable ones, in [0, 1).
        budget: ``"per_kind"`` selects ``round((1 − S) · n_kind)`` units of each maskable kind;
            ``"joint"`` selects ``round((1 − S) · Σ n_kind)`` over all maskable kinds together.
        select: ``"top"`` selects the highest scores, ``"bottom"`` the lowest.
        kinds: the maskable kinds (default: every kind in ``scores``). Kinds in ``scores`` but not in
            ``kinds`` get all-False masks: all their units stay frozen.

    Returns:
        ``kind -> [L, n]`` bool masks, True = selected (updated), for every kind in ``scores``. Ties are
        broken by position: lower layer first, then lower unit index, heads before filters.
    """
    _check_choice("budget", budget, ("per_kind", "joint"))
    _check_choice("select", select, ("top", "bottom"))
    check_sparsity(sparsity)
    scores = check_per_kind("scores", scores)
    kinds = list(scores) if kinds is None else list(kinds)
    if not kinds or any(k not in scores for k in kinds):
        raise ValueError(
            f"kinds must be a non-empty subset of the scored kinds {sorted(scores)}; got {kinds}"
        )
    maskable = [k for k in KINDS if k in kinds]
    groups = [[k] for k in maskable] if budget == "per_kind" else [maskable]
    masks = {kind: torch.zeros_like(t, dtype=torch.bool) for kind, t in scores.items()}
    for group in groups:
        flat = torch.cat([scores[k].reshape(-1) for k in group])
        k = num_selected(flat.numel(), sparsity)
        order = torch.sort(flat, descending=select == "top", stable=True).indices
        chosen = torch.zeros_like(flat, dtype=torch.bool)
        chosen[order[:k]] = True
        for kind, part in zip(group, chosen.split([scores[k].numel() for k in group]), strict=True):
            masks[kind] = part.reshape(scores[kind].shape)
    return masks
