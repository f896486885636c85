"""Run directories as data: their metrics, masks and configs, one row per run and method, and the mean
± confidence interval over seeds of runs that differ only in their seeds.

A run directory is the ``--out`` of ``python -m unlearn_lit run`` (``metrics.json``, ``mask/``,
``models/``). Runs are grouped into **settings**: runs whose resolved configs are equal once the seeds
(:data:`SEED_KEYS`) and the bookkeeping fields (:data:`BOOKKEEPING`) are left out are seeds of one
setting. A setting is named by the config fields that tell it apart from the others
(``mask.sparsity=0.9``). Numpy only, no torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_lit.config.names import MASK_SOURCES

SEED_KEYS = ("seed", "data.seed", "data.data_seed", "mask.seed")
# fields that do not change a method's numbers (or, for `methods`, change which rows a run has)
BOOKKEEPING = ("methods", "cache_dir", "retrain", "retrain_corrupt", "logger", "wandb_project", "table",
               "trainer", "threads", "save_models", "headroom", "headroom_prune")  # fmt: skip
MASKED_PREFIXES = tuple(f"{source}_" for source in MASK_SOURCES if source != "none")
METRICS = ("ua", "ra", "ta", "mia", "avg_gap", "ua_gap", "ra_ta_gap", "time_s", "updated")


@dataclass
class Run:
    """One run directory: ``name`` (unique among the compared runs), ``metrics`` (``metrics.json``), the
    mask arrays and summary (``mask/``; None without a mask) and the setting it belongs to (a short
    label and the config fields that tell it apart)."""

    name: str
    path: Path
    metrics: dict[str, Any]
    mask: dict[str, np.ndarray] | None = None
    mask_summary: dict[str, Any] | None = None
    setting: str = ""
    setting_description: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return self.metrics.get("config", {})

    @property
    def seed(self) -> int | None:
        return self.config.get("seed")

    @property
    def sparsity(self) -> float | None:
        return (self.mask_summary or {}).get("sparsity", self.config.get("mask", {}).get("sparsity"))

    def models(self) -> dict[str, Path]:
        """``method -> models/<method>/`` for the unlearned models saved with the run."""
        root = self.path / "models"
        return {d.name: d for d in sorted(root.iterdir()) if d.is_dir()} if root.is_dir() else {}


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories from the arguments: a directory with ``metrics.json`` is a run; one without it
    stands for the runs directly below it (e.g. an experiment's ``runs/`` folder).

    Raises:
        ValueError: a path that is neither, or fewer than one run in all.
    """
    out: list[Path] = []
    for path in map(Path, paths):
        if (path / "metrics.json").is_file():
            out.append(path)
            continue
        below = sorted(p.parent for p in path.glob("*/metrics.json")) if path.is_dir() else []
        if not below:
            raise ValueError(f"{path} is not a run directory (no metrics.json) and holds none; expected "
                             "the --out of `python -m unlearn_lit run` or a folder of such directories")  # fmt: skip
        out += below
    if not out:
        raise ValueError("no run directories given")
    return list(dict.fromkeys(out))


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Loads every run (see :func:`expand`) and names runs and settings."""
    from safetensors.numpy import load_file

    dirs = expand(paths)
    names = _unique_names(dirs)
    runs = []
    for name, path in zip(names, dirs, strict=True):
        try:
            metrics = json.loads((path / "metrics.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path / 'metrics.json'} is corrupt: {err}") from err
        mask = summary = None
        if (path / "mask" / "mask.safetensors").is_file():
            mask = load_file(path / "mask" / "mask.safetensors")
            file = path / "mask" / "mask.json"
            summary = json.loads(file.read_text()) if file.is_file() else {}
        runs.append(Run(name, path, metrics, mask, summary))
    described = settings([r.config for r in runs])
    for run, label, description in zip(runs, short_labels(described), described, strict=True):
        run.setting, run.setting_description = label, description
    return runs


def _unique_names(dirs: Sequence[Path]) -> list[str]:
    """The directory names, with as many parent folders as it takes to tell them apart."""
    for depth in range(1, max(len(d.resolve().parts) for d in dirs) + 1):
        names = ["/".join(d.resolve().parts[-depth:]) for d in dirs]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in dirs]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"mask": {"sparsity": 0.9}}`` -> ``{"mask.sparsity": 0.9}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):  # an empty group adds no key: it reads as absent, like None
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def settings(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The setting name of every config: ``key=value`` of the fields (neither seeds nor bookkeeping) in
    which the configs differ, ``"all runs"`` when they differ only in seeds."""
    flat = [
        {k: v for k, v in flatten(c).items()
         if k not in SEED_KEYS and not any(k == b or k.startswith(b + ".") for b in BOOKKEEPING)}
        for c in configs
    ]  # fmt: skip
    keys = sorted({k for f in flat for k in f})
    differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    return [", ".join(f"{k}={f.get(k)}" for k in differing) or "all runs" for f in flat]


def short_labels(descriptions: Sequence[str], limit: int = 48) -> list[str]:
    """The descriptions themselves when all are at most ``limit`` characters, else ``S1``, ``S2``, ...
    in first-seen order (the report then lists what each stands for)."""
    if all(len(d) <= limit for d in descriptions):
        return list(descriptions)
    index = {d: f"S{i + 1}" for i, d in enumerate(dict.fromkeys(descriptions))}
    return [index[d] for d in descriptions]


def is_masked(method: str) -> bool:
    """Whether the method updates only the units of a unit mask (its numbers depend on the sparsity)."""
    return method.startswith(MASKED_PREFIXES)


def method_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run and method: UA/RA/TA/MIA (fractions), Avg.Gap, the UA gap and the mean RA/TA gap
    to RT of the same run (points; None without RT), time, the share of parameters updated, and the
    run's sparsity for masked methods. Failed methods get NaN metrics and the error in ``failed``."""
    rows = []
    for run in runs:
        methods = run.metrics.get("methods", {})
        rt = methods.get("rt")
        for name, r in methods.items():
            row = {
                "run": run.name, "setting": run.setting, "seed": run.seed, "method": name,
                "sparsity": run.sparsity if is_masked(name) else None,
                "ua": r["forget_acc"], "ra": r["retain_acc"], "ta": r["test_acc"], "mia": r["mia"],
                "avg_gap": None if r.get("avg_gap") is None else 100 * r["avg_gap"],
                "ua_gap": None if rt is None else 100 * abs(r["forget_acc"] - rt["forget_acc"]),
                "ra_ta_gap": None if rt is None else 50 * (abs(r["retain_acc"] - rt["retain_acc"])
                                                           + abs(r["test_acc"] - rt["test_acc"])),
                "time_s": r["time_s"], "updated": r["params_updated"] / max(r["params_total"], 1),
                "unlearned": r.get("unlearned"), "failed": "",
            }  # fmt: skip
            rows.append(row)
        for name, why in run.metrics.get("failed", {}).items():
            rows.append({"run": run.name, "setting": run.setting, "seed": run.seed, "method": name,
                         "sparsity": None, **dict.fromkeys(METRICS, math.nan), "failed": why})  # fmt: skip
    return rows


def mean_ci(values: Iterable[Any], level: float = 0.95) -> tuple[float, float, int]:
    """``(mean, half-width, n)`` of the finite values: Student's t interval at ``level``; the half-width
    is NaN for fewer than two values, the mean NaN for none."""
    xs = np.array([v for v in values if v is not None], dtype=float)
    xs = xs[np.isfinite(xs)]
    if xs.size < 2:
        return (float(xs[0]) if xs.size else math.nan), math.nan, int(xs.size)
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, xs.size - 1) * xs.std(ddof=1) / math.sqrt(xs.size))
    return float(xs.mean()), half, int(xs.size)


def aggregate(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and 95% CI half-width (``<metric>_ci``) of :data:`METRICS` per (setting, method), in
    first-seen order, with ``n`` runs, the seeds and the sparsity of the group."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["method"]), []).append(row)
    out = []
    for (setting, method), members in groups.items():
        agg: dict[str, Any] = {"setting": setting, "method": method, "n": len(members),
                               "seeds": sorted({m["seed"] for m in members if m["seed"] is not None}),
                               "sparsity": members[0]["sparsity"]}  # fmt: skip
        for metric in METRICS:
            agg[metric], agg[f"{metric}_ci"], _ = mean_ci(m.get(metric) for m in members)
        agg["failed"] = "; ".join(sorted({m["failed"] for m in members if m.get("failed")}))
        out.append(agg)
    return out
