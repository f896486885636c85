"""Typed run configuration: one dataclass per concern; defaults are the paper's settings.

YAML files under ``configs/`` are flat overrides of these fields (they never inherit from each other);
the CLI (jsonargparse) derives ``--help``, ``--print_config`` and validation from the type hints.

This package imports no torch, Lightning or transformers, so that ``--help`` and a config error answer
at once: the options of the phases (:mod:`~unlearn_lit.config.phases`) and of the methods
(:mod:`~unlearn_lit.config.finetune`, :mod:`~unlearn_lit.config.methods`) live here, and registry
names are checked against static tables (:mod:`~unlearn_lit.config.names`) that a test keeps equal
to the registries. The code that uses an options class imports it from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from unlearn_lit.config.finetune import RepairConfig
from unlearn_lit.config.methods import MethodOptions, parse_method
from unlearn_lit.config.names import (
    FORGET_POLICIES,
    LOGGERS,
    SELECTION_PRECISIONS,
    SUCCESSIVE_MODES,
    check_backbone,
    check_dataset,
)
from unlearn_lit.config.phases import PRESETS, MaskConfig, RelearnConfig, TofuEvalConfig, TrainRecipe
from unlearn_lit.errors import unknown
from unlearn_lit.runtime import Runtime
from unlearn_lit.typed import build


@dataclass
class DataConfig:
    """The dataset and its forget split (METHOD.md §1).

    Attributes:
        name: dataset registry name (digits, fashion_mnist, tweets, tweets_binary, sst2, mnli, qqp, stsb, cifar10,
            or your own data: csv (a CSV/TSV/JSONL/Parquet file; options path, text, label, id, ...),
            imagefolder (options root with train/ and test/ class folders, image_size, grayscale) or
            hf (a ``datasets`` hub id or local path; options path, config, split, test_split, text,
            image, label, id, ...)).
        forget: forget policy: random, class, indices (a file of positions in D), split (the dataset's own: TOFU's
            forget01/05/10) or ids (a deletion
            request: a file of example ids, the dataset's ``id`` column or else pool positions).
        forget_size: |D_f| for the random policy.
        forget_classes: classes to forget (class policy).
        forget_indices: file of indices into D (indices policy).
        forget_ids: file of example ids to forget, one per line or a JSON list (ids policy).
        seed: seed of the forget selection.
        data_seed: seed of D_v and the size caps (θ* depends on it, not on ``seed``).
        val_size: |D_v| (int, fraction, or None for min(512, 10%)).
        max_train: cap on |D| for quick runs.
        max_test: cap on |D_t|.
        batch_size: training batch size of the data loaders.
        length_buckets: text data: training batches group examples of similar length, sorted within
            buckets of this many batches, the batches shuffled (less padding); 0 or None: plain shuffling.
        options: dataset factory options (root, download, ...).
    """

    name: str = "digits"
    forget: str = "random"
    forget_size: int = 128
    forget_classes: list[int] = field(default_factory=list)
    forget_indices: str | None = None
    forget_ids: str | None = None
    seed: int = 0
    data_seed: int = 0
    val_size: int | float | None = None
    max_train: int | None = None
    max_test: int | None = None
    batch_size: int = 64
    length_buckets: int | None = 50
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # names only: the splits are validated when the data is built
        check_dataset(self.name)
        if self.forget not in FORGET_POLICIES:
            raise ValueError(unknown("forget policy", self.forget, FORGET_POLICIES))

    def build(self) -> Any:
        """The :class:`~unlearn_lit.data.UnlearnDataModule` of these fields (splits validated here)."""
        from unlearn_lit.data import build_datamodule

        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "options")}
        return build_datamodule(self.name, dataset_options=self.options, **fields)


@dataclass
class SuccessiveConfig:
    """Successive unlearning (METHOD.md §5): D_f split into R seeded requests, handled one after another.

    Attributes:
        method: an SO-type method name (``so``, ``mape_so``, ``random_so``); its ``method_options`` apply.
        requests: the numbers of requests R to run (one result row per R and mode).
        modes: ``memory_free`` (recompute mask and Fisher on θ^{t-1}) and/or ``memory_aided`` (from θ*,
            downdated retain Fisher, accumulated forget gradients).
    """

    method: str = "mape_so"
    requests: list[int] = field(default_factory=lambda: [4])
    modes: list[str] = field(default_factory=lambda: ["memory_free"])

    def __post_init__(self) -> None:
        if parse_method(self.method)[0] != "so":
            raise ValueError(
                f"successive unlearning runs SO-type methods (so, mape_so, random_so); got {self.method!r}"
            )
        bad = [m for m in self.modes if m not in SUCCESSIVE_MODES]
        if bad or any(r < 1 for r in self.requests):
            raise ValueError(
                f"modes must be in {SUCCESSIVE_MODES} and requests >= 1; got {self.modes}, {self.requests}"
            )


@dataclass
class RunConfig:
    """A whole comparison: θ*, RT, phase 1, search, phase 2 per method, evaluation.

    Attributes:
        backbone: backbone registry name, ``hf:<id or path>`` or ``timm:<name>``.
        backbone_options: factory options (sizes, ``pretrained``, ``max_length``...).
        original: your own θ*: a saved model (``.safetensors`` of this project or HF, an HF
            ``save_pretrained`` directory, a Lightning ``.ckpt``) loaded into ``backbone`` instead of
            training it; None trains θ* from the backbone (cached).
        data: dataset and forget split.
        recipe: training recipe preset (``glue``, ``vit_small``) for θ* and RT.
        recipe_overrides: recipe fields overriding the preset (epochs, lr, ...).
        mask: phase-1 options (objective, sparsity, kinds, ...).
        mask_file: a saved mask artifact (``mask.safetensors`` or its directory) to use instead of
            running phase 1; its shapes must match the backbone.
        train_outside_units: with a unit mask, also update parameters outside every unit (embeddings,
            LayerNorm, output biases, classifier); METHOD.md §2 [choice], default frozen.
        methods: method names: ``rt`` and ``original`` are references; others are ``[source_]method``
            with source in mape, random, salun (e.g. ``so``, ``mape_so``, ``random_ga``). RT is trained
            only when ``rt`` is listed; without it Avg.Gap and the oracle are absent.
        method_options: every method's options, typed (:mod:`unlearn_lit.config.methods`): ``so``
            applies to ``so``, ``mape_so`` and ``random_so``; ``mape_so`` overrides it for that variant.
        repair: retain repair after class forgetting (:mod:`unlearn_lit.methods.repair`): a short
            fine-tuning on D_r of the entries each method changed, its step chosen by the same RT-free
            rule (0 = none); ``repair.when: never`` reports the methods alone (the paper's form).
        eval_retain_subsample: score retain accuracy on this many D_r examples (None = all).
        save_models: save every unlearned model in its native format under ``models/<method>/`` (HF
            ``save_pretrained`` + tokenizer, or timm safetensors + config) with an
            ``unlearning_record.json`` (forget ids and their SHA-256, selection, metrics, versions).
        headroom: evaluate every selection candidate against RT and report the oracle's Avg.Gap beside
            the rule's choice (analysis only; it costs one evaluation per candidate).
        headroom_prune: score a candidate against RT only until its Avg.Gap provably exceeds the best
            of its table (D_f first, then the test set, each bounding it from below): the same oracle for
            a fraction of the cost where most candidates are far from RT (MiniLM on CPU), but the
            pruned candidates' own metrics are missing (the offline-guard columns of
            ``bench_selection.py`` are NaN where a guard chose one).
        cache_dir: cache of θ* and RT checkpoints shared across runs (each with its SHA-256; a corrupt
            or truncated file is named, moved aside and retrained).
        retrain: retrain θ* and RT even when the cache holds them (the old files are moved aside).
        retrain_corrupt: retrain a cached model that fails its checksum; False stops with its path.
        logger: ``csv`` (always written) or ``wandb`` (in addition; offline mode needs no key).
        wandb_project: W&B project; the group is the config's ``table`` name.
        table: name of the paper table/figure this run belongs to (W&B group, report title).
        seed: seed of everything stochastic in the methods.
        trainer: the runtime every phase receives (accelerator, devices, nodes, strategy, precision,
            progress bars; :class:`~unlearn_lit.runtime.Runtime`): ``--trainer.accelerator gpu``.
        relearn: run the relearning attack on every unlearned model, RT and the original (None = off).
        successive: successive-request runs (None = off).
        tofu_eval: the TOFU evaluation of question-answer (``lm``) datasets (generation length, batch).
        selection_precision: the forward passes of the RT-free selection (SO step search, fine-tuning
            checkpoints, repair, successive requests): ``auto`` (default) follows ``trainer.precision``
            (bfloat16 autocast under ``bf16-mixed``, float16 under ``16-mixed``, else the weights'
            dtype), ``32`` keeps the weights' dtype, ``bf16``/``16`` autocast whatever the runtime (on
            an AVX512-BF16 CPU, ``bf16`` makes MiniLM's selection passes 1.8x faster, with the same choices on
            the MiniLM selection suite).
        threads: torch intra-op threads (None = torch's default). Tiny models run fastest with 1: on a
            busy 2-core machine 2 threads made a tiny-ViT training step 8x slower (spin-waiting).
    """

    backbone: str = "vit_digits"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    original: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    recipe: str = "vit_small"
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    mask: MaskConfig = field(default_factory=MaskConfig)
    mask_file: str | None = None
    train_outside_units: bool = False
    methods: list[str] = field(
        default_factory=lambda: ["rt", "so", "mape_so", "ft", "ga", "mape_ga", "salun", "random_so"]
    )
    method_options: MethodOptions = field(default_factory=lambda: MethodOptions())
    repair: RepairConfig = field(default_factory=RepairConfig)
    eval_retain_subsample: int | None = None
    save_models: bool = True
    headroom: bool = True
    headroom_prune: bool = False
    cache_dir: str = "~/.cache/unlearn_lit/models"
    retrain: bool = False
    retrain_corrupt: bool = True
    logger: str = "csv"
    wandb_project: str = "unlearn_lit"
    table: str = "quickstart"
    seed: int = 0
    trainer: Runtime = field(default_factory=Runtime)
    selection_precision: str = "auto"
    threads: int | None = None
    relearn: RelearnConfig | None = None
    successive: SuccessiveConfig | None = None
    tofu_eval: TofuEvalConfig = field(default_factory=TofuEvalConfig)

    def __post_init__(self) -> None:
        check_backbone(self.backbone)
        if self.recipe not in PRESETS:
            raise ValueError(unknown("recipe", self.recipe, PRESETS))
        if self.logger not in LOGGERS:
            raise ValueError(unknown("logger", self.logger, LOGGERS))
        if self.selection_precision not in SELECTION_PRECISIONS:
            raise ValueError(unknown("selection_precision", self.selection_precision, SELECTION_PRECISIONS))
        if isinstance(self.tofu_eval, dict):
            self.tofu_eval = build(TofuEvalConfig, self.tofu_eval, "tofu_eval")
        if isinstance(self.method_options, dict):  # Python callers may pass a plain mapping
            self.method_options = build(MethodOptions, self.method_options, "method_options")
        if isinstance(self.repair, dict):
            self.repair = build(RepairConfig, self.repair, "repair")
        for name in self.methods:
            if name in ("rt", "original"):
                continue
            parse_method(name)  # raises with the valid names
            mcfg = self.method_options.resolve(name)  # invalid options fail before any work
            if getattr(mcfg, "select", None) == "oracle" and not (self.headroom and "rt" in self.methods):
                raise ValueError(
                    f'{name}: select="oracle" chooses by the gap to RT: it needs `rt` in methods and '
                    "headroom: true"
                )
        self.train_recipe()

    def train_recipe(self) -> TrainRecipe:
        fields = {**PRESETS[self.recipe].__dict__, **self.recipe_overrides}
        return TrainRecipe(**fields)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Builds dataclass ``cls`` from a plain dict, recursing into dataclass-typed fields.

    Unknown keys and values of the wrong type raise a ValueError naming the field and the valid fields.
    """
    return build(cls, data, cls.__name__)
