"""The static name tables the CLI validates with (no torch) equal the registries they copy."""

from __future__ import annotations

import pytest

from unlearn_lit.config import DataConfig, RunConfig, names
from unlearn_lit.config.methods import METHOD_CONFIGS
from unlearn_lit.registry import UnknownNameError


def test_name_tables_equal_the_registries():
    from unlearn_lit.data import DATASETS, FORGET_POLICIES
    from unlearn_lit.masks.objectives import OBJECTIVES
    from unlearn_lit.methods import MASK_SOURCES, METHODS
    from unlearn_lit.models import BACKBONES

    assert sorted(names.BACKBONES) == BACKBONES.names()
    assert sorted(names.DATASETS) == DATASETS.names()
    assert sorted(names.OBJECTIVES) == OBJECTIVES.names()
    # every method registers the very options class the config validates with
    assert METHOD_CONFIGS == {name: METHODS.get(name).config for name in METHODS.names()}
    assert (names.MASK_SOURCES, names.FORGET_POLICIES) == (MASK_SOURCES, FORGET_POLICIES)


def test_unknown_names_fail_in_the_config_with_a_hint(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown backbone 'tiny_bertt'; did you mean 'tiny_bert'"):
        RunConfig(backbone="tiny_bertt")
    with pytest.raises(
        UnknownNameError, match="unknown dataset 'fashion_mnst'; did you mean 'fashion_mnist'"
    ):
        DataConfig(name="fashion_mnst")
    with pytest.raises(ValueError, match="unknown forget policy 'clas'; did you mean 'class'"):
        DataConfig(forget="clas")
    (tmp_path / "config.json").write_text("{}")  # a local HF directory, and the prefixed forms, are valid
    for backbone in (str(tmp_path), "hf:bert-base-uncased", "timm:vit_tiny_patch16_224"):
        assert RunConfig(backbone=backbone, methods=[]).backbone == backbone
