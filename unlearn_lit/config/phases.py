"""Options of the phases: θ*/RT training (:class:`TrainRecipe` and its presets), phase 1 (:class:`MaskConfig`),
the relearning attack and the TOFU evaluation. Plain dataclasses without torch (the CLI validates them
before importing it); :mod:`unlearn_lit.phases` and :mod:`unlearn_lit.eval` import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearn_lit.config.names import (
    GRANULARITIES,
    MCQ_FORMATS,
    OBJECTIVES,
    check_sparsity,
    maskable_kinds,
    registered,
)
from unlearn_lit.errors import unknown
from unlearn_lit.registry import UnknownNameError
from unlearn_lit.runtime import PRECISIONS

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
RELEARN_OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class TrainRecipe:
    """One recipe for θ* and RT. Defaults: BERT-style GLUE fine-tuning; see :data:`PRESETS`.

    Attributes:
        optimizer: ``adamw`` or ``sgd`` (with ``momentum``).
        lr: peak learning rate.
        weight_decay: decoupled weight decay; biases and norm weights (1-d tensors) are not decayed.
        epochs: passes over the training set.
        batch_size: training batch size.
        schedule: ``constant``, ``linear`` (warmup then linear decay to 0) or ``cosine`` (warmup then
            cosine decay to 0); ``constant`` also warms up when ``warmup`` > 0.
        warmup: warmup length: a fraction of all steps when < 1, else a number of steps.
        precision: Lightning precision (``32-true``, ``bf16-mixed``, ...).
        seed: seed of shuffling and dropout.
        max_steps: optional cap on optimizer steps.
        momentum: SGD momentum.
        gradient_clip_val: gradient-norm clipping (None: off).
    """

    optimizer: str = "adamw"
    lr: float = 2e-5
    weight_decay: float = 0.01
    epochs: int = 5
    batch_size: int = 32
    schedule: str = "linear"
    warmup: float = 0.1
    precision: str = "32-true"
    seed: int = 0
    max_steps: int | None = None
    momentum: float = 0.9
    gradient_clip_val: float | None = 1.0

    def __post_init__(self) -> None:
        for field, value, valid in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in valid:
                raise ValueError(f"unknown {field} {value!r}; valid choices: {', '.join(valid)}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1 or self.warmup < 0:
            raise ValueError(f"recipe needs lr > 0, epochs >= 1, batch_size >= 1, warmup >= 0: {self}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")


PRESETS: dict[str, TrainRecipe] = {
    "glue": TrainRecipe(),  # BERT-base / MiniLM fine-tuning
    # vit_digits on digits, 2 CPU cores, one thread: 0.936-0.950 test accuracy (seeds 0-2) in ~15-25 s
    # MiniLM on 4,000 3-class tweets: 0.774 test accuracy (lr 5e-5 underfits: 0.760), ~15 min on 1 CPU thread
    "minilm": TrainRecipe(lr=1e-4, epochs=3, batch_size=32, schedule="linear", warmup=0.1),
    # TOFU (METHOD.md §9): the paper's fine-tuning of the chat model on the QA pairs
    "tofu": TrainRecipe(lr=1e-5, weight_decay=0.01, epochs=5, batch_size=32, schedule="linear", warmup=0.2),
    "vit_small": TrainRecipe(
        lr=2e-3, weight_decay=0.05, epochs=20, batch_size=64, schedule="cosine", warmup=0.05
    ),
}


@dataclass
class MaskConfig:
    """Phase-1 options (METHOD.md §3–§4); defaults are the paper's.

    Attributes:
        objective: mask-learning objective: ``mlr`` (paper), ``mlf``, ``norm`` or ``random``.
        sparsity: fraction of frozen units per kind, in [0, 1).
        kinds: maskable unit kinds: ``heads``, ``filters`` or ``both``; the others stay frozen.
        budget: ``per_kind`` (k per kind) or ``joint`` (one budget over all maskable kinds).
        alpha: weight of the Fisher term (1/2 in the second-order expansion).
        fisher_scale: ``mean`` (literal: F^r averaged, g^f summed) or ``sum`` (F^r times |D_r|).
        select: ``top`` / ``bottom``; None = the objective's own direction (MLF literal: bottom).
        search: run the warm-started greedy block search after the warm start (MLR only).
        granularity: rows of G: ``example`` (per-example) or ``batch`` (per batch).
        retain_subsample: retain examples used for F^r (None = all of D_r); clamped to |D_r|.
        search_rows: retain examples (rows of G) for the block-diagonal Fisher (Kwon et al.: 2048).
        batch_size: examples per forward/backward pass.
        seed: seed of the subsamples and of the random objective.
    """

    objective: str = "mlr"
    sparsity: float = 0.9
    kinds: str = "both"
    budget: str = "per_kind"
    alpha: float = 0.5
    fisher_scale: str = "mean"
    select: str | None = None
    search: bool = True
    granularity: str = "example"
    retain_subsample: int | None = None
    search_rows: int = 2048
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        objectives = registered(OBJECTIVES, "unlearn_lit.masks.objectives", "OBJECTIVES")
        if self.objective not in objectives:
            raise UnknownNameError(unknown("mask objective", self.objective, objectives))
        check_sparsity(self.sparsity)
        maskable_kinds(self.kinds)
        for name, value, valid in (
            ("budget", self.budget, ("per_kind", "joint")),
            ("fisher_scale", self.fisher_scale, ("mean", "sum")),
            ("select", self.select, (None, "top", "bottom")),
            ("granularity", self.granularity, GRANULARITIES),
        ):
            if value not in valid:
                raise ValueError(f"{name} {value!r} is invalid; valid choices: {', '.join(map(str, valid))}")
        if self.batch_size < 1 or self.search_rows < 0:
            raise ValueError("batch_size must be >= 1 and search_rows >= 0")


@dataclass
class RelearnConfig:
    """The attack.

    Attributes:
        fraction: fraction of D_f the attacker fine-tunes on (seeded); the rest is held out.
        steps: optimizer steps k.
        lr: learning rate (None: the full-parameter fine-tuning default of the attacked model's size,
            :func:`~unlearn_lit.methods.finetune.auto_lr`, the rate FT uses when its own is unset).
        optimizer: ``sgd`` (momentum 0.9), ``adam`` or ``adamw``.
        weight_decay: weight decay of the optimizer.
        batch_size: examples per step (cycling through the attacked part, reshuffled each pass).
        eval_batch_size: batch size of the per-step evaluation.
        seed: seed of the attacked part, the batch order and dropout.
    """

    fraction: float = 0.5
    steps: int = 20
    lr: float | None = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    batch_size: int = 16
    eval_batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in RELEARN_OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; valid choices: {', '.join(RELEARN_OPTIMIZERS)}"
            )
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {self.fraction}")
        if self.steps < 0 or (self.lr is not None and self.lr <= 0) or self.batch_size < 1:
            raise ValueError(
                f"need steps >= 0, lr > 0 (or None), batch_size >= 1; got {self.steps}, {self.lr}, {self.batch_size}"
            )


@dataclass
class TofuEvalConfig:
    """Options of the LLM evaluation: TOFU's, and WMDP's multiple choice (:mod:`unlearn_lit.eval.mcq`).

    Attributes:
        max_new_tokens: tokens generated per answer for ROUGE-L (TOFU: 200).
        batch_size: questions per forward / generation batch.
        mcq_format: multiple-choice datasets (``wmdp``, ``mcq_synthetic``): ``letter`` (WMDP's and
            lm-evaluation-harness's: the letters of the listed choices scored) or ``cloze`` (each choice's
            text scored after the question, per character; for small models that answer letters at chance).
    """

    max_new_tokens: int = 200
    batch_size: int = 32
    mcq_format: str = "letter"

    def __post_init__(self) -> None:
        if self.mcq_format not in MCQ_FORMATS:
            raise ValueError(unknown("tofu_eval.mcq_format", self.mcq_format, MCQ_FORMATS))
