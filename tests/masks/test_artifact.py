"""Mask artifact: round trip, validation on load, figure, and atomic saving."""

import json
import os

import pytest
import safetensors.torch
import torch

from unlearn_lit.masks import artifact as artifact_module
from unlearn_lit.masks.artifact import MaskArtifact

SHAPES = {"head": (3, 4), "filter": (3, 10)}


def make_artifact(**summary) -> MaskArtifact:
    gen = torch.Generator().manual_seed(0)
    scores = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in SHAPES.items()}
    masks = {k: t > 0.5 for k, t in scores.items()}
    summary = summary or {"objective": "mlr", "sparsity": 0.9, "search": {"kinds": {"head": {"swapped": 1}}}}
    return MaskArtifact(head=masks["head"], filter=masks["filter"], scores=scores, summary=summary)


def test_round_trip(tmp_path):
    artifact = make_artifact()
    path = artifact.save(tmp_path / "run")
    assert path == tmp_path / "run" / "mask.safetensors"
    loaded = MaskArtifact.load(tmp_path / "run", expected_shapes=SHAPES)
    assert torch.equal(loaded.head, artifact.head) and torch.equal(loaded.filter, artifact.filter)
    assert loaded.head.dtype == torch.bool
    for kind in SHAPES:
        assert loaded.scores[kind].dtype == torch.float32
        torch.testing.assert_close(loaded.scores[kind], artifact.scores[kind].float())
    assert loaded.summary == {**artifact.summary, "counts": artifact.counts()}
    assert MaskArtifact.load(path).summary == loaded.summary  # the file path works too


def test_counts_are_derived_from_the_masks():
    head = torch.tensor([[True, False, False, False], [True, True, False, False]])
    counts = MaskArtifact(head=head).counts()
    assert counts == {
        "head": {"selected_per_layer": [1, 2], "selected": 3, "total": 8, "sparsity": 1 - 3 / 8}
    }


def test_head_only_artifact_round_trips(tmp_path):
    head = torch.tensor([[True, False], [False, True]])
    MaskArtifact(head=head).save(tmp_path)
    loaded = MaskArtifact.load(tmp_path, expected_shapes={"head": (2, 2)})
    assert loaded.filter is None and loaded.scores == {} and torch.equal(loaded.head, head)


def test_shape_mismatch_names_expected_and_found(tmp_path):
    make_artifact().save(tmp_path)
    expected = {"head": (12, 12), "filter": (3, 10)}
    with pytest.raises(ValueError, match=r"expected \{'head': \(12, 12\), 'filter': \(3, 10\)\}, found"):
        MaskArtifact.load(tmp_path, expected_shapes=expected)
    with pytest.raises(ValueError, match="do not match"):
        MaskArtifact.load(tmp_path, expected_shapes={"filter": (3, 10)})


def test_corrupt_and_missing_files_are_reported(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        MaskArtifact.load(tmp_path)
    make_artifact().save(tmp_path)
    data = (tmp_path / "mask.safetensors").read_bytes()
    (tmp_path / "mask.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is corrupt"):
        MaskArtifact.load(tmp_path)
    (tmp_path / "mask.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="is corrupt"):
        MaskArtifact.load(tmp_path)
    (tmp_path / "mask.safetensors").write_bytes(data)
    (tmp_path / "mask.json").write_text("{not json")
    with pytest.raises(ValueError, match="mask summary .* is corrupt"):
        MaskArtifact.load(tmp_path)


def test_wrong_keys_and_dtypes_are_rejected(tmp_path):
    file = tmp_path / "mask.safetensors"
    safetensors.torch.save_file({"head": torch.ones(2, 2)}, file)
    with pytest.raises(ValueError, match="dtype torch.float32; expected torch.bool"):
        MaskArtifact.load(file)
    safetensors.torch.save_file({"heads": torch.ones(2, 2, dtype=torch.bool)}, file)
    with pytest.raises(ValueError, match=r"keys \['heads'\]; expected some of"):
        MaskArtifact.load(file)
    safetensors.torch.save_file(
        {"head": torch.ones(2, 2, dtype=torch.bool), "score.head": torch.ones(3)}, file
    )
    with pytest.raises(ValueError, match=r"scores\['head'\] has shape \(3,\); expected \(2, 2\)"):
        MaskArtifact.load(file)


def test_invalid_artifacts_are_rejected_on_construction():
    with pytest.raises(ValueError, match="at least one mask"):
        MaskArtifact()
    with pytest.raises(ValueError, match="bool"):
        MaskArtifact(head=torch.ones(2, 2))
    with pytest.raises(ValueError, match="no such mask"):
        MaskArtifact(head=torch.ones(2, 2, dtype=torch.bool), scores={"filter": torch.ones(2, 2)})


def test_figure_is_a_png(tmp_path):
    make_artifact().save(tmp_path)
    assert (tmp_path / "mask.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    MaskArtifact(filter=torch.ones(2, 5, dtype=torch.bool)).save(tmp_path / "filters_only")
    assert (tmp_path / "filters_only" / "mask.png").stat().st_size > 1000


def test_failed_save_leaves_no_files(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not JSON-serializable"):
        make_artifact(bad=object()).save(tmp_path)
    with pytest.raises(ValueError, match="not JSON-serializable"):
        make_artifact(objective_after=float("nan")).save(tmp_path)
    assert os.listdir(tmp_path) == []

    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        raise OSError("disk full")

    monkeypatch.setattr(artifact_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        make_artifact().save(tmp_path)
    assert calls and os.listdir(tmp_path) == []  # the temporary files are gone too


def test_existing_artifact_is_not_overwritten_silently(tmp_path):
    make_artifact().save(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_artifact().save(tmp_path)
    make_artifact(objective="mlf").save(tmp_path, overwrite=True)
    assert json.loads((tmp_path / "mask.json").read_text())["objective"] == "mlf"
    assert sorted(os.listdir(tmp_path)) == ["mask.json", "mask.png", "mask.safetensors"]


def test_warm_start_round_trips_and_is_validated(tmp_path):
    artifact = make_artifact()
    warm = {"head": artifact.head.clone()}
    warm["head"][0] = ~warm["head"][0]
    MaskArtifact(head=artifact.head, filter=artifact.filter, scores=artifact.scores, warm_start=warm).save(
        tmp_path
    )
    loaded = MaskArtifact.load(tmp_path)
    assert loaded.warm_start.keys() == {"head"} and torch.equal(loaded.warm_start["head"], warm["head"])
    with pytest.raises(ValueError, match=r"warm_start\['filter'\] must be bool of shape \(3, 10\)"):
        MaskArtifact(head=artifact.head, filter=artifact.filter, warm_start={"filter": torch.ones(3, 10)})
