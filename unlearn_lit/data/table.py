"""``csv``: your own text dataset from a table file -- CSV, TSV, JSON Lines or Parquet -- without code.

    python -m unlearn_lit run --config FILE --data.name csv \
        --data.options '{"path": "reviews.csv", "text": "review", "label": "stars"}' --out runs/mine

Files are read with HF ``datasets`` (its ``csv``/``json``/``parquet`` builders; local files need no
network). Labels may be strings (mapped to ``0..K-1`` in sorted order; the names are kept) or integers
``0..K-1``; float labels that are not whole numbers make a regression task. Without ``test_path``, a
seeded ``test_fraction`` of the rows is held out as D_t. Rows with an empty text or label are dropped
(and counted in the log).
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

from unlearn_lit.data.base import DATASETS, DatasetSpec
from unlearn_lit.data.splits import holdout

log = logging.getLogger(__name__)

BUILDERS = {".csv": ("csv", {}), ".tsv": ("csv", {"delimiter": "\t"}), ".jsonl": ("json", {}),
            ".json": ("json", {}), ".parquet": ("parquet", {})}  # fmt: skip


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a CSV/TSV/JSONL/Parquet file as dicts (through ``datasets``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    if path.suffix.lower() not in BUILDERS:
        raise ValueError(f"cannot read {path.name}: valid extensions are {', '.join(BUILDERS)}")
    import datasets

    builder, kwargs = BUILDERS[path.suffix.lower()]
    table = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    return table.to_list()


def table_examples(rows: list[dict], columns: dict[str, str | None], where: str) -> list[dict]:
    missing = sorted({c for c in columns.values() if c is not None} - set(rows[0] if rows else ()))
    if missing:
        found = ", ".join(rows[0]) if rows else "no rows"
        raise ValueError(
            f"{where} lacks columns {missing}; found: {found} (set the column names in the options)"
        )
    out, dropped = [], 0
    for row in rows:
        ex = {key: row[col] for key, col in columns.items() if col is not None}
        if any(v is None or (isinstance(v, str) and not v.strip()) for v in ex.values()):
            dropped += 1
            continue
        out.append(ex)
    if dropped:
        log.info("%s: dropped %d rows with an empty text or label", where, dropped)
    return out


def label_task(examples: list[dict]) -> tuple[str, int, tuple[str, ...]]:
    """(task, num_labels, label names); relabels string labels to 0..K-1 in place."""
    values = [e["label"] for e in examples]
    if all(isinstance(v, str) for v in values):
        names = tuple(sorted(set(values)))
        for e in examples:
            e["label"] = names.index(e["label"])
        return "classification", len(names), names
    if all(isinstance(v, bool | int) or (isinstance(v, float) and v.is_integer()) for v in values):
        ints = [int(v) for v in values]
        if min(ints) < 0:
            raise ValueError(f"integer labels must be 0..K-1; found {min(ints)}")
        for e, v in zip(examples, ints, strict=True):
            e["label"] = v
        return "classification", max(ints) + 1, ()
    if all(isinstance(v, int | float) for v in values):
        for e in examples:
            e["label"] = float(e["label"])
        return "regression", 1, ()
    raise ValueError("labels must be all strings, all integers or all numbers")


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


@DATASETS.register("csv")
def csv_dataset(
    path: str,
    test_path: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    text: str = "text",
    text_pair: str | None = None,
    label: str = "label",
    id: str | None = None,  # noqa: A002 - the option's name in configs
) -> DatasetSpec:
    """A text dataset from a table file.

    Args:
        path: the training table (``.csv``, ``.tsv``, ``.jsonl``/``.json``, ``.parquet``).
        test_path: a table of D_t (same columns); default: hold out ``test_fraction`` of ``path``.
        test_fraction: fraction of ``path`` held out as D_t when there is no ``test_path``.
        split_seed: seed of that hold-out.
        text: the text column.
        text_pair: a second text column (sentence pairs, e.g. NLI), or None.
        label: the label column (strings, integers 0..K-1, or numbers for regression).
        id: a column of example ids (forget policy ``ids``: a file of the ids to forget), or None.
    """
    columns = {"text": text, "text_pair": text_pair, "label": label, "id": id}
    train = table_examples(read_table(path), columns, Path(path).name)
    if test_path is not None:
        test = table_examples(read_table(test_path), columns, Path(test_path).name)
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        held, kept = holdout(len(train), math.ceil(len(train) * test_fraction), split_seed, "csv_test")
        train, test = [train[i] for i in kept], [train[i] for i in held]
    task, num_labels, names = label_task(train + test)  # one label map for both splits
    # the files' content is part of the options, and so of θ*'s cache key: an edited file retrains
    files = {"sha256": _sha256(path), "test_sha256": _sha256(test_path) if test_path else None}
    options = {
        "path": str(path),
        "test_path": test_path,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "text": text,
        "text_pair": text_pair,
        "label": label,
        **files,
        **({"id": id} if id else {}),
    }  # fmt: skip (no id: the cache key of earlier versions)
    return DatasetSpec(
        name="csv",
        train=train,
        test=test,
        num_labels=num_labels,
        task=task,
        modality="text",
        options=options,
        label_names=names,
    )
