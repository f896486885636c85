"""Dataset ``hf`` (any ``datasets`` dataset, offline from local paths) and forget sets by example ids."""

from __future__ import annotations

import json

import pytest

from tests.data.test_table import rows
from tests.toys import quick_run_fields
from unlearn_lit.config import DataConfig, RunConfig
from unlearn_lit.data import build_datamodule, build_dataset
from unlearn_lit.run import run


def save_to_disk(root, n=120):
    """A DatasetDict (train/test) with a ClassLabel and an id column, written by ``save_to_disk``."""
    import datasets

    features = datasets.Features({"review": datasets.Value("string"), "id": datasets.Value("string"),
                                  "stars": datasets.ClassLabel(names=["neg", "pos"])})  # fmt: skip
    data = [{"review": r["review"], "id": f"r{r['id']}", "stars": r["stars"]} for r in rows(n)]
    split = {"train": data[: n - 30], "test": data[n - 30 :]}
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=features) for k, v in split.items()})
    dd.save_to_disk(str(root))
    return split


def test_save_to_disk_parquet_folder_and_errors(tmp_path):
    split = save_to_disk(tmp_path / "disk")
    spec = build_dataset("hf", path=str(tmp_path / "disk"), text="review", label="stars", id="id")
    assert spec.label_names == ("neg", "pos") and spec.num_labels == 2 and spec.modality == "text"
    assert len(spec.train) == 90 and len(spec.test) == 30
    assert [e["id"] for e in spec.train] == [r["id"] for r in split["train"]]
    assert all(
        ("neg", "pos")[e["label"]] == r["stars"] for e, r in zip(spec.train, split["train"], strict=True)
    )
    # a local folder of parquet files (datasets' own builder) gives the same examples
    import datasets

    (tmp_path / "parquet").mkdir()
    for name, part in split.items():
        datasets.Dataset.from_list(part).to_parquet(str(tmp_path / "parquet" / f"{name}.parquet"))
    other = build_dataset("hf", path=str(tmp_path / "parquet"), text="review", label="stars", id="id")
    assert other.train == spec.train and other.label_names == ("neg", "pos")
    held = build_dataset("hf", path=str(tmp_path / "parquet"), text="review", label="stars", test_split=None)
    assert len(held.train) == 72 and len(held.test) == 18
    with pytest.raises(ValueError, match="split 'dev' not in .*valid choices: train, test"):
        build_dataset("hf", path=str(tmp_path / "disk"), split="dev")
    with pytest.raises(ValueError, match=r"lacks columns \['text'\]"):
        build_dataset("hf", path=str(tmp_path / "disk"), label="stars")


def test_forget_by_ids(tmp_path):
    save_to_disk(tmp_path / "disk")
    options = {"path": str(tmp_path / "disk"), "text": "review", "label": "stars", "id": "id"}
    first = build_datamodule(
        "hf", forget_size=8, val_size=10, dataset_options=options
    )  # D and D_v by data_seed
    in_d, in_val = [first.train[i]["id"] for i in (3, 17, 40, 41)], first.val[0]["id"]
    (tmp_path / "ids.txt").write_text("# deletion request\n" + "\n".join(in_d) + "\n")
    dm = build_datamodule("hf", forget="ids", forget_ids=str(tmp_path / "ids.txt"), val_size=10,
                          dataset_options=options)  # fmt: skip
    assert sorted(e["id"] for e in dm.forget) == sorted(in_d) and dm.forget_indices.tolist() == [
        3,
        17,
        40,
        41,
    ]
    assert not {e["id"] for e in dm.retain} & set(in_d) and len(dm.forget) + len(dm.retain) == 80
    (tmp_path / "ids.json").write_text(json.dumps([in_d[0], in_val, "nope"]))
    with pytest.raises(ValueError, match=rf"2 forget ids are not in D .*\['{in_val}', 'nope'\]"):
        build_datamodule("hf", forget="ids", forget_ids=str(tmp_path / "ids.json"), val_size=10,
                         dataset_options=options)  # fmt: skip
    # without an id column, an example's id is its position in the dataset's training pool
    pool = build_datamodule("digits", val_size=0.05).train.positions
    (tmp_path / "pos.txt").write_text(f"{pool[4]}\n{pool[9]}\n")
    dm = build_datamodule("digits", forget="ids", forget_ids=str(tmp_path / "pos.txt"), val_size=0.05)
    assert dm.forget_indices.tolist() == [4, 9]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_saved_hf_dataset_runs_through_the_pipeline_forgetting_ids(tmp_path):
    save_to_disk(tmp_path / "disk")
    options = {"path": str(tmp_path / "disk"), "text": "review", "label": "stars", "id": "id"}
    ids = [
        e["id"] for e in build_datamodule("hf", forget_size=8, val_size=16, dataset_options=options).train
    ][:40:5]
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    cfg = RunConfig(backbone="tiny_bert", recipe="vit_small", recipe_overrides={"epochs": 2},
                    data=DataConfig(name="hf", options=options, forget="ids", forget_ids=str(tmp_path / "ids.txt"),
                                    val_size=16, batch_size=16),
                    methods=["ga"], **quick_run_fields(tmp_path))  # fmt: skip
    summary = run(cfg, tmp_path / "run")
    assert not summary["failed"] and "ga" in summary["methods"]
    record = json.loads((tmp_path / "run" / "models" / "ga" / "unlearning_record.json").read_text())
    assert record["forget_ids"] == list(range(0, 40, 5))  # positions in D of the requested ids


def test_an_image_column(tmp_path):
    import datasets
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    images = [Image.fromarray((x[i].reshape(8, 8) * 255 / 16).astype(np.uint8), mode="L") for i in range(60)]
    features = datasets.Features({"img": datasets.Image(), "digit": datasets.ClassLabel(num_classes=10)})
    data = datasets.Dataset.from_dict({"img": images, "digit": [int(v) for v in y[:60]]}, features=features)
    data.save_to_disk(str(tmp_path / "digits"))
    spec = build_dataset("hf", path=str(tmp_path / "digits"), image="img", label="digit", grayscale=True,
                         test_split=None, image_size=16)  # fmt: skip
    assert (
        spec.modality == "image" and spec.num_labels == 10 and len(spec.train) == 48 and len(spec.test) == 12
    )
    ex = spec.train[0]
    assert ex["image"].shape == (1, 16, 16) and 0.0 <= ex["image"].min() and ex["image"].max() <= 1.0
    with pytest.raises(ValueError, match="holds one Dataset, not a DatasetDict with a 'test' split"):
        build_dataset("hf", path=str(tmp_path / "digits"), image="img", label="digit")
