"""Options of the fine-tuning methods (FT, GA, GD, NPO, RL, SA, SalUn, SURE) and of the retain repair.

Plain dataclasses without torch, so that the CLI validates a config before importing it; the methods
(:mod:`unlearn_lit.methods.finetune` and one file per method) import their options from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unlearn_lit.selection.rule import SelectionRule

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "linear")
WHEN = ("class", "always", "never")


@dataclass
class OptimConfig:
    """Optimizer of the unlearning phase.

    Attributes:
        optimizer: ``adamw`` or ``sgd`` (with momentum).
        lr: peak learning rate (None: chosen by the caller, e.g. scaled to the model by the
            fine-tuning methods).
        weight_decay: decoupled (AdamW) or coupled (SGD) weight decay.
        momentum: SGD momentum.
        betas: AdamW betas.
        schedule: ``constant`` or ``linear`` (decay to 0 over the run).
    """

    optimizer: str = "adamw"
    lr: float | None = 1e-5
    weight_decay: float = 0.01
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown lr schedule {self.schedule!r}; valid choices: {', '.join(SCHEDULES)}")
        if (self.lr is not None and self.lr <= 0) or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr} and {self.weight_decay}")


@dataclass
class FinetuneConfig:
    """Hyperparameters shared by the fine-tuning methods (paper settings: AdamW, weight decay 0.01).

    Attributes:
        optim: optimizer, full-parameter learning rate (None: :func:`auto_lr` of the model size; the
            paper uses 1e-5 for BERT-size models), weight decay and schedule.
        masked_lr: learning rate when a mask source restricts the update (``inputs.param_mask``; paper:
            2e-4 to 3e-4); None = 20 × the full-parameter learning rate.
        epochs: passes over the longest training loader (paper: 5 for LLMs, 3 on GLUE).
        max_steps: optimizer steps; overrides ``epochs`` when set.
        forget_batch_size: forget examples per step.
        retain_batch_size: retain examples per step.
        grad_clip: gradient-norm clipping (None = off).
        selection: pick the checkpoint with the RT-free rule (False = keep the last step).
        rule: the RT-free selection rule (guard and target; METHOD.md §5).
        every_n_steps: optimizer steps between two candidate checkpoints (None: about ``candidates``
            checkpoints over the run).
        candidates: checkpoints over the run when ``every_n_steps`` is None.
        lr_retries: reruns at a tenth of the learning rate when the step is too coarse (the first
            checkpoint broke the guard, or the forget set passed its target within the first quarter of
            the checkpoints), at ten times it when every checkpoint kept the guard without moving;
            always in one direction; the rule chooses among the attempts (:func:`lr_retry_factor`).
        patience: evaluations to continue once the forget set passed its target (None = no early stop).
        selection_retain: size of the retain slice of the selection sets.
        selection_val: examples of D_v in the selection sets.
        selection_screen: examples of each selection set every checkpoint is screened on (evenly
            spread through each set); only the ``confirm_top`` best checkpoints on the screen, step 0
            and the last are then measured on the full sets, and the rule chooses among them (at most
            ``confirm_top + 2`` full evaluations per run). None or 0: every checkpoint on the full sets
            (also when the screen would hold every example of every set).
        confirm_top: checkpoints after step 0 the screen keeps for the full sets.
        extend: times a run may be doubled when the rule chooses its last checkpoint (the run ended
            before the rule's target; each doubling reruns from the start at twice the epochs or steps,
            the same checkpoints count spread over it). 0 for the unlearning methods, whose learning-rate
            retries already resolve a run that is too short; the retain repair uses it.

    Where it runs (accelerator, precision, progress bar) is the run's runtime, ``inputs.runtime``.
    """

    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=None))
    masked_lr: float | None = None
    epochs: int = 5
    max_steps: int | None = None
    forget_batch_size: int = 32
    retain_batch_size: int = 32
    grad_clip: float | None = None
    selection: bool = True
    rule: SelectionRule = field(default_factory=SelectionRule)
    every_n_steps: int | None = None
    candidates: int = 20
    lr_retries: int = 2
    patience: int | None = 2
    selection_retain: int = 512
    selection_val: int = 512
    selection_screen: int | None = 64
    confirm_top: int = 3
    extend: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.optim, dict):  # plain YAML / JSON overrides
            self.optim = OptimConfig(**{"lr": None, **self.optim})
        if isinstance(self.rule, dict):
            self.rule = SelectionRule(**self.rule)
        steps = (self.max_steps, self.every_n_steps)
        if self.epochs < 1 or any(v is not None and v < 1 for v in steps) or self.candidates < 1:
            raise ValueError("epochs, max_steps, every_n_steps and candidates must be positive")
        if self.lr_retries < 0 or self.extend < 0:
            raise ValueError(f"lr_retries and extend must be >= 0, got {self.lr_retries}, {self.extend}")
        if (self.selection_screen or 0) < 0 or self.confirm_top < 1:
            raise ValueError(
                f"need selection_screen >= 0 (or None) and confirm_top >= 1, got {self.selection_screen}, "
                f"{self.confirm_top}"
            )


@dataclass
class FTConfig(FinetuneConfig):
    """FT hyperparameters: the shared fine-tuning settings (:class:`FinetuneConfig`; paper: 3 epochs on GLUE)."""

    epochs: int = 3


@dataclass
class GAConfig(FinetuneConfig):
    """GA hyperparameters: the shared fine-tuning settings (:class:`FinetuneConfig`)."""


@dataclass
class GDConfig(FinetuneConfig):
    """GD hyperparameters: the shared fine-tuning settings (:class:`FinetuneConfig`; paper: 3 epochs on GLUE)."""

    epochs: int = 3


@dataclass
class NPOConfig(FinetuneConfig):
    """NPO hyperparameters (plus the shared :class:`FinetuneConfig`).

    Attributes:
        beta: inverse temperature β of the preference loss.
        retain_weight: weight of the retain term (0 = forget-only NPO).
    """

    beta: float = 0.1
    retain_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0 or self.retain_weight < 0:
            raise ValueError(f"need beta > 0 and retain_weight >= 0, got {self.beta}, {self.retain_weight}")


@dataclass
class RLConfig(FinetuneConfig):
    """RL hyperparameters: the shared fine-tuning settings (:class:`FinetuneConfig`)."""


@dataclass
class SAConfig(FinetuneConfig):
    """SA hyperparameters (plus the shared :class:`FinetuneConfig`).

    Attributes:
        gamma: initial ℓ1 weight γ (decays linearly to 0).
    """

    epochs: int = 3
    gamma: float = 5e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")


@dataclass
class SalUnConfig(FinetuneConfig):
    """SalUn hyperparameters (plus the shared :class:`FinetuneConfig`).

    Attributes:
        fraction: share of the weights kept by the saliency mask (SalUn's threshold: 50%).
    """

    fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {self.fraction}")


@dataclass
class SureConfig(FinetuneConfig):
    """SURE hyperparameters (plus the shared :class:`FinetuneConfig`).

    Attributes:
        adversarial_weight: gradient-reversal weight λ.
        domain_hidden: hidden width of the domain classifier.
        domain_lr: learning rate of the domain classifier.
        unseen_batch_size: unseen (half of D_v) examples per step.
    """

    adversarial_weight: float = 1.0
    domain_hidden: int = 256
    domain_lr: float = 1e-3
    unseen_batch_size: int = 32


@dataclass
class RepairConfig:
    """When and how long to repair (no per-setup constant: the learning rate is the method family's
    default for the model size, and the rule chooses the step).

    Attributes:
        when: ``class`` (default: class-forgetting runs), ``always`` or ``never``.
        epochs: passes over D_r (the rule chooses a checkpoint among ``candidates`` of them).
        candidates: checkpoints over the repair.
        lr: learning rate, with or without a unit mask (None: the full-parameter fine-tuning default
            for the model size and, under a unit mask, also 20× it, the rule choosing between the two
            runs; :mod:`unlearn_lit.methods.repair` says why).
        retain_batch_size: retain examples per step.
        extend: times the repair may be doubled (rerun at twice the epochs) when the rule chooses its
            last checkpoint: the repair was still improving when it ended.
    """

    when: str = "class"
    epochs: int = 2
    candidates: int = 10
    lr: float | None = None
    retain_batch_size: int = 32
    extend: int = 1

    def __post_init__(self) -> None:
        if self.when not in WHEN:
            raise ValueError(f"unknown repair.when {self.when!r}; valid choices: {', '.join(WHEN)}")
        if self.epochs < 1 or self.candidates < 1 or self.extend < 0:
            raise ValueError(
                f"repair needs epochs >= 1, candidates >= 1 and extend >= 0, got {self.epochs}, "
                f"{self.candidates}, {self.extend}"
            )

    def applies(self, datamodule: Any, result: Any, rule: Any) -> bool:
        """Whether to repair this result: the policy allows it and the method changed θ*."""
        if self.when == "never" or result.info.get("kept_original") or result.info.get("num_updated") == 0:
            return False
        return self.when == "always" or rule.resolve(datamodule) == "class"
