"""``tofu``: TOFU (Maini et al. 2024; METHOD.md §9) -- ``locuslab/TOFU`` through HF ``datasets``.

θ* is fine-tuned on all 4,000 QA pairs (``full``: 200 fictitious authors x 20 questions) and RT on the
retain split; ``forget01/05/10`` are the last 1/5/10% of the authors. The evaluation sets are TOFU's:
``forgetXX_perturbed`` (paraphrased and perturbed answers of the forget questions),
``retain_perturbed`` (400 retain questions), ``real_authors_perturbed`` and ``world_facts_perturbed``.
TOFU has no unseen fictitious authors, so D_v (the RT-free selection's validation set) is a seeded
``val_size`` of the retain QA pairs held out of training **[choice]**; D_t is the same set.

Loading needs the hub (``HF_HUB_OFFLINE`` unset) or a local copy: ``path`` = a directory with one JSON
(Lines) file per subset (``full.json``, ``forget10.json``, ``forget10_perturbed.json``, ...). The offline
analog is ``tofu_synthetic``. Shared with it: the split helpers and :func:`tofu_spec`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_lit.data.base import DATASETS, DatasetSpec
from unlearn_lit.data.splits import holdout

log = logging.getLogger(__name__)
FORGET_SPLITS = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.10}
HUB_ID = "locuslab/TOFU"
REQUIRED = {
    "qa": ("question", "answer"),
    "perturbed": ("question", "answer", "paraphrased_answer", "perturbed_answer"),
    "known": ("question", "answer", "perturbed_answer"),
}
EVAL_SETS = ("forget", "retain", "real_authors", "world_facts")


def check_fields(rows: Sequence[dict[str, Any]], kind: str, where: str) -> None:
    """Raises a ValueError naming the fields ``rows`` lack (``kind``: qa, perturbed or known)."""
    if not rows:
        raise ValueError(f"{where} has no rows")
    missing = sorted(set(REQUIRED[kind]) - set(rows[0]))
    if missing:
        raise ValueError(
            f"{where} lacks the fields {missing}; TOFU {kind} examples need {', '.join(REQUIRED[kind])} "
            f"(found: {', '.join(rows[0])})"
        )


def forget_authors(num_authors: int, split: str) -> list[int]:
    """Author ids of a TOFU forget split: the last 1/5/10% of ``num_authors`` (at least one)."""
    if split not in FORGET_SPLITS:
        raise ValueError(f"unknown forget split {split!r}; valid choices: {', '.join(FORGET_SPLITS)}")
    k = max(1, round(FORGET_SPLITS[split] * num_authors))
    if k >= num_authors:
        raise ValueError(f"{split} of {num_authors} authors would forget every author")
    return list(range(num_authors - k, num_authors))


def tofu_spec(
    name: str,
    authors: Sequence[Sequence[dict[str, Any]]],
    forget: Sequence[int],
    *,
    val: list[dict[str, Any]],
    test: list[dict[str, Any]],
    real_authors: list[dict[str, Any]],
    world_facts: list[dict[str, Any]],
    retain_eval: int | None,
    options: dict[str, Any],
    retain_perturbed: list[dict[str, Any]] | None = None,
) -> DatasetSpec:
    """The :class:`DatasetSpec` of a TOFU-like dataset: ``authors[i]`` is author i's QA list.

    D = every author's QA in author order; the forget split's positions are those of ``forget``'s
    authors; the evaluation sets are the forget QA (with paraphrased and perturbed answers), a seeded
    ``retain_eval`` of the retain QA (or ``retain_perturbed``), real authors and world facts.
    """
    train = [e for qa in authors for e in qa]
    owner = np.asarray([i for i, qa in enumerate(authors) for _ in qa])
    positions = np.flatnonzero(np.isin(owner, np.asarray(forget))).tolist()
    forget_set = [train[p] for p in positions]
    if retain_perturbed is None:
        retain = [e for e in train if e.get("author") not in set(forget)]
        keep = np.arange(len(retain)) if retain_eval is None else np.sort(holdout(len(retain),
               min(retain_eval, len(retain)), 0, "tofu_retain_eval")[0])  # fmt: skip
        retain_perturbed = [retain[i] for i in keep]
    for rows, kind, where in ((train, "qa", "train"), (forget_set, "perturbed", "forget"),
                              (retain_perturbed, "perturbed", "retain_perturbed"),
                              (real_authors, "known", "real_authors"), (world_facts, "known", "world_facts")):  # fmt: skip
        check_fields(rows, kind, f"{name} {where}")
    return DatasetSpec(
        name=name,
        train=train,
        test=test,
        num_labels=0,
        task="lm",
        modality="text",
        options=options,
        val=val,
        forget_positions=positions,
        eval_sets={
            "forget": forget_set,
            "retain": retain_perturbed,
            "real_authors": real_authors,
            "world_facts": world_facts,
        },  # fmt: skip
    )


def _subset(name: str, path: str | None) -> list[dict[str, Any]]:
    """One TOFU subset: ``{path}/{name}.json`` (JSON or JSON Lines), or the hub."""
    if path is not None:
        file = Path(path).expanduser() / f"{name}.json"
        if not file.is_file():
            raise FileNotFoundError(f"TOFU subset {file} not found (expected {name}.json in {path})")
        text = file.read_text().strip()
        return json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    import datasets

    try:
        return datasets.load_dataset(HUB_ID, name, split="train").to_list()
    except Exception as err:  # noqa: BLE001 - offline errors come in several types
        raise ConnectionError(
            f"could not load {HUB_ID} subset {name!r} from the HF hub ({type(err).__name__}: {err}). "
            "It needs network access (unset HF_HUB_OFFLINE) or a local copy: options.path=<directory with "
            f"{name}.json, ...>. Offline, use dataset tofu_synthetic."
        ) from err


@DATASETS.register("tofu")
def tofu(
    forget_split: str = "forget10", path: str | None = None, val_size: int = 200, split_seed: int = 0
) -> DatasetSpec:
    """TOFU from the hub (``locuslab/TOFU``) or a local copy (use ``forget: split``).

    Args:
        forget_split: ``forget01``, ``forget05`` or ``forget10``.
        path: directory of local subset files (``full.json`` ...); None = the HF hub.
        val_size: retain QA pairs held out of training as D_v (and D_t).
        split_seed: seed of that hold-out.
    """
    if forget_split not in FORGET_SPLITS:
        raise ValueError(f"unknown forget split {forget_split!r}; valid choices: {', '.join(FORGET_SPLITS)}")
    full = _subset("full", path)
    check_fields(full, "qa", "TOFU full")
    forget_rows = _subset(f"{forget_split}_perturbed", path)
    check_fields(forget_rows, "perturbed", f"TOFU {forget_split}_perturbed")
    forget_q = {r["question"] for r in forget_rows}
    extra = {r["question"]: r for r in forget_rows}
    # every TOFU author has 20 questions, in order: author = position // 20
    qa = [{**extra.get(e["question"], {}), **e, "author": i // 20} for i, e in enumerate(full)]
    n_authors = (len(qa) + 19) // 20
    forget = sorted({e["author"] for e in qa if e["question"] in forget_q})
    retain = [i for i, e in enumerate(qa) if e["author"] not in set(forget)]
    held, _ = holdout(len(retain), val_size, split_seed, "tofu_val")
    held_pos = {retain[i] for i in held}
    val = [qa[p] for p in sorted(held_pos)]
    authors: list[list[dict[str, Any]]] = [[] for _ in range(n_authors)]
    for p, e in enumerate(qa):
        if p not in held_pos:
            authors[e["author"]].append(e)
    options = {"forget_split": forget_split, "val_size": val_size, "split_seed": split_seed, "path": path}
    return tofu_spec(
        "tofu",
        authors,
        forget,
        val=val,
        test=val,
        real_authors=_subset("real_authors_perturbed", path),
        world_facts=_subset("world_facts_perturbed", path),
        retain_eval=None,
        options=options,
        retain_perturbed=_subset("retain_perturbed", path),
    )
