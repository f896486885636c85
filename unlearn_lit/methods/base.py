"""The method contract: one file per unlearning method, registered by name (METHOD.md §5–§6).

A method receives :class:`UnlearnInputs` (θ*, the data, the unit layout and the parameter-shaped
update mask, if any) and a config dataclass of its own, and returns a :class:`MethodResult` holding the
unlearned model (a new object: θ* is never modified), the selected hyperparameters and the candidate
table of the RT-free selection.

Names in configs combine a mask source and a method: ``so`` (full), ``mape_so`` (phase-1 mask),
``random_ga`` (random-unit mask at the same sparsity), ``salun_ft`` (weight-saliency mask) ...
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from unlearn_lit.config.methods import parse_method  # noqa: F401  (re-exported)
from unlearn_lit.config.names import MASK_SOURCES  # noqa: F401  (re-exported)
from unlearn_lit.errors import UnlearningFailed  # noqa: F401  (re-exported)
from unlearn_lit.models.base import Backbone
from unlearn_lit.registry import Registry
from unlearn_lit.runtime import Runtime
from unlearn_lit.selection.sets import selection_sets
from unlearn_lit.units.layout import UnitLayout


@dataclass(frozen=True)
class Method:
    """A registered method: its hyperparameter dataclass and its entry point."""

    name: str
    config: type
    run: Callable[[UnlearnInputs, Any], MethodResult]
    finetunes: bool = True  # False for one-step methods (SO, SSD)


METHODS: Registry[Method] = Registry("method")


def register(name: str, config: type, finetunes: bool = True):
    """Decorator registering ``run(inputs, cfg) -> MethodResult`` under ``name``."""

    def deco(run: Callable) -> Callable:
        METHODS.register(name)(Method(name, config, run, finetunes))
        return run

    return deco


@dataclass
class UnlearnInputs:
    """Everything a method needs.

    Attributes:
        original: θ* (never modified; methods work on :meth:`fresh_model`).
        datamodule: the forget/retain/val/test data.
        layout: units of the backbone.
        param_mask: ``{param name: Bool tensor}`` of entries that may change, or None for a
            full-parameter method. Parameters missing from the dict are frozen.
        seed: seed of everything stochastic in the method.
        headroom: where RT is available, scores every selection candidate against it (the oracle's
            Avg.Gap is reported beside the rule's choice; ``select="oracle"`` chooses by it).
        phase1_time_s: phase 1's time, the budget SO's selection is compared with (None: no phase 1).
        logger: a Lightning logger for the fine-tuning methods' curves (None: no logger).
        callbacks: further Lightning callbacks of the fine-tuning methods.
        selection_sets: prebuilt selection sets (None: :meth:`sets` builds them from the datamodule).
        shared_sets: θ*'s selection sets by (retain slice, validation size, seed), built once and
            shared by every method of a run (the pipeline passes one dict to all of them).
        runtime: where the method runs (Lightning settings of the fine-tuning methods; the device of
            the one-step methods is θ*'s, which the pipeline puts on :meth:`Runtime.device`). Quiet
            (no progress bar) by default.
        selection_dtype: autocast dtype of every selection forward pass (None: the weights' dtype;
            :func:`~unlearn_lit.selection.sets.selection_dtype`).
    """

    original: Backbone
    datamodule: Any
    layout: UnitLayout
    param_mask: dict[str, Tensor] | None = None
    seed: int = 0
    headroom: Any = None
    phase1_time_s: float | None = None
    logger: Any = None
    callbacks: list[Any] = field(default_factory=list)
    selection_sets: Any = None
    shared_sets: dict[tuple[int, int, int], Any] = field(default_factory=dict)
    runtime: Runtime = field(default_factory=lambda: Runtime(progress_bar=False))
    selection_dtype: Any = None

    def fresh_model(self) -> Backbone:
        """A deep copy of θ* to unlearn on."""
        return copy.deepcopy(self.original)

    def sets(self, n_retain: int, n_val: int) -> Any:
        """θ*'s selection sets: :attr:`selection_sets` when given, else a seeded retain slice of
        ``n_retain``, D_f and the first ``n_val`` examples of D_v, built once per size and seed."""
        if self.selection_sets is not None:
            return self.selection_sets
        key = (n_retain, n_val, self.seed)
        if key not in self.shared_sets:
            self.shared_sets[key] = selection_sets(
                self.original, self.datamodule, n_retain, n_val, self.seed, self.selection_dtype
            )
        return self.shared_sets[key]

    def trainable(self, model: Backbone) -> dict[str, Tensor]:
        """Parameter-shaped bool masks of the entries that may change (all True for full methods)."""
        if self.param_mask is None:
            return {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
        return {
            n: m.to(p.device)
            for n, p in model.named_parameters()
            if (m := self.param_mask.get(n)) is not None
        }


@dataclass
class MethodResult:
    """Output of a method: the unlearned model, the chosen hyperparameters and the candidate table."""

    model: Backbone
    hparams: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
