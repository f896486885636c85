"""Options of the one-step methods (SO, SSD), the table of every method's options, and ``method_options``.

:data:`METHOD_CONFIGS` maps every registered method to its options class without importing the methods
(torch): the CLI validates method names and options with it before any import of torch; a test checks
it equals :data:`unlearn_lit.methods.METHODS`, where each method file registers the same class.

``method_options.so`` is an :class:`SOConfig` and applies to ``so``, ``mape_so`` and ``random_so``
alike; ``method_options.mape_so`` is a partial override of it for that variant only (a dict of the
fields that differ). The class is generated from :data:`METHOD_CONFIGS`, so ``--help`` lists every
method's options and jsonargparse validates their types before any work::

    method_options:
      so: {fisher_examples: 256}          # so, mape_so, random_so
      mape_so: {refine: 5}                # mape_so only, on top of the so options
      ga: {optim: {lr: 1.0e-4}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from unlearn_lit.config.finetune import (
    FTConfig,
    GAConfig,
    GDConfig,
    NPOConfig,
    RLConfig,
    SAConfig,
    SalUnConfig,
    SureConfig,
)
from unlearn_lit.config.names import FISHER_MODES, MASK_SOURCES
from unlearn_lit.errors import unknown
from unlearn_lit.registry import UnknownNameError
from unlearn_lit.selection.rule import SelectionRule
from unlearn_lit.typed import build, merge

PRESETS = ("default", "paper")
SELECTS = ("rule", "oracle", "fixed")
DAMPINGS = ("relative", "absolute")


@dataclass
class SOConfig:
    """Hyperparameters of SO / MAPE-SO.

    Attributes:
        preset: ``default`` (η = τ/|D_r|, relative λ) or ``paper`` (absolute η grid ``etas``, absolute
            ``lam``, η × |θ|/|θ_updated| for masked versions).
        select: ``rule`` (RT-free), ``oracle`` (closest to RT, analysis only; needs ``rt`` in the run's
            methods) or ``fixed``.
        tau: τ for ``select="fixed"``.
        c: relative damping for ``select="fixed"``.
        damping: ``relative`` (λ = c · mean F̂_r over the updated entries) or ``absolute`` (λ = ``lam``).
        lam: absolute λ (``damping="absolute"`` and the paper preset).
        taus: coarse log grid of τ.
        cs: relative damping grid.
        screen: examples of each selection set the coarse grid is measured on (None = all); the choice
            and the refinement are measured on the full selection sets.
        refine: rounds of log-τ bisection between the choice and its neighbour on the side the rule
            points to (both sides in oracle mode).
        max_extend: decades added beyond an edge of the τ grid when the rule points past it.
        etas: the paper preset's η grid.
        eta: the paper preset's η for ``select="fixed"``.
        rule: the RT-free selection rule (guard and target; METHOD.md §5).
        fisher: ``per_example`` or ``per_batch``.
        fisher_examples: seeded subsample of D_r for the Fisher (None = all of D_r).
        chunk_size: examples whose per-example gradients are held at once (None: as many as fit in
            4 GiB on a CPU or a quarter of a GPU's free memory, at most 64; ``fisher.auto_chunk``).
        batch_size: batch size of the Fisher and forget-gradient loaders.
        selection_retain: examples of the retain slice of the selection sets.
        selection_val: examples of D_v in the selection sets.
    """

    preset: str = "default"
    select: str = "rule"
    tau: float = 0.01
    c: float = 0.1
    damping: str = "relative"
    lam: float = 1e-8
    taus: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
    cs: tuple[float, ...] = (0.01, 0.1, 1.0)
    screen: int | None = 64
    refine: int = 3
    max_extend: int = 2
    etas: tuple[float, ...] = (1e-7, 2e-7, 5e-7, 1e-6)
    eta: float = 1e-6
    rule: SelectionRule = field(default_factory=SelectionRule)
    fisher: str = "per_example"
    fisher_examples: int | None = 1024
    chunk_size: int | None = None
    batch_size: int = 32
    selection_retain: int = 512
    selection_val: int = 512

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("preset", self.preset, PRESETS),
            ("select", self.select, SELECTS),
            ("damping", self.damping, DAMPINGS),
            ("fisher", self.fisher, FISHER_MODES),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")
        grids = {"taus": self.taus, "cs": self.cs, "etas": self.etas}
        for name, grid in grids.items():
            if not grid or any(v <= 0 for v in grid):
                raise ValueError(f"{name} must be a non-empty tuple of positive numbers, got {grid}")
        if isinstance(self.rule, dict):  # plain YAML / JSON overrides
            self.rule = SelectionRule(**self.rule)
        if min(self.tau, self.c, self.eta) <= 0 or self.lam < 0:
            raise ValueError("tau, c and eta must be positive and lam non-negative")
        for name in ("fisher_examples", "screen"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be None or >= 1, got {getattr(self, name)}")
        if self.refine < 0 or self.max_extend < 0:
            raise ValueError(f"refine and max_extend must be >= 0, got {self.refine}, {self.max_extend}")


@dataclass
class SSDConfig:
    """Hyperparameters of SSD.

    Attributes:
        alpha: selection weighting α: an entry is dampened when its forget importance exceeds α times
            its full-data importance.
        auto_alpha: when α selects no entry (always the case once α ≥ |D| / |D_f|), use
            α = |D| / (2 |D_f|) instead of returning θ* unchanged (a warning says so either way).
        lam: dampening constant λ: β = min(λ · []_D / []_{D_f}, 1).
        fisher: ``per_example`` (exact diagonal Fisher) or ``per_batch`` (squared batch gradients).
        fisher_examples: seeded subsample of D_r for []_D (None = all of D_r).
        chunk_size: examples whose per-example gradients are held at once (None: as many as fit in
            4 GiB on a CPU or a quarter of a GPU's free memory, at most 64; ``fisher.auto_chunk``).
        batch_size: batch size of the importance loaders.
    """

    alpha: float = 10.0
    auto_alpha: bool = True
    lam: float = 1.0
    fisher: str = "per_example"
    fisher_examples: int | None = 1024
    chunk_size: int | None = None
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.fisher not in FISHER_MODES:
            raise ValueError(f"unknown fisher {self.fisher!r}; valid choices: {', '.join(FISHER_MODES)}")
        if self.alpha <= 0 or self.lam <= 0:
            raise ValueError(f"alpha and lam must be positive, got {self.alpha}, {self.lam}")
        if self.fisher_examples is not None and self.fisher_examples < 1:
            raise ValueError(f"fisher_examples must be None or >= 1, got {self.fisher_examples}")


METHOD_CONFIGS: dict[str, type] = {
    "ft": FTConfig,
    "ga": GAConfig,
    "gd": GDConfig,
    "npo": NPOConfig,
    "rl": RLConfig,
    "sa": SAConfig,
    "salun": SalUnConfig,
    "so": SOConfig,
    "ssd": SSDConfig,
    "sure": SureConfig,
}


def parse_method(name: str) -> tuple[str, str]:
    """``"mape_so"`` -> ``("so", "mape")``; ``"ga"`` -> ``("ga", "none")``; errors list valid names."""
    for source in MASK_SOURCES[1:]:
        if name.startswith(source + "_") and name[len(source) + 1 :] in METHOD_CONFIGS:
            return name[len(source) + 1 :], source
    if name not in METHOD_CONFIGS:
        bases = sorted(METHOD_CONFIGS)
        names = [f"{s}_{m}" if s != "none" else m for s in MASK_SOURCES for m in bases]
        listed = f"{', '.join(bases)}, each also as <source>_<method> with source in {MASK_SOURCES[1:]}"
        raise UnknownNameError(unknown("method", name, names, listed=listed))
    return name, "none"


def method_options_class() -> type:
    """A dataclass with one typed field per method and one override field per variant."""
    names = sorted(METHOD_CONFIGS)
    fields: list[tuple[str, Any, Any]] = [
        (name, METHOD_CONFIGS[name], field(default_factory=METHOD_CONFIGS[name])) for name in names
    ]
    fields += [
        (f"{source}_{name}", dict[str, Any] | None, field(default=None))
        for source in MASK_SOURCES[1:]
        for name in names
    ]
    doc = (
        "Options of every method, keyed by the base method (applies to all its mask sources); "
        "``<source>_<method>`` fields are partial overrides for one variant.\n\n"
        "Attributes:\n"
        + "".join(f"    {n}: options of ``{n}`` ({METHOD_CONFIGS[n].__name__}).\n" for n in names)
        + "    <source>_<method>: a dict of fields overriding the base method's options for that variant.\n"
    )
    return make_dataclass(
        "MethodOptions", fields, namespace={"__doc__": doc, "resolve": _resolve, "__post_init__": _check}
    )


def _resolve(self: Any, name: str) -> Any:
    """The config of method ``name`` (``mape_so``): the base method's options with the variant's overrides."""
    base, source = parse_method(name)
    cfg = getattr(self, base)
    override = getattr(self, name, None) if source != "none" else None
    if not override:
        return cfg
    return build(type(cfg), merge(dataclasses.asdict(cfg), override), f"method_options.{name}")


def _check(self: Any) -> None:
    """Base groups given as dicts (Python callers) become configs; overrides are validated now."""
    for f in dataclasses.fields(self):
        value = getattr(self, f.name)
        if f.name in METHOD_CONFIGS and isinstance(value, dict):
            setattr(self, f.name, build(METHOD_CONFIGS[f.name], value, f"method_options.{f.name}"))
        elif value is not None and f.name not in METHOD_CONFIGS:
            if not isinstance(value, dict):
                raise ValueError(f"method_options.{f.name} must be a mapping of fields, got {value!r}")
            _resolve(self, f.name)


MethodOptions = method_options_class()  # one typed group per method
