"""GLUE ``sst2``, ``mnli``, ``qqp``, ``stsb`` (the paper's text benchmarks, METHOD.md §7-8).

Online: HF ``datasets.load_dataset("nyu-mll/glue", task)``. Offline: ``data_dir`` holding either the
HF parquet files (``train-*.parquet``, ``validation*.parquet``) or the original GLUE TSVs (``train.tsv``,
``dev.tsv`` / ``dev_matched.tsv``). D_t is the labelled validation split (GLUE test labels are hidden);
MNLI uses ``validation_matched`` unless ``mnli_test="validation_mismatched"``.
"""

from __future__ import annotations

import csv
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn_lit.data.base import DATASETS, DatasetSpec

log = logging.getLogger(__name__)
HUB_ID = "nyu-mll/glue"


@dataclass(frozen=True)
class GlueTask:
    """Columns of one task in the HF layout and in the original TSVs."""

    text: str
    pair: str | None
    num_labels: int
    tsv_text: str
    tsv_pair: str | None
    tsv_label: str
    label_names: tuple[str, ...] = ()


TASKS = {
    "sst2": GlueTask("sentence", None, 2, "sentence", None, "label", ("negative", "positive")),
    "mnli": GlueTask(
        "premise",
        "hypothesis",
        3,
        "sentence1",
        "sentence2",
        "gold_label",
        ("entailment", "neutral", "contradiction"),
    ),
    "qqp": GlueTask(
        "question1", "question2", 2, "question1", "question2", "is_duplicate", ("not_duplicate", "duplicate")
    ),
    "stsb": GlueTask("sentence1", "sentence2", 1, "sentence1", "sentence2", "score"),
}
TSV_FILES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
}


def parse_columns(task: str, columns: dict[str, list[Any]], tsv: bool = False) -> list[dict[str, Any]]:
    """Turns column lists (HF or TSV names) into examples; rows without a usable label are skipped."""
    spec = TASKS[task]
    text, pair, label = (
        (spec.tsv_text, spec.tsv_pair, spec.tsv_label) if tsv else (spec.text, spec.pair, "label")
    )
    missing = {c for c in (text, pair, label) if c} - set(columns)
    if missing:
        raise ValueError(f"GLUE {task}: missing columns {sorted(missing)}; found {sorted(columns)}")
    examples, skipped = [], 0
    for i, raw in enumerate(columns[label]):
        y = _label(spec, raw)
        if y is None or columns[text][i] is None or (pair and columns[pair][i] is None):
            skipped += 1
            continue
        example = {"text": str(columns[text][i]), "label": y}
        if pair:
            example["text_pair"] = str(columns[pair][i])
        examples.append(example)
    if skipped:
        log.info("GLUE %s: skipped %d rows without a usable label or text", task, skipped)
    return examples


def _label(spec: GlueTask, raw: Any) -> int | float | None:
    if raw is None or raw == "":
        return None
    if spec.num_labels == 1:
        return float(raw)
    if isinstance(raw, str) and raw in spec.label_names:
        return spec.label_names.index(raw)
    try:
        y = int(raw)
    except (TypeError, ValueError):
        return None
    return y if 0 <= y < spec.num_labels else None  # HF marks hidden test labels as -1


def read_tsv(path: Path) -> dict[str, list[str]]:
    """Reads an original GLUE TSV (no quoting) into columns; malformed rows are skipped."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        rows = [r for r in reader if len(r) == len(header)]
    return {name: [r[j] for r in rows] for j, name in enumerate(header)}


def read_local(task: str, data_dir: Path, split: str) -> list[dict[str, Any]]:
    """Reads one split from HF parquet files or an original GLUE TSV in ``data_dir``."""
    parquet = sorted(data_dir.glob(f"{split}-*.parquet"))
    if parquet:
        import pyarrow.parquet as pq  # a dependency of `datasets`

        columns: dict[str, list[Any]] = {}
        for path in parquet:
            for name, values in pq.read_table(path).to_pydict().items():
                columns.setdefault(name, []).extend(values)
        return parse_columns(task, columns)
    tsv = data_dir / TSV_FILES[split]
    if tsv.is_file():
        return parse_columns(task, read_tsv(tsv), tsv=True)
    raise FileNotFoundError(f"GLUE {task}: no {split}-*.parquet or {TSV_FILES[split]} in {data_dir}")


def read_hub(task: str, splits: tuple[str, str]) -> list[list[dict[str, Any]]]:
    """Downloads (or reads from the HF cache) the task with ``datasets`` (online users)."""
    import datasets

    try:
        data = datasets.load_dataset(HUB_ID, task)
    except Exception as err:  # offline, no cache: datasets raises several different types
        raise FileNotFoundError(
            f"GLUE {task} could not be loaded from the hub ({type(err).__name__}: {err}). It needs network "
            "access or a local copy: pass dataset_options={'data_dir': <dir with parquet files or GLUE TSVs>}"
        ) from err
    return [parse_columns(task, data[s].to_dict()) for s in splits]


def glue(task: str, data_dir: str | None = None, mnli_test: str = "validation_matched") -> DatasetSpec:
    """One GLUE task; see the module docstring for where the data comes from."""
    if mnli_test not in ("validation_matched", "validation_mismatched"):
        raise ValueError(f"mnli_test must be validation_matched or validation_mismatched, not {mnli_test!r}")
    splits = ("train", mnli_test if task == "mnli" else "validation")
    if data_dir is not None:
        train, test = (read_local(task, Path(data_dir), s) for s in splits)
    else:
        train, test = read_hub(task, splits)
    spec = TASKS[task]
    return DatasetSpec(
        name=task,
        train=train,
        test=test,
        num_labels=spec.num_labels,
        task="regression" if spec.num_labels == 1 else "classification",
        modality="text",
        options={"data_dir": data_dir, "test_split": splits[1]},
        label_names=spec.label_names,
    )


for _task in TASKS:
    DATASETS.register(_task)(functools.partial(glue, _task))
