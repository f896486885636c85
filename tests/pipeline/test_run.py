"""The pipeline end to end at reduced size, the CLI's errors, and every shipped config."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from pathlib import Path

import pytest
import torch

from unlearn_lit.__main__ import load_config, main
from unlearn_lit.config import DataConfig, RunConfig
from unlearn_lit.phases.mask_learning import MaskConfig
from unlearn_lit.report import COLUMNS
from unlearn_lit.run import COST_PARTS, run
from unlearn_lit.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
ROW_KEYS = set(COLUMNS)


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_quickstart_pipeline_reduced(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="unlearn_lit.eval.cost")  # each timed phase's seconds
    caplog.set_level(logging.INFO, logger="unlearn_lit.run")  # phase 1 + search
    cfg = RunConfig(
        backbone="vit_digits",
        data=DataConfig(name="digits", forget_size=64, max_train=600, max_test=300, val_size=150),
        recipe_overrides={"epochs": 10},
        mask=MaskConfig(sparsity=0.9, search_rows=256),
        methods=["rt", "so", "mape_so", "random_so", "ga", "mape_ga"],
        method_options={"so": {"fisher_examples": 256}, "mape_so": {"fisher_examples": 256},
                        "random_so": {"fisher_examples": 256},
                        "ga": {"max_steps": 20, "every_n_steps": 5}, "mape_ga": {"max_steps": 20, "every_n_steps": 5}},
        cache_dir=str(tmp_path / "cache"),
        trainer=Runtime(progress_bar=False),
    )  # fmt: skip
    out = tmp_path / "run"
    summary = run(cfg, out)
    for name in ("metrics.json", "results.csv", "results.md", "config.yaml", "forget_indices.json", "run.log",
                 "mask/mask.safetensors", "mask/mask.json", "mask/mask.png", "logs/metrics.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"].keys() >= {"original", "rt"}
    # costs by part: what applies is measured (> 0), what does not is 0; the headroom is kept apart
    cost = {
        m: metrics["methods"][m]["cost"]
        for m in ("so", "mape_so", "ga", "mape_ga")
        if m in metrics["methods"]
    }
    assert all(set(c) == set(COST_PARTS) and min(c.values()) >= 0 for c in cost.values())
    for m in ("so", "mape_so"):
        assert cost[m]["fisher_s"] > 0 and cost[m]["selection_s"] > 0 and cost[m]["steps_s"] == 0
    for m in ("ga", "mape_ga"):
        assert cost[m]["steps_s"] > 0 and cost[m]["selection_s"] > 0 and cost[m]["fisher_s"] == 0
    assert cost["mape_so"]["phase1_s"] > 0 and cost["so"]["phase1_s"] == 0 and cost["ga"]["headroom_s"] > 0
    # phase 1's cost is phase 1 + search as timed inside the phase, without writing the mask artifact
    inner, wall = map(
        float, re.search(r"phase 1 \+ search: ([\d.]+) s \(([\d.]+) s with", caplog.text).groups()
    )
    assert cost["mape_so"]["phase1_s"] == pytest.approx(inner, abs=0.01) and 0 < inner <= wall
    # a method's time is its timed block (logged) with phase 1 for MAPE, without the headroom analysis
    logged = dict(re.findall(r"phase (\w+): ([\d.]+) s", caplog.text))
    for m, c in cost.items():
        expected = float(logged[m]) - c["headroom_s"] + c["phase1_s"]
        assert metrics["methods"][m]["time_s"] == pytest.approx(expected, abs=0.02), m
    assert set(metrics["methods"]) | set(metrics["failed"]) == {
        "original",
        "rt",
        "so",
        "mape_so",
        "random_so",
        "ga",
        "mape_ga",
    }
    for name, row in metrics["methods"].items():
        assert ROW_KEYS <= row.keys(), name
        for k in ("forget_acc", "retain_acc", "test_acc", "mia", "avg_gap"):
            assert 0.0 <= row[k] <= 1.0 and math.isfinite(row[k]), (name, k)
        assert row["params_updated"] <= row["params_total"]
    assert metrics["methods"]["rt"]["avg_gap"] == 0.0
    assert metrics["methods"]["original"]["params_updated"] == 0
    assert metrics["methods"]["original"]["avg_gap"] > 0.0
    # masked methods touch far fewer parameters than full SO
    if {"so", "mape_so"} <= metrics["methods"].keys():
        assert metrics["methods"]["mape_so"]["params_updated"] < metrics["methods"]["so"]["params_updated"]
    assert metrics["environment"]["git_commit"] and metrics["environment"]["seed"] == 0
    assert "so" in metrics["hparams"] and metrics["hparams"]["so"]["candidates"]
    assert summary["methods"].keys() == metrics["methods"].keys()
    with pytest.raises(FileExistsError, match="exists"):
        run(cfg, out)  # never overwritten
    # a saved mask skips phase 1 and is used as is
    again = dataclasses.replace(cfg, methods=["rt", "mape_so"], mask_file=str(out / "mask"), train_outside_units=True,
                                method_options=cfg.method_options)  # fmt: skip
    second = run(again, tmp_path / "again")
    assert second["times_s"]["phase1_and_search"] == 0.0
    from unlearn_lit.masks.artifact import MaskArtifact

    a, b = MaskArtifact.load(out / "mask"), MaskArtifact.load(tmp_path / "again" / "mask")
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    if "mape_so" in metrics["methods"] and "mape_so" in second["methods"]:
        assert (
            second["methods"]["mape_so"]["params_updated"] > metrics["methods"]["mape_so"]["params_updated"]
        )  # train_outside_units=True: embeddings, norms, biases and the head are updated too
    bad = dataclasses.replace(again, mask_file=str(out / "results.csv"))
    with pytest.raises(ValueError, match="corrupt|mask"):
        run(bad, tmp_path / "bad")
    other = dataclasses.replace(again, mask=dataclasses.replace(cfg.mask, sparsity=0.8))
    with pytest.raises(ValueError, match=r"other settings \(sparsity: file 0.9 vs the config's 0.8\)"):
        run(other, tmp_path / "other")  # the random control would use 0.8: refused before any work
    assert not (tmp_path / "other").exists()


def test_cli_rejects_bad_input_before_any_work(tmp_path, capsys):
    """User errors are one line (no traceback, no usage text), with a "did you mean" for typos."""
    cfg = ROOT / "configs/quickstart/vit_digits.yaml"
    (tmp_path / "typo.yaml").write_text("mask: {sparsty: 0.5}\n")
    for argv, message in (
        (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (
            ["--mask.sparsty", "0.5"],
            "unrecognized arguments: --mask.sparsty 0.5; did you mean --mask.sparsity?",
        ),
        (["--config", str(tmp_path / "typo.yaml")], "'sparsty'; did you mean mask.sparsity?"),
        (["--mask.sparsity", "1.5"], "sparsity"),
        (["--mask.sparsity", "abc"], 'Parser key "mask.sparsity": Expected a'),
        (["--methods", "[rt, mape_nonsense]"], "valid choices"),
        (["--methods", "[mape_soo]"], "unknown method 'mape_soo'; did you mean 'mape_so'? valid choices"),
        (["--mask.objective", "mlx"], "did you mean 'mlr'? valid choices: mlf, mlr, norm, random"),
        (["--recipe", "vit_smal"], "unknown recipe 'vit_smal'; did you mean 'vit_small'? valid choices"),
        (["--data.name", "digitz"], "unknown dataset 'digitz'; did you mean 'digits'?"),
        (["--backbone", "vit_digit"], "unknown backbone 'vit_digit'; did you mean 'vit_digits'?"),
        (["--original", str(tmp_path / "nowhere")], "original"),
    ):
        assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "new"), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
        assert err.startswith("python -m unlearn_lit run: error: "), err
    assert not list(tmp_path.glob("*new*"))  # nothing written, not even a failed run directory
    (tmp_path / "exists").mkdir()
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "exists")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["compar"]) == 2
    assert "unknown command 'compar'; did you mean 'compare'?" in capsys.readouterr().err


CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_shipped_config_parses_and_builds(path, tmp_path):
    cfg = load_config(path)
    from unlearn_lit.data import DATASETS
    from unlearn_lit.data.glue import TASKS as GLUE_TASKS
    from unlearn_lit.models import BACKBONES, build_backbone

    online_data = cfg.data.name in GLUE_TASKS or cfg.data.name == "cifar10"
    online_model = cfg.backbone not in BACKBONES or cfg.backbone in (
        "bert_base",
        "distilbert_base",
        "roberta_base",
        "roberta_large",
        "vit_base",
    )
    if cfg.backbone == "smollm2_135m":  # offline, but a 135M model: its quickstart is not a unit test
        pytest.skip(f"{path.name}: loads SmolLM2-135M; parsed and validated only")
    if online_data or online_model:
        pytest.skip(
            f"{path.name}: needs the network ({cfg.data.name} / {cfg.backbone}); parsed and validated only"
        )
    assert cfg.data.name in DATASETS
    dm = cfg.data.build()
    backbone = build_backbone(cfg.backbone, num_labels=dm.dataset.num_labels, **cfg.backbone_options)
    dm.bind(backbone)
    batch = next(iter(dm.forget_dataloader()))
    assert backbone(batch).shape[0] == batch["labels"].shape[0]


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_pipeline_successive_requests_and_relearning_attack(tmp_path):
    from unlearn_lit.config import SuccessiveConfig
    from unlearn_lit.eval.relearn import RelearnConfig

    cfg = RunConfig(
        backbone="vit_digits",
        data=DataConfig(name="digits", forget_size=32, max_train=400, max_test=200, val_size=100),
        recipe_overrides={"epochs": 6},
        mask=MaskConfig(sparsity=0.9, search_rows=128),
        methods=["rt", "mape_so"],
        method_options={"mape_so": {"fisher_examples": 128, "selection_retain": 128, "selection_val": 100}},
        successive=SuccessiveConfig(method="mape_so", requests=[2], modes=["memory_free", "memory_aided"]),
        relearn=RelearnConfig(steps=3, batch_size=8),
        cache_dir=str(tmp_path / "cache"),
        trainer=Runtime(progress_bar=False),
        threads=1,
    )
    summary = run(cfg, tmp_path / "run")
    rows = summary["methods"]
    for name in ("mape_so@2req_memory_free", "mape_so@2req_memory_aided"):
        assert name in rows or name in summary["failed"]
        if name in rows:
            assert 0.0 <= rows[name]["avg_gap"] <= 1.0
            assert [r["t"] for r in summary["hparams"][name]["requests"]] == [1, 2]
            assert sum(r["size"] for r in summary["hparams"][name]["requests"]) == 32
    curves = summary["relearn"]
    assert set(curves) == {"original", "rt", "mape_so"}
    assert all(len(c) == 4 for c in curves.values())  # step 0 .. 3
    assert (tmp_path / "run" / "relearn.png").stat().st_size > 0
    # resumed after the first successive row: mape_so (its saved model feeds the relearning attack) and
    # that row are read back, the second row is recomputed, and the numbers are the same
    import shutil

    kept = tmp_path / "again.failed-1"
    shutil.copytree(tmp_path / "run", kept)
    for name in ("mape_so@2req_memory_aided.json", "../metrics.json", "../results.md"):
        (kept / "steps" / name).unlink()
    again = run(cfg, tmp_path / "again", resume=True)
    assert (tmp_path / "again" / "steps" / "mape_so.json").read_bytes() == (
        tmp_path / "run" / "steps" / "mape_so.json"
    ).read_bytes()
    assert list(again["methods"]) == list(rows)
    for name in rows:
        for key in ("forget_acc", "retain_acc", "test_acc", "mia", "avg_gap"):
            assert again["methods"][name][key] == pytest.approx(rows[name][key], abs=1e-9), (name, key)
    for model, curve in curves.items():  # the attack on the model read back from models/mape_so too
        redone = [c["forget_acc"] for c in again["relearn"][model]]
        assert redone == pytest.approx([c["forget_acc"] for c in curve], abs=1e-9), model


def test_successive_config_rejects_bad_values():
    from unlearn_lit.config import SuccessiveConfig

    with pytest.raises(ValueError, match="SO-type"):
        SuccessiveConfig(method="ga")
    with pytest.raises(ValueError, match="memory_free"):
        SuccessiveConfig(modes=["lazy"])


def test_random_unit_mask_follows_mask_kinds_and_sparsity():
    from unlearn_lit.masks.objectives import num_selected
    from unlearn_lit.models import build_backbone
    from unlearn_lit.run import _random_mask
    from unlearn_lit.units import unit_layout

    backbone = build_backbone("tiny_vit", num_labels=3)
    layout, params = unit_layout(backbone), dict(backbone.named_parameters())
    masks = _random_mask(layout, params, MaskConfig(kinds="heads", sparsity=0.5), seed=0)
    for lay in layout.layers:
        for rule in lay.rules["filter"]:
            assert not masks[rule.param].any()  # filters are not maskable: frozen
    # a head is selected iff its W_O (attn.proj) columns are: count selected heads over all layers
    selected = sum(
        int(masks[f"{lay.head_hook}.weight"].any(0).view(-1, layout.head_dim).any(1).sum())
        for lay in layout.layers
    )
    assert selected == num_selected(layout.num_layers * layout.counts["head"], 0.5)


@pytest.mark.timeout(600)
def test_class_forgetting_repairs_each_method_and_reports_it_alone(tmp_path):
    from tests.toys import quick_run_fields

    fields = quick_run_fields(tmp_path)
    data = DataConfig(
        name="digits", forget="class", forget_classes=[3], max_train=400, max_test=150, val_size=100
    )
    cfg = RunConfig(backbone="vit_digits", data=data, recipe_overrides={"epochs": 4}, methods=["so", "ga"],
                    repair={"epochs": 1, "candidates": 3}, save_models=False, **fields)  # fmt: skip
    summary = run(cfg, tmp_path / "run")
    assert not summary["failed"]
    for name in ("so", "ga"):
        row, info = summary["methods"][name], summary["hparams"][name]["info"]
        table = info["repair"]["table"]
        assert [r["step"] for r in table][0] == 0 and row["repair_steps"] in [r["step"] for r in table]
        assert set(row["before_repair"]) == {"forget_acc", "retain_acc", "test_acc", "mia", "avg_gap"}
        assert row["before_repair"]["avg_gap"] is None  # no RT in this run: no Avg.Gap, before or after
        assert row["cost"]["repair_s"] > 0
        if row["repair_steps"] == 0:  # step 0 is the method's own model: the same metrics
            assert row["forget_acc"] == pytest.approx(row["before_repair"]["forget_acc"], abs=1e-12)
    md = (tmp_path / "run" / "results.md").read_text()
    assert "so + repair (" in md and "so alone, before its retain repair: UA" in md
    # repair.when: never reports the methods alone
    plain = dataclasses.replace(cfg, repair={"when": "never"}, methods=["so"])
    summary = run(plain, tmp_path / "plain")
    assert (
        "before_repair" not in summary["methods"]["so"] and "repair" not in summary["hparams"]["so"]["info"]
    )
