"""SO / MAPE-SO: the Newton-type step against per-example autograd (float64), masks, selection, guards."""

import math

import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from unlearn_lit.methods import METHODS, UnlearningFailed, UnlearnInputs
from unlearn_lit.methods.so import SOConfig
from unlearn_lit.models import build_backbone
from unlearn_lit.selection import Headroom
from unlearn_lit.units import unit_layout


class ListData:
    """The DataModule contract over lists of raw examples (forget / retain / val)."""

    def __init__(self, collate, forget, retain, val, policy="random"):
        self.collate, self.forget, self.retain, self.val = collate, forget, retain, val
        self.forget_spec = type("Spec", (), {"policy": policy})()

    def _loader(self, data, batch_size=16):
        return DataLoader(data, batch_size=batch_size or 16, collate_fn=self.collate)

    def forget_dataloader(self, batch_size=None):
        return self._loader(self.forget, batch_size)

    def retain_dataloader(self, shuffle=False, subsample=None, seed=None, batch_size=None):
        g = torch.Generator().manual_seed(seed or 0)
        keep = (
            sorted(torch.randperm(len(self.retain), generator=g)[:subsample].tolist()) if subsample else None
        )
        return self._loader(self.retain if keep is None else [self.retain[i] for i in keep], batch_size)

    def val_dataloader(self, batch_size=None):
        return self._loader(self.val, batch_size)


def setup(n_forget=8, n_retain=40, n_val=16, dtype=torch.float64):
    bb = build_backbone("tiny_vit", num_labels=10).to(dtype)
    collate = bb.collate
    bb.collate = lambda ex: {k: v.to(dtype) if v.is_floating_point() else v for k, v in collate(ex).items()}
    d = load_digits()
    ex = [
        {"image": torch.tensor(d.images[i] / 16).view(1, 8, 8).float(), "label": int(d.target[i]), "index": i}
        for i in range(n_forget + n_retain + n_val)
    ]
    dm = ListData(bb.collate, ex[:n_forget], ex[n_forget : n_forget + n_retain], ex[n_forget + n_retain :])
    return bb, dm


def newton(bb, dm, tau, c, masks=None, scale=None, lam=None):
    """θ + τ/|D_r| · M ∘ (F + λ)^{-1} Σ_f ∇ℓ from one autograd.grad call per example."""
    params = dict(bb.named_parameters())
    names = list(masks) if masks is not None else list(params)

    def grads(x):
        g = torch.autograd.grad(bb.per_example_loss(bb.collate([x])).sum(), [params[n] for n in names])
        return dict(zip(names, g, strict=True))

    bb.eval()
    retain = [grads(x) for x in dm.retain]
    fisher = {n: torch.stack([g[n] for g in retain]).pow(2).mean(0) for n in names}
    forget = {n: sum(grads(x)[n] for x in dm.forget) for n in names}
    m = masks or {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    lam = lam if lam is not None else c * torch.cat([fisher[n][m[n]] for n in names]).mean()
    scale = scale if scale is not None else tau / len(dm.retain)
    return {n: params[n] + torch.where(m[n], scale * forget[n] / (fisher[n] + lam), 0.0) for n in names}


def run_so(bb, dm, param_mask=None, headroom=None, **cfg):
    inputs = UnlearnInputs(bb, dm, unit_layout(bb), param_mask=param_mask, headroom=headroom)
    base = dict(fisher_examples=None, selection_retain=16, selection_val=16)
    return METHODS.get("so").run(inputs, SOConfig(**{**base, **cfg}))


def test_so_equals_newton_step_float64():
    bb, dm = setup()
    res = run_so(bb, dm, select="fixed", tau=0.05, c=0.1)
    ref = newton(bb, dm, 0.05, 0.1)
    for n, p in res.model.named_parameters():
        torch.testing.assert_close(p, ref[n], rtol=1e-10, atol=1e-12)
    assert res.hparams["eta"] == pytest.approx(0.05 / 40) and res.hparams["tau"] == 0.05
    assert res.info["params_updated"] == res.info["params_total"]


def test_mape_so_zero_mask_is_identity_and_ones_mask_is_so_on_unit_params():
    bb, dm = setup()
    layout = unit_layout(bb)
    params = dict(bb.named_parameters())
    zero = {k: torch.zeros(layout.shape(k), dtype=torch.bool) for k in layout.kinds}
    res = run_so(bb, dm, layout.param_masks(zero, params), select="fixed")
    assert all(torch.equal(p, params[n]) for n, p in res.model.named_parameters())
    ones = layout.param_masks(layout.ones(), params)
    res = run_so(bb, dm, ones, select="fixed", tau=0.05, c=0.1)
    ref = newton(bb, dm, 0.05, 0.1, masks=ones)
    for n, p in res.model.named_parameters():
        if n in ones:
            torch.testing.assert_close(p, ref[n], rtol=1e-10, atol=1e-12)
        else:
            assert torch.equal(p, params[n]), n
    full = run_so(bb, dm, select="fixed")
    assert res.info["buffer_bytes"]["total"] < full.info["buffer_bytes"]["total"]
    assert res.info["params_updated"] == sum(int(m.sum()) for m in ones.values())


def test_paper_preset_scales_eta_by_total_over_updated():
    bb, dm = setup()
    layout = unit_layout(bb)
    params = dict(bb.named_parameters())
    masks = {k: torch.zeros(layout.shape(k), dtype=torch.bool) for k in layout.kinds}
    masks["filter"][:, ::4] = True
    pm = layout.param_masks(masks, params)
    res = run_so(bb, dm, pm, preset="paper", select="fixed", eta=1e-4, lam=1e-3)
    ratio = sum(p.numel() for p in params.values()) / sum(int(m.sum()) for m in pm.values())
    ref = newton(bb, dm, None, None, masks=pm, scale=1e-4 * ratio, lam=1e-3)
    for n in pm:
        torch.testing.assert_close(dict(res.model.named_parameters())[n], ref[n], rtol=1e-10, atol=1e-12)
    assert res.hparams["eta"] == pytest.approx(1e-4 * ratio) and res.hparams["tau"] is None


def test_selection_evaluates_every_candidate_extends_edges_and_skips_nan():
    bb, dm = setup(dtype=torch.float32)
    res = run_so(bb, dm, taus=(1e-3, 1e-2, 1e30), cs=(0.1, 1.0), max_extend=1)
    table = res.candidates
    coarse = {(r["c"], r["value"]) for r in table}
    assert {(c, t) for c in (0.1, 1.0) for t in (1e-3, 1e-2, 1e30)} <= coarse
    assert all("damage" in r for r in table) and len(table) == res.info["num_candidates"]
    assert any(math.isnan(r["damage"]) for r in table)  # τ = 1e30 diverges ...
    chosen = table[res.info["choice"]]
    assert math.isfinite(chosen["damage"]) and chosen["value"] < 1e30  # ... and is never chosen
    assert res.info["reason"] and not res.info["oracle"] and res.info["time_selection_s"] > 0
    # no step within a zero KL bound: the screen extends the grid down two decades, and the rule keeps
    # θ* itself (τ = 0, the one candidate within the bound), which is reported as such
    res = run_so(bb, dm, taus=(1e-3, 1e-2), cs=(0.1,), rule={"guard": "kl", "eps": 1e-300}, max_extend=2)
    values = [r["value"] for r in res.candidates]
    assert all(any(math.isclose(v, t) for v in values) for t in (1e-4, 1e-5))  # two decades added
    assert res.hparams["tau"] == 0.0 and res.info["kept_original"]
    assert all(torch.equal(p, q) for p, q in zip(res.model.parameters(), bb.parameters(), strict=True))
    # step 0's row is the selection sets' reference row (not measured again): equal to θ* measured anew
    step0 = next(r for r in res.candidates if r["stage"] == "full" and r["value"] == 0.0)
    sets = UnlearnInputs(bb, dm, unit_layout(bb)).sets(16, 16)
    fresh = sets.measure(bb)
    assert all(step0[k] == pytest.approx(fresh[k], abs=1e-6) for k in fresh if math.isfinite(fresh[k]))


def test_oracle_mode_is_labelled_and_closest_to_rt():
    bb, dm = setup(dtype=torch.float32)
    theta = torch.cat([p.detach().flatten() for p in bb.parameters()])

    def evaluate(model):
        return {
            "drift": float((torch.cat([p.detach().flatten() for p in model.parameters()]) - theta).norm())
        }

    headroom = Headroom({"drift": 0.5}, evaluate, gap=lambda m, rt: abs(m["drift"] - rt["drift"]))
    res = run_so(bb, dm, headroom=headroom, select="oracle", refine=0, max_extend=0)
    gaps = [abs(r["eval/drift"] - 0.5) for r in res.candidates]
    chosen = res.candidates[res.info["choice"]]
    assert abs(chosen["eval/drift"] - 0.5) == min(gaps) and chosen["stage"] == "full"
    assert (
        res.info["oracle"] and res.info["reason"].startswith("ORACLE") and res.hparams["select"] == "oracle"
    )
    assert res.info["oracle_avg_gap"] == pytest.approx(min(gaps))
    with pytest.raises(ValueError, match="needs RT"):
        run_so(bb, dm, select="oracle")


def test_nan_forget_gradient_fails_and_leaves_original_untouched():
    bb, dm = setup(dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in bb.named_parameters()}
    dm.forget = [dict(dm.forget[0], image=torch.full((1, 8, 8), math.nan))] + dm.forget[1:]
    with pytest.raises(UnlearningFailed, match="forget gradient sum has"):
        run_so(bb, dm)
    assert all(torch.equal(p, before[n]) for n, p in bb.named_parameters())
    bb, dm = setup(dtype=torch.float32)
    with pytest.raises(UnlearningFailed, match="the SO update has NaN/inf"):
        run_so(bb, dm, select="fixed", tau=1e300)


def test_config_errors_and_targets():
    with pytest.raises(ValueError, match="valid choices: rule, oracle, fixed"):
        SOConfig(select="best")
    with pytest.raises(ValueError, match="valid choices: per_example, per_batch"):
        SOConfig(fisher="kfac")
    with pytest.raises(ValueError, match="taus"):
        SOConfig(taus=())
    dm = ListData(None, [], [], [], policy="class")
    assert SOConfig().rule.resolve(dm) == "class"
    assert SOConfig(rule={"target": "val_loss"}).rule.resolve(dm) == "val_loss"
    with pytest.raises(ValueError, match="valid choices: noise, gap, kl"):
        SOConfig(rule={"guard": "nats"})
    assert METHODS.get("so").finetunes is False
