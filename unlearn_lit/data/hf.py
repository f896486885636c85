"""``hf``: any HF ``datasets`` dataset -- a hub id (cached, or online) or a local path -- without code.

    python -m unlearn_lit run --config FILE --data.name hf \
        --data.options '{"path": "my_dataset", "split": "train", "test_split": "test"}' --out runs/mine

``path`` is a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (read with
``datasets.load_from_disk``), or anything ``datasets.load_dataset`` reads: a hub id (with ``config``,
``revision``) or a local directory of parquet/JSON/CSV files. Text columns (``text``, ``text_pair``) or
an image column (``image``: PIL images, resized to ``image_size``) with a ``label`` column; a
``ClassLabel`` keeps its names, other labels follow the ``csv`` dataset's rules. An ``id`` column names
the examples for forget-by-ids. Without ``test_split``, a seeded ``test_fraction`` of ``split`` is held out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from unlearn_lit.data.base import DATASETS, DatasetSpec, ImageExamples
from unlearn_lit.data.splits import holdout
from unlearn_lit.data.table import label_task, table_examples


def _load(path: str, config: str | None, split: str, revision: str | None) -> Any:
    import datasets

    local = Path(path).expanduser()
    if (local / "dataset_dict.json").is_file() or (local / "dataset_info.json").is_file():
        data = datasets.load_from_disk(str(local))  # save_to_disk output
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise ValueError(f"split {split!r} not in {path}; valid choices: {', '.join(data)}")
            return data[split]
        if split != "train":
            raise ValueError(f"{path} holds one Dataset, not a DatasetDict with a {split!r} split: use "
                             "split: train and test_split: null (D_t is then held out of it)")  # fmt: skip
        return data
    try:
        return datasets.load_dataset(
            str(local) if local.exists() else path, config, split=split, revision=revision
        )
    except ValueError as err:  # an unknown split names the valid ones in datasets' own message
        raise ValueError(f"hf dataset {path!r} (config {config!r}) split {split!r}: {err}") from None


@DATASETS.register("hf")
def hf_dataset(
    path: str,
    config: str | None = None,
    split: str = "train",
    test_split: str | None = "test",
    test_fraction: float = 0.2,
    split_seed: int = 0,
    text: str = "text",
    text_pair: str | None = None,
    image: str | None = None,
    image_size: int | None = None,
    grayscale: bool = False,
    label: str = "label",
    id: str | None = None,  # noqa: A002 - the option's name in configs
    revision: str | None = None,
) -> DatasetSpec:
    """A dataset through HF ``datasets``.

    Args:
        path: a hub id, a ``save_to_disk`` directory, or a local directory of data files.
        config: the dataset's configuration name (hub datasets with several), or None.
        split: the split of the training pool.
        test_split: the split of D_t; None holds out ``test_fraction`` of ``split``.
        test_fraction: fraction of ``split`` held out as D_t when ``test_split`` is None.
        split_seed: seed of that hold-out.
        text: the text column (ignored when ``image`` is set).
        text_pair: a second text column, or None.
        image: an image column (PIL images) instead of text, or None.
        image_size: square size of the images (None: the first image's width).
        grayscale: images as one channel instead of RGB.
        label: the label column.
        id: a column of example ids (forget policy ``ids``), or None.
        revision: the hub revision (commit) to read.
    """
    train_data = _load(path, config, split, revision)
    test_data = _load(path, config, test_split, revision) if test_split is not None else None
    columns = {"image": image} if image else {"text": text, "text_pair": text_pair}
    columns |= {"label": label, "id": id}
    train, test = _rows(train_data, columns, image_size, grayscale), None
    if test_data is not None:
        test = _rows(test_data, columns, image_size or _size(train), grayscale)
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        held, kept = holdout(len(train), math.ceil(len(train) * test_fraction), split_seed, "hf_test")
        train, test = [train[i] for i in kept], [train[i] for i in held]
    feature = train_data.features.get(label)
    names = tuple(getattr(feature, "names", None) or ())
    if names:  # a ClassLabel: integers with names
        task, num_labels = "classification", len(names)
        if any(not 0 <= r["label"] < num_labels for r in train + test):
            raise ValueError(f"{path}: labels outside 0..{num_labels - 1} (an unlabeled split, e.g. -1?)")
    else:
        task, num_labels, names = label_task(train + test)
    options = {"path": path, "config": config, "split": split, "test_split": test_split,
               "test_fraction": test_fraction, "split_seed": split_seed, "revision": revision, **columns,
               "image_size": image_size, "grayscale": grayscale,
               "fingerprint": [train_data._fingerprint, getattr(test_data, "_fingerprint", None)]}  # fmt: skip
    if image:
        train, test = _images(train), _images(test)
    return DatasetSpec(name="hf", train=train, test=test, num_labels=num_labels, task=task,
                       modality="image" if image else "text", options=options, label_names=names)  # fmt: skip


def _rows(data: Any, columns: dict[str, str | None], image_size: int | None, grayscale: bool) -> list[dict]:
    rows = table_examples(
        data.to_list() if not columns.get("image") else list(data), columns, str(data.split)
    )
    if columns.get("image"):
        from unlearn_lit.data.imagefolder import image_tensor

        size = image_size or int(rows[0]["image"].width)
        for row in rows:
            row["image"] = image_tensor(row["image"], size, grayscale)
    return rows


def _size(rows: list[dict]) -> int | None:
    first = rows[0].get("image")
    return int(first.shape[-1]) if first is not None else None


def _images(rows: list[dict]) -> Any:
    import torch

    if "id" in rows[0]:  # ImageExamples holds no ids: plain dicts, scaled as ImageExamples serves them
        return [{"image": r["image"].float() / 255.0, "label": r["label"], "id": r["id"]} for r in rows]
    return ImageExamples(torch.stack([r["image"] for r in rows]), torch.tensor([r["label"] for r in rows]))
