"""Hard freeze of masked fine-tuning (METHOD.md §5): frozen entries bit-identical to θ* after 50 steps.

For every fine-tuning method family, on a tiny BERT and a tiny ViT, with a random unit mask that
splits the shared matrices (W_Q/W_K/W_V rows, W_O columns, W_1 rows, W_2 columns) into selected and
frozen slices, under AdamW with weight decay 0.1 and SGD with momentum 0.9 (weight decay 0.1).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from unlearn_lit.methods import METHODS, UnlearningFailed
from unlearn_lit.phases.unlearn import MaskedUnlearning, OptimConfig

FAMILIES = ("ga", "gd", "npo", "ft", "sa", "rl", "salun", "sure")


class OptimizerProbe(L.Callback):
    """Records, at the end of training, what the optimizer holds for frozen entries."""

    def on_train_end(self, trainer, pl_module):
        opt = trainer.optimizers[0]
        self.optimized = {id(p) for g in opt.param_groups for p in g["params"]}
        self.trainable = {n: id(p) for n, p in pl_module.trainable_parameters().items()}
        self.frozen_state_max = {}
        params = pl_module.trainable_parameters()
        for name, frozen in pl_module.frozen.items():
            state = opt.state[params[name]]
            tensors = [v for v in state.values() if torch.is_tensor(v) and v.shape == frozen.shape]
            assert tensors, f"no optimizer state for {name}"
            self.frozen_state_max[name] = max(float(v[frozen].abs().max()) for v in tensors)
            self.trainable_state_nonzero = any(bool(v[~frozen].ne(0).any()) for v in tensors)


CASES = [
    # tiny BERT with SGD is the slow tier (about 1.5 s each); every other combination runs by default
    pytest.param(
        b, m, o, marks=[pytest.mark.slow] if (b, o) == ("tiny_bert", "sgd") else [], id=f"{b}-{m}-{o}"
    )
    for b in ("tiny_bert", "tiny_vit")
    for m in FAMILIES
    for o in ("adamw", "sgd")
]


@pytest.mark.parametrize("backbone,method,optimizer", CASES)
def test_frozen_entries_bit_identical_after_50_steps(toy_inputs, backbone, method, optimizer):
    probe = OptimizerProbe()
    inputs = toy_inputs(backbone, masked=True, callbacks=[probe])
    original = {n: p.detach().clone() for n, p in inputs.original.named_parameters()}
    m = METHODS.get(method)
    optim = OptimConfig(optimizer=optimizer, lr=1e-3, weight_decay=0.1, momentum=0.9)
    cfg = m.config(optim=optim, masked_lr=None, max_steps=50, selection=False, forget_batch_size=8)
    result = m.run(inputs, cfg)

    assert result.info["steps_run"] == 50
    changed = 0
    for name, p in result.model.named_parameters():
        assert torch.equal(inputs.original.get_parameter(name), original[name]), f"θ* changed: {name}"
        selected = inputs.param_mask.get(name, torch.zeros_like(p, dtype=torch.bool))
        assert torch.equal(p[~selected], original[name][~selected]), f"frozen entries of {name} moved"
        if selected.any() and method != "salun":  # salun also freezes its non-salient entries
            assert not torch.equal(p[selected], original[name][selected]), f"selected {name} never moved"
        changed += int((p != original[name]).sum())
    assert changed > 0
    # parameters without a selected entry never reach the optimizer; frozen state stays at zero
    model_ids = {id(p) for p in result.model.parameters()}
    assert probe.optimized & model_ids == set(probe.trainable.values())
    if method != "salun":
        assert set(probe.trainable) == {n for n, m in inputs.param_mask.items() if m.any()}
    assert probe.frozen_state_max and max(probe.frozen_state_max.values()) == 0.0
    assert probe.trainable_state_nonzero


def test_empty_mask_returns_the_original_unchanged(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    inputs.param_mask = {n: torch.zeros_like(m) for n, m in inputs.param_mask.items()}
    result = METHODS.get("gd").run(inputs, METHODS.get("gd").config(max_steps=5))
    assert result.info["num_updated"] == 0 and result.hparams["steps"] == 0
    for name, p in result.model.named_parameters():
        assert torch.equal(p, inputs.original.get_parameter(name)) and p.requires_grad


def test_full_parameter_run_moves_every_parameter_and_restores_requires_grad(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=False)
    optim = OptimConfig(lr=1e-3, weight_decay=0.1, schedule="linear")
    cfg = METHODS.get("ft").config(optim=optim, max_steps=5, selection=False)
    result = METHODS.get("ft").run(inputs, cfg)
    for name, p in result.model.named_parameters():
        assert p.requires_grad
        if name.endswith("weight") and "norm" not in name:
            assert not torch.equal(p, inputs.original.get_parameter(name)), name


def nan_loss(model, forget, retain, original, progress):
    return model.per_example_loss(forget).mean() * float("nan")


def test_nan_loss_raises_and_leaves_original_untouched(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    before = {n: p.detach().clone() for n, p in inputs.original.named_parameters()}
    module = MaskedUnlearning(inputs.fresh_model(), None, inputs.param_mask, nan_loss, OptimConfig())
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(UnlearningFailed, match=r"loss is nan at step 0: the method diverged"):
        trainer.fit(module, train_dataloaders={"forget": inputs.datamodule.forget_dataloader()})
    for name, p in inputs.original.named_parameters():
        assert torch.equal(p, before[name]), name


def test_bad_optimizer_and_mask_shape_name_the_choices(toy_inputs):
    with pytest.raises(ValueError, match="valid choices: adamw, sgd"):
        OptimConfig(optimizer="adam")
    with pytest.raises(ValueError, match="valid choices: constant, linear"):
        OptimConfig(schedule="cosine")
    inputs = toy_inputs("tiny_vit", masked=False)
    name = next(iter(dict(inputs.original.named_parameters())))
    with pytest.raises(ValueError, match=f"mask of {name} has shape"):
        MaskedUnlearning(
            inputs.fresh_model(), None, {name: torch.ones(3, dtype=torch.bool)}, nan_loss, OptimConfig()
        )
