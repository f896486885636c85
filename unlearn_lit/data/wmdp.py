"""``wmdp``: WMDP (Li et al. 2024; METHOD.md §9) -- hazardous-knowledge unlearning, scored by multiple choice.

The model (Zephyr-7B-β in the paper) is unlearnt on a **forget corpus** (bio and/or cyber documents)
while a **retain corpus** (WikiText, ``wikitext-2-raw-v1``) keeps its language ability; there is no RT.
It is scored by multiple-choice accuracy, each choice's letter by log-likelihood
(:mod:`unlearn_lit.eval.mcq`, chance 25%): on the ``cais/wmdp`` questions of the forgotten subsets
(``wmdp-bio`` 1,273, ``wmdp-cyber`` 1,987 questions; split ``test``; fields question, choices, answer),
which should fall to chance, and on MMLU (``cais/mmlu``, config ``all``, split ``test``) as utility,
which should stay where θ* had it. ``lm-eval`` is not used: it is not in the pinned stack, and the
project's scorer prompts as its WMDP/MMLU tasks do (``{question}\\nA. ...\\nAnswer:``, letters scored).

Sources, through HF ``datasets`` unless ``path`` holds a local copy (a directory with any of
``wmdp-bio.jsonl``, ``wmdp-cyber.jsonl``, ``bio-forget-corpus.jsonl``, ``cyber-forget-corpus.jsonl``,
``wikitext.jsonl`` (``{"text"}`` rows), ``mmlu.jsonl``; a file present is read instead of the hub):

- cyber forget corpus: ``cais/wmdp-corpora``, config ``cyber-forget-corpus``;
- bio forget corpus: **gated** -- the WMDP authors hand out ``bio-forget-corpus.jsonl`` on request
  (see the ``cais/wmdp-corpora`` dataset card); put it in ``path``. Without it the loader tries the
  gated hub copy ``cais/wmdp-bio-forget-corpus`` (needs an approved HF token) and fails naming the file.

D = the forget documents then the retain passages (``{"text"}``; use ``forget: split``); D_v (and D_t)
is a seeded ``val_size`` of further WikiText passages, never trained on. Offline (no hub, no ``path``)
the loader fails with one line naming ``mcq_synthetic``, the offline analog. Shared with it:
:func:`mcq_spec` and :func:`check_mcq`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_lit.data.base import DATASETS, DatasetSpec
from unlearn_lit.data.splits import holdout, subsample

log = logging.getLogger(__name__)
SUBSETS = {"bio": "wmdp-bio", "cyber": "wmdp-cyber"}
MCQ_FIELDS = ("question", "choices", "answer")
EVAL_SETS = ("forget_mcq", "retain_mcq")
# local file stem -> (hub id, config, split, what the file is)
SOURCES = {
    "wmdp-bio": ("cais/wmdp", "wmdp-bio", "test", "WMDP bio questions"),
    "wmdp-cyber": ("cais/wmdp", "wmdp-cyber", "test", "WMDP cyber questions"),
    "bio-forget-corpus": ("cais/wmdp-bio-forget-corpus", None, "train", "the gated bio forget corpus"),
    "cyber-forget-corpus": ("cais/wmdp-corpora", "cyber-forget-corpus", "train", "the cyber forget corpus"),
    "wikitext": ("wikitext", "wikitext-2-raw-v1", "train", "the WikiText retain corpus"),
    "mmlu": ("cais/mmlu", "all", "test", "MMLU"),
}


def subset_names(subsets: str | Sequence[str]) -> list[str]:
    """``bio`` / ``cyber`` (or ``wmdp-bio`` / ``wmdp-cyber``) normalized to the short names."""
    names = [subsets] if isinstance(subsets, str) else list(subsets)
    out = []
    for name in names:
        short = str(name).removeprefix("wmdp-")
        if short not in SUBSETS:
            raise ValueError(f"unknown WMDP subset {name!r}; valid choices: {', '.join(SUBSETS)} "
                             f"(or {', '.join(SUBSETS.values())})")  # fmt: skip
        out.append(short)
    if not out:
        raise ValueError(f"WMDP needs at least one subset; valid choices: {', '.join(SUBSETS)}")
    return sorted(set(out), key=out.index)


def check_mcq(rows: Sequence[dict[str, Any]], where: str) -> None:
    """Raises a ValueError naming what multiple-choice ``rows`` lack (fields, a valid answer index)."""
    if not rows:
        raise ValueError(f"{where} has no questions")
    missing = [k for k in MCQ_FIELDS if k not in rows[0]]
    if missing:
        raise ValueError(f"{where} lacks the fields {missing}; multiple-choice questions need "
                         f"{', '.join(MCQ_FIELDS)} (found: {', '.join(rows[0])})")  # fmt: skip
    for r in rows:
        if len(r["choices"]) < 2 or not 0 <= int(r["answer"]) < len(r["choices"]):
            raise ValueError(f"{where}: answer {r['answer']!r} is not an index into {len(r['choices'])} choices "
                             f"of {r['question'][:60]!r}")  # fmt: skip


def mcq_spec(
    name: str,
    forget_text: Sequence[str],
    retain_text: Sequence[str],
    val_text: Sequence[str],
    forget_mcq: list[dict[str, Any]],
    retain_mcq: list[dict[str, Any]],
    options: dict[str, Any],
) -> DatasetSpec:
    """The :class:`DatasetSpec` of a WMDP-like dataset: D = forget then retain text (``{"text"}``), the
    forget split = the forget text, D_v = D_t = ``val_text``; ``eval_sets`` holds the forget-topic and
    the utility multiple-choice questions (:data:`EVAL_SETS`)."""
    if not forget_text or not retain_text or not val_text:
        raise ValueError(f"{name}: empty corpus (forget {len(forget_text)}, retain {len(retain_text)}, "
                         f"validation {len(val_text)} passages)")  # fmt: skip
    check_mcq(forget_mcq, f"{name} forget-topic questions")
    check_mcq(retain_mcq, f"{name} utility questions")
    train = [{"text": t} for t in (*forget_text, *retain_text)]
    val = [{"text": t} for t in val_text]
    return DatasetSpec(name=name, train=train, test=val, num_labels=0, task="lm", modality="text",
                       options=options, val=val, forget_positions=list(range(len(forget_text))),
                       eval_sets={"forget_mcq": forget_mcq, "retain_mcq": retain_mcq})  # fmt: skip


def _rows(stem: str, path: str | None) -> list[dict[str, Any]]:
    """One source: ``{path}/{stem}.jsonl`` (or ``.json``) when present, else the HF hub (:data:`SOURCES`)."""
    if path is not None:
        for suffix in (".jsonl", ".json"):
            file = Path(path).expanduser() / f"{stem}{suffix}"
            if file.is_file():
                text = file.read_text().strip()
                return (
                    json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
                )
    hub, config, split, what = SOURCES[stem]
    try:
        import datasets

        return datasets.load_dataset(hub, config, split=split).to_list()
    except Exception as err:  # noqa: BLE001 - offline, gated and missing-package errors come in several types
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:200]
        local = f"{stem}.jsonl in options.path"
        gated = (
            " (gated: request bio-forget-corpus.jsonl from the WMDP authors)"
            if stem.startswith("bio")
            else ""
        )
        raise ConnectionError(
            f"could not load {what} ({hub}{'/' + config if config else ''}) from the HF hub{gated} ({reason}); "
            f"it needs network access (unset HF_HUB_OFFLINE) or a local copy ({local}). Offline, use dataset "
            "mcq_synthetic."
        ) from err


def _mcq(stem: str, path: str | None, topic: str | None, size: int | None, seed: int) -> list[dict[str, Any]]:
    rows = _rows(stem, path)
    check_mcq(rows, stem)
    keep = subsample(len(rows), size, seed, stem)
    return [{"question": r["question"], "choices": list(r["choices"]), "answer": int(r["answer"]),
             "topic": topic or r.get("subject", stem)} for r in (rows[int(i)] for i in keep)]  # fmt: skip


def _texts(rows: Sequence[dict[str, Any]], stem: str, min_chars: int) -> list[str]:
    if rows and "text" not in rows[0]:
        raise ValueError(f"{stem} rows need the field text (found: {', '.join(rows[0])})")
    return [t for t in (str(r["text"]).strip() for r in rows) if len(t) >= min_chars]


@DATASETS.register("wmdp")
def wmdp(
    subsets: str | Sequence[str] = ("bio", "cyber"),
    path: str | None = None,
    forget_size: int | None = 1000,
    retain_size: int | None = 1000,
    val_size: int = 200,
    min_chars: int = 50,
    wmdp_size: int | None = None,
    mmlu_size: int | None = None,
    split_seed: int = 0,
) -> DatasetSpec:
    """WMDP from the hub or local copies (use ``forget: split``; see the module docstring).

    Args:
        subsets: ``bio``, ``cyber`` or both: the forget corpora and the forget-topic questions.
        path: directory of local copies (``bio-forget-corpus.jsonl``, ...); missing files come from the hub.
        forget_size: forget documents trained on (a seeded subsample; None = all).
        retain_size: WikiText passages in D (None = all but D_v).
        val_size: further WikiText passages held out as D_v and D_t.
        min_chars: passages shorter than this (WikiText's headings and blank lines) are dropped.
        wmdp_size: forget-topic questions scored per subset (None = all, as the paper).
        mmlu_size: MMLU questions scored (None = all 14,042).
        split_seed: seed of the subsamples and the hold-out.
    """
    names = subset_names(subsets)
    forget_mcq = [q for s in names for q in _mcq(SUBSETS[s], path, s, wmdp_size, split_seed)]
    forget_text: list[str] = []
    for s in names:
        stem = f"{s}-forget-corpus"
        docs = _texts(_rows(stem, path), stem, min_chars)
        forget_text += [docs[int(i)] for i in subsample(len(docs), forget_size, split_seed, stem)]
    wiki = _texts(_rows("wikitext", path), "wikitext", min_chars)
    held, rest = holdout(len(wiki), min(val_size, len(wiki) // 2), split_seed, "wmdp_val")
    rest = rest[subsample(len(rest), retain_size, split_seed, "wmdp_retain")]
    options = {"subsets": names, "path": path, "forget_size": forget_size, "retain_size": retain_size,
               "val_size": val_size, "min_chars": min_chars, "wmdp_size": wmdp_size, "mmlu_size": mmlu_size,
               "split_seed": split_seed}  # fmt: skip
    return mcq_spec(
        "wmdp",
        forget_text,
        [wiki[int(i)] for i in rest],
        [wiki[int(i)] for i in np.asarray(held)],
        forget_mcq,
        _mcq("mmlu", path, None, mmlu_size, split_seed),
        options,
    )


__all__ = ["EVAL_SETS", "SUBSETS", "check_mcq", "mcq_spec", "subset_names", "wmdp"]
