"""Warm start and greedy block search for the unit mask (MAPE-Unlearn, METHOD.md §4).

A block is one layer's units of one kind. With ``Z`` the block's frozen units, ``g^f`` the forget
gradient sums and ``G ∈ R^{N×n}`` per-example retain mask gradients, the block objective is

    J(Z) = Σ_{i∈Z} g^f_i + (α / N) · ‖Σ_{i∈Z} G[:, i]‖²,

the retain-loss increase under a block-diagonal empirical Fisher. With orthogonal columns of ``G`` it
separates into ``Σ_{i∈Z} SC_i`` with the MLR score ``SC_i = g^f_i + α · F^r_i`` (F^r_i = ‖G[:, i]‖² / N),
so the warm start (top-k by SC) is then optimal. The greedy search is the one-pass rearrangement of
Kwon et al. 2022 ("A Fast Post-Training Pruning Framework for Transformers"); it keeps |Z| fixed and
never increases J.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from typing import Any

import torch
from torch import Tensor

from unlearn_lit.masks.objectives import KINDS, OBJECTIVES, Budget, Select, compute_scores, select_units

MAX_EXHAUSTIVE_UNITS = 16


def _check_block(frozen: Tensor, g_f: Tensor, G: Tensor) -> tuple[Tensor, Tensor]:
    """Validates one block and returns ``(g_f, G)`` in float64."""
    if frozen.dtype != torch.bool or frozen.dim() != 1:
        raise ValueError(f"frozen must be a bool [n] tensor; found {frozen.dtype} {tuple(frozen.shape)}")
    n = frozen.numel()
    if g_f.shape != (n,) or G.dim() != 2 or G.shape[1] != n or G.shape[0] < 1:
        raise ValueError(f"expected g_f [{n}] and G [N, {n}]; found {tuple(g_f.shape)} and {tuple(G.shape)}")
    return g_f.double(), G.double()


def block_objective(frozen: Tensor, g_f: Tensor, G: Tensor, alpha: float) -> float:
    """``J(Z) = Σ_{i∈Z} g^f_i + (α / N) · ‖Σ_{i∈Z} G[:, i]‖²`` for ``Z = {i : frozen[i]}`` (in float64).

    Args:
        frozen: ``[n]`` bool, True = frozen (in Z).
        g_f: ``[n]`` forget gradient sums.
        G: ``[N, n]`` per-example retain mask gradients.
        alpha: weight of the Fisher term.
    """
    g_f, G = _check_block(frozen, g_f, G)
    s = G[:, frozen].sum(dim=1)  # [N]
    return float(g_f[frozen].sum() + alpha / G.shape[0] * s.dot(s))


def greedy_block_search(
    frozen: Tensor,
    g_f: Tensor,
    G: Tensor,
    alpha: float,
    order_scores: Tensor,
    trace: list[tuple[int, int, float]] | None = None,
) -> Tensor:
    """One greedy pass over a block, keeping the number of frozen units fixed.

    For each initially selected unit j, lowest ``order_scores`` first (ties: lower index first), add j
    to Z, then remove the unit r ∈ Z whose removal gives the smallest J (r = j on ties, so an equally
    good swap never replaces the warm start; otherwise the lowest index). A running sum
    ``s = Σ_{i∈Z} G[:, i]`` makes each step one product ``G^T s`` plus O(n) work, since
    ``J(Z \\ {r}) = J(Z) − g^f_r + (α/N)(‖G_r‖² − 2 G_r·s)``.

    Args:
        frozen: ``[n]`` bool warm start, True = frozen.
        g_f: ``[n]`` forget gradient sums.
        G: ``[N, n]`` per-example retain mask gradients.
        alpha: weight of the Fisher term.
        order_scores: ``[n]`` warm-start scores (low = less important).
        trace: if given, receives ``(j, r, J after the step)`` for every step.

    Returns:
        The new ``[n]`` frozen mask on ``frozen``'s device. Blocks with nothing or everything frozen
        are returned unchanged.
    """
    g_f, G = _check_block(frozen, g_f, G)
    if order_scores.shape != frozen.shape:
        raise ValueError(
            f"order_scores must have shape {tuple(frozen.shape)}; found {tuple(order_scores.shape)}"
        )
    if frozen.all() or not frozen.any():
        return frozen.clone()
    device = frozen.device
    frozen = frozen.to(G.device).clone()
    c = alpha / G.shape[0]
    Gt = G.T.contiguous()  # [n, N]: one copy, so each step reads contiguous memory (G may be a strided view)
    col_sq = (Gt * Gt).sum(dim=1)  # [n] ‖G[:, i]‖²
    s = Gt[frozen].sum(dim=0)  # [N] running Σ_{i∈Z} G[:, i]
    g_sum = g_f[frozen].sum()
    candidates = torch.nonzero(~frozen).flatten()
    order = torch.sort(order_scores.to(G.device)[candidates], stable=True).indices
    for j in candidates[order].tolist():
        frozen[j] = True
        s += Gt[j]
        g_sum += g_f[j]
        # [n] J(Z \ {r}) − J(Z) for every r; units outside Z cannot be removed
        delta = c * (col_sq - 2 * (Gt @ s)) - g_f
        delta = delta.masked_fill(~frozen, float("inf"))
        r = j if delta[j] <= delta.min() else int(delta.argmin())
        frozen[r] = False
        s -= Gt[r]
        g_sum -= g_f[r]
        if trace is not None:
            trace.append((j, r, float(g_sum + c * s.dot(s))))
    return frozen.to(device)


def exhaustive_block_search(g_f: Tensor, G: Tensor, alpha: float, num_frozen: int) -> Tensor:
    """The exact minimizer of J over all frozen sets of size ``num_frozen`` (a reference for tests).

    Evaluates ``J(z) = g^f·z + (α/N) zᵀ(GᵀG)z`` for every ``[n]`` indicator z at once; ties go to the
    first set in lexicographic order. Only for ``n <= MAX_EXHAUSTIVE_UNITS``.
    """
    n = g_f.numel()
    g_f, G = _check_block(torch.zeros(n, dtype=torch.bool), g_f, G)
    if n > MAX_EXHAUSTIVE_UNITS or not 0 <= num_frozen <= n:
        raise ValueError(f"need n <= {MAX_EXHAUSTIVE_UNITS} and 0 <= num_frozen <= n; got {n}, {num_frozen}")
    combos = torch.tensor(list(itertools.combinations(range(n), num_frozen)), dtype=torch.long)
    z = torch.zeros(len(combos), n, dtype=torch.float64)  # [C, n]
    z.scatter_(1, combos.reshape(len(combos), num_frozen), 1.0)
    values = z @ g_f + alpha / G.shape[0] * ((z @ (G.T @ G)) * z).sum(dim=1)
    return z[values.argmin()].bool()


def warm_start(
    objective: str,
    statistics: Mapping[str, object],
    sparsity: float,
    *,
    budget: Budget = "per_kind",
    select: Select | None = None,
    kinds: Collection[str] | None = None,
    **options: object,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Scores units with ``objective`` and selects them (step 1 of METHOD.md §4).

    Args:
        objective: a name in ``OBJECTIVES`` ("mlr", "mlf", "norm", "random").
        statistics: holds the objective's statistics (``OBJECTIVES.get(objective).statistics``).
        sparsity: fraction of frozen units.
        budget: ``"per_kind"`` or ``"joint"`` (see :func:`select_units`).
        select: ``"top"`` or ``"bottom"``; default: the objective's own direction.
        kinds: the maskable kinds; default: every scored kind.
        **options: objective options (``alpha``, ``fisher_scale``, ``num_retain``, ``shapes``, ``seed``...).

    Returns:
        ``(masks, scores)``, both ``kind -> [L, n]``.
    """
    scores = compute_scores(objective, statistics, **options)
    select = OBJECTIVES.get(objective).select if select is None else select
    return select_units(scores, sparsity, budget=budget, select=select, kinds=kinds), scores


def greedy_search(
    masks: Mapping[str, Tensor],
    g_f: Mapping[str, Tensor],
    G: Mapping[str, Tensor],
    alpha: float,
    scores: Mapping[str, Tensor],
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Runs :func:`greedy_block_search` on every block (layer, kind) (step 2 of METHOD.md §4).

    Args:
        masks: ``kind -> [L, n]`` bool warm start, True = selected.
        g_f: ``kind -> [L, n]`` forget gradient sums.
        G: ``kind -> [N, L, n]`` per-example retain mask gradients; a kind may be absent when none of
            its blocks needs a search (each has nothing or everything frozen).
        alpha: weight of the Fisher term.
        scores: ``kind -> [L, n]`` warm-start scores, the order of the pass.

    Returns:
        ``(new_masks, info)``. The number of selected units of every block is unchanged. ``info`` is
        JSON-serializable: ``alpha``; per kind, J summed over the searched blocks before and after,
        the numbers of searched and skipped blocks and of swapped units; and one record per searched
        block (kind, layer, selected, frozen, swapped, objective_before, objective_after).
    """
    new_masks: dict[str, Tensor] = {}
    info: dict[str, Any] = {"alpha": alpha, "kinds": {}, "blocks": []}
    for kind, mask in masks.items():
        if kind not in KINDS or mask.dtype != torch.bool or mask.dim() != 2:
            raise ValueError(f"masks[{kind!r}] must be a bool [L, n] tensor with kind in {KINDS}")
    for kind in [k for k in KINDS if k in masks]:
        mask = masks[kind]
        shape = tuple(mask.shape)
        for name, stat in (("g_f", g_f), ("scores", scores)):
            if kind not in stat or tuple(stat[kind].shape) != shape:
                found = tuple(stat[kind].shape) if kind in stat else "no such kind"
                raise ValueError(f"{name}[{kind!r}] must have shape {shape}; found {found}")
        out = mask.clone()
        totals = {"objective_before": 0.0, "objective_after": 0.0, "searched": 0, "skipped": 0, "swapped": 0}
        for layer in range(shape[0]):
            frozen = ~mask[layer]
            if frozen.all() or not frozen.any():
                totals["skipped"] += 1
                continue
            G_kind = G.get(kind)
            if G_kind is None or G_kind.dim() != 3 or tuple(G_kind.shape[1:]) != shape:
                found = tuple(G_kind.shape) if G_kind is not None else "no such kind"
                raise ValueError(f"G[{kind!r}] must have shape [N, {shape[0]}, {shape[1]}]; found {found}")
            G_block = G_kind[:, layer, :]  # [N, n]
            new_frozen = greedy_block_search(frozen, g_f[kind][layer], G_block, alpha, scores[kind][layer])
            before = block_objective(frozen, g_f[kind][layer], G_block, alpha)
            after = block_objective(new_frozen, g_f[kind][layer], G_block, alpha)
            swapped = int((new_frozen & ~frozen).sum())
            out[layer] = ~new_frozen
            info["blocks"].append(
                {
                    "kind": kind,
                    "layer": layer,
                    "selected": int((~new_frozen).sum()),
                    "frozen": int(new_frozen.sum()),
                    "swapped": swapped,
                    "objective_before": before,
                    "objective_after": after,
                }
            )
            totals["objective_before"] += before
            totals["objective_after"] += after
            totals["searched"] += 1
            totals["swapped"] += swapped
        new_masks[kind] = out
        info["kinds"][kind] = totals
    return new_masks, info
