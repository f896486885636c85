"""Masked fine-tuning under DDP (``ddp_spawn``, 2 CPU processes): the hard freeze holds bit for bit and the
checkpoint selection's table and choice reach the main process."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unlearn_lit.methods import METHODS
from unlearn_lit.methods.ga import GAConfig
from unlearn_lit.runtime import Runtime

TWO = Runtime(accelerator="cpu", devices=2, strategy="ddp_spawn", progress_bar=False)


@pytest.mark.integration
@pytest.mark.slow  # ddp_spawn (10-20 s): CI runs it in its slow step
@pytest.mark.timeout(300)
def test_mape_ga_under_ddp_keeps_frozen_entries_and_selects(toy_inputs):
    inputs = dataclasses.replace(toy_inputs("tiny_vit", masked=True), runtime=TWO)
    cfg = GAConfig(max_steps=8, every_n_steps=2, lr_retries=0, patience=None, selection_retain=32)
    result = METHODS.get("ga").run(inputs, cfg)
    steps = [r["step"] for r in result.candidates]
    assert steps == [0, 2, 4, 6, 8] and result.info["steps_run"] == 8  # 8 steps, selection every 2
    assert result.hparams["steps"] in steps and "reason" in result.info
    after = dict(result.model.named_parameters())
    changed = 0
    for n, p in inputs.original.named_parameters():
        mask = inputs.param_mask.get(n, torch.zeros_like(p, dtype=torch.bool))
        assert torch.equal(after[n][~mask], p[~mask]), n  # frozen entries are θ*'s, bit for bit
        changed += int((after[n] != p).sum())
    assert (changed > 0) == (result.hparams["steps"] > 0)  # the chosen checkpoint came back


@pytest.mark.integration
@pytest.mark.slow  # ddp_spawn (10-20 s): CI runs it in its slow step
@pytest.mark.timeout(300)
def test_ddp_without_selection_reports_the_steps_it_took(toy_inputs):
    """Spawned processes hand back the step count with the weights: a changed model is not reported as
    θ* kept."""
    inputs = dataclasses.replace(toy_inputs("tiny_vit", masked=True), runtime=TWO)
    result = METHODS.get("ga").run(inputs, GAConfig(max_steps=4, lr_retries=0, selection=False))
    assert result.info["steps_run"] == 4 and result.hparams["steps"] == 4 and not result.info["kept_original"]
    assert any(
        not torch.equal(p, q)
        for p, q in zip(inputs.original.parameters(), result.model.parameters(), strict=True)
    )
