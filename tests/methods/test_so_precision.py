"""The SO statistics under a ``*-mixed`` precision are the same in one process as in the Lightning pass a
distributed run computes them in: both under Lightning's autocast (``unlearn_lit.runtime``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.toys import NUM_LABELS, random_unit_mask, toy_datamodule
from unlearn_lit.data.splits import subsample
from unlearn_lit.methods import UnlearnInputs
from unlearn_lit.methods.fisher import ParamSelection
from unlearn_lit.methods.so import SOConfig, statistics
from unlearn_lit.methods.so_statistics import SOStatistics, so_statistics
from unlearn_lit.models import build_backbone
from unlearn_lit.runtime import Runtime
from unlearn_lit.units import unit_layout

CPU = Runtime(accelerator="cpu", progress_bar=False)
BF16 = dataclasses.replace(CPU, precision="bf16-mixed")


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Relative L2 distance between two dicts of tensors, in float64."""
    num = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in a)
    den = sum(float(b[k].double().pow(2).sum()) for k in a)
    return (num / den) ** 0.5


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["per_example", "per_batch"])
@pytest.mark.parametrize("name", ["tiny_vit", "tiny_bert"])
def test_one_process_statistics_follow_mixed_precision_like_the_lightning_pass(name, mode):
    backbone = build_backbone(name, num_labels=NUM_LABELS[name]).eval()
    inputs = UnlearnInputs(
        backbone, toy_datamodule(backbone), unit_layout(backbone), random_unit_mask(backbone)
    )
    cfg = SOConfig(fisher=mode, fisher_examples=24, batch_size=8, chunk_size=4)
    sel = ParamSelection(backbone, inputs.trainable(backbone))
    dm = inputs.datamodule
    positions = torch.as_tensor(
        subsample(len(dm.retain), cfg.fisher_examples, inputs.seed, "retain_subsample")
    )

    def lightning_pass(runtime):  # what a distributed run computes, here in one process
        stats = SOStatistics(
            backbone, sel.masks, dm.retain, positions, dm.forget, mode, cfg.chunk_size, cfg.batch_size
        )
        return so_statistics(stats, runtime=runtime)

    f32, g32, _ = statistics(inputs, cfg, sel)
    one, g_one, _ = statistics(dataclasses.replace(inputs, runtime=BF16), cfg, sel)
    lit, g_lit = lightning_pass(BF16)
    lit32, g_lit32 = lightning_pass(CPU)
    assert one.count == lit.count == f32.count == cfg.fisher_examples
    # the Fisher: the same examples in the same batches (per-batch) or alone (per-example) under the same
    # autocast, equal up to float rounding; in float32 as well
    assert _distance(one.sumsq, lit.sumsq) < 1e-5 and _distance(lit32.sumsq, f32.sumsq) < 1e-5
    # the forget gradient sum: the pass forms text batches by length, one process in dataset order, so
    # their sums round differently -- within bf16's epsilon under autocast, float32's scale without it
    assert _distance(g_one, g_lit) < (torch.finfo(torch.bfloat16).eps if name == "tiny_bert" else 1e-5)
    assert _distance(g_lit32, g32) < 1e-5
    # and the autocast did apply: bf16 matrix products move both by more than that
    assert _distance(one.sumsq, f32.sumsq) > 1e-3
    assert _distance(g_one, g32) > max(1e-3, 2 * _distance(g_one, g_lit))
