"""The runtime (``--trainer.*``) reaches every phase of a run (issue: one runtime for every phase)."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch
import yaml

from unlearn_lit.__main__ import load_config, main
from unlearn_lit.callbacks.runtime_recorder import RuntimeRecorder
from unlearn_lit.run import run
from unlearn_lit.runtime import Runtime

SMALL = {
    "backbone": "vit_digits",
    "backbone_options": {"embed_dim": 32, "depth": 2},
    "data": {"name": "digits", "forget_size": 32, "max_train": 300, "max_test": 150, "val_size": 64},
    "recipe_overrides": {"epochs": 3},
    "mask": {"sparsity": 0.9, "search_rows": 64, "retain_subsample": 128},
    "methods": ["rt", "mape_so", "mape_ga"],
    "method_options": {
        "mape_so": {"fisher_examples": 64, "selection_retain": 64, "selection_val": 64},
        "mape_ga": {"max_steps": 6, "every_n_steps": 3, "lr_retries": 0, "selection_retain": 64},
    },
    "threads": 1,
}


def _small(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "cache_dir": str(tmp_path / "cache")}))
    return config


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_cli_runtime_reaches_every_trainer_phase(tmp_path):
    config = _small(tmp_path)
    flags = ["--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed"]
    cfg = load_config(config, *flags, "--trainer.progress_bar", "false")
    assert cfg.trainer == Runtime(accelerator="cpu", precision="bf16-mixed", progress_bar=False)
    recorder = RuntimeRecorder()
    summary = run(cfg, tmp_path / "run", callbacks=[recorder])
    phases = [s["phase"] for s in recorder.seen]
    # θ* and RT training, phase 1 + search, the masked fine-tuning method: every one got the runtime
    assert phases.count("TrainClassifier") == 2 and "MaskLearning" in phases and "MaskedUnlearning" in phases
    for seen in recorder.seen:
        assert seen == {
            "phase": seen["phase"],
            "precision": "bf16-mixed",
            "accelerator": "CPUAccelerator",
            "device": "cpu",
            "devices": 1,
            "strategy": "SingleDeviceStrategy",
            "progress_bar": False,
            "rank": 0,
        }
    # the one-step method ran on the runtime's device (θ* is kept there) and the config records it
    assert "mape_so" in summary["methods"], summary["failed"]
    assert summary["config"]["trainer"]["precision"] == "bf16-mixed"
    # selection_precision "auto" follows it: every selection forward pass ran under bfloat16 autocast
    assert summary["environment"]["selection_autocast"] == "bfloat16"
    # the logger reached the fine-tuning method: one row of selection measurements per candidate
    with open(tmp_path / "run" / "logs" / "mape_ga" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    chosen = summary["hparams"]["mape_ga"]["candidates"]
    selected = [float(r["select/forget_acc"]) for r in rows if r.get("select/forget_acc")]
    assert selected == pytest.approx([c["forget_acc"] for c in chosen])
    assert sum(bool(r.get("unlearn/train/loss")) for r in rows) == 6  # the training curve: every step


@pytest.mark.slow  # ~70 s: five spawned phases; CI runs it (`.ci/run`)
@pytest.mark.integration
@pytest.mark.timeout(600)
def test_distributed_runtime_runs_every_phase_on_two_processes_and_writes_one_run(tmp_path):
    config = _small(tmp_path)
    flags = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn"]
    cfg = load_config(config, *flags, "--trainer.progress_bar", "false")
    recorder = RuntimeRecorder(tmp_path / "phases.jsonl")  # spawned processes record here
    summary = run(cfg, tmp_path / "run", callbacks=[recorder])
    assert not summary["failed"] and {"mape_so", "mape_ga"} <= summary["methods"].keys(), summary["failed"]
    seen = recorder.read()
    phases = {(s["phase"], s["rank"]) for s in seen}
    for phase in ("TrainClassifier", "MaskLearning", "SOStatistics", "MaskedUnlearning"):
        assert {(phase, 0), (phase, 1)} <= phases, phase  # both processes ran every Lightning phase
    assert all(s["devices"] == 2 and s["strategy"] == "DDPStrategy" for s in seen)
    # one run directory, written once by the main process; nothing partial left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "phases.jsonl", "run", "small.yaml"]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_runtime_validation_names_the_choices(tmp_path, capsys):
    with pytest.raises(ValueError, match="valid choices: auto, cpu, gpu, cuda"):
        Runtime(accelerator="tpu9")
    with pytest.raises(ValueError, match="valid choices: 32-true.*bf16-mixed"):
        Runtime(precision="bf17")
    with pytest.raises(ValueError, match="devices and trainer.num_nodes must be >= 1"):
        Runtime(devices=0)
    kwargs = Runtime(devices=4, strategy="ddp_spawn").trainer_kwargs()
    assert (kwargs["devices"], kwargs["num_nodes"], kwargs["strategy"]) == (4, 1, "ddp_spawn")
    spawn = {"strategy": "ddp_spawn"}
    assert Runtime(devices="2", **spawn).devices == 2 and Runtime(devices=2, **spawn).world_size == 2
    assert (
        Runtime(devices=2, **spawn).distributed and not Runtime(accelerator="cpu", devices="auto").distributed
    )
    # layouts the pipeline cannot run are refused with what to use instead
    for bad, why in (({"strategy": "fsdp"}, "one device"), ({"devices": 2, "strategy": "ddp"}, "re-launch"),
                     ({"devices": 2}, "ddp_spawn"), ({"num_nodes": 2, **spawn}, "rank-aware")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            Runtime(**bad)
    # the CLI rejects a bad value before any work, naming the choices
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    assert (
        main(["run", "--config", str(config), "--trainer.precision", "bf17", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "valid choices" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_a_true_precision_casts_the_original_once_for_every_phase(tmp_path):
    """``bf16-true`` with the user's own float32 θ*: θ* is cast when loaded, so SO sees the same weights
    whether or not phase 1 (a Lightning pass, which converts its module to the precision's dtype in place)
    ran before it. Cast by phase 1 instead, SO would run on float32 weights alone and on bf16 after it."""
    from unlearn_lit.models.save import save_backbone
    from unlearn_lit.run import prepare

    cfg = load_config(_small(tmp_path), "--trainer.accelerator", "cpu", "--trainer.precision", "bf16-true",
                      "--trainer.progress_bar", "false", "--headroom", "false")  # fmt: skip
    _, factory, _ = prepare(cfg)
    save_backbone(factory().eval(), tmp_path / "theta")  # a float32 θ*, as trained elsewhere
    cfg = dataclasses.replace(cfg, original=str(tmp_path / "theta"))
    alone = run(dataclasses.replace(cfg, methods=["so"]), tmp_path / "alone")
    after = run(dataclasses.replace(cfg, methods=["mape_so", "so"]), tmp_path / "after")
    assert not alone["failed"] and not after["failed"]
    assert alone["environment"]["dtype"] == after["environment"]["dtype"] == "bfloat16"
    assert alone["environment"]["precision"] == "bf16-true"
    assert alone["hparams"]["so"]["selected"] == after["hparams"]["so"]["selected"]
    for key in ("forget_acc", "retain_acc", "test_acc", "mia"):
        assert after["methods"]["so"][key] == pytest.approx(alone["methods"]["so"][key], abs=1e-12), key


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "flags, dtype",
    [
        (["--trainer.precision", "64-true"], "float64"),
        (["--recipe_overrides", '{"epochs": 3, "precision": "bf16-true"}'], "bfloat16"),
    ],
    ids=["runtime-64-true", "recipe-bf16-true"],
)
def test_a_rerun_from_the_cache_computes_on_the_same_original(tmp_path, flags, dtype):
    """θ* trained under a *-true precision (the runtime's, or the recipe's alone) and θ* read back from
    the cache have one dtype and the same values, so a rerun repeats the first run's SO to the bit (one
    process, the same code path). Loaded through float32 weights, the cached θ* would lose float64's
    last bits, or stay float32 while the fresh one was bf16."""
    cfg = load_config(_small(tmp_path), "--trainer.accelerator", "cpu", "--trainer.progress_bar", "false",
                      "--headroom", "false", "--methods", "[so]", *flags)  # fmt: skip
    first, rerun = run(cfg, tmp_path / "first"), run(cfg, tmp_path / "rerun")
    assert not first["failed"] and not rerun["failed"]
    assert first["environment"]["dtype"] == rerun["environment"]["dtype"] == dtype
    assert rerun["hparams"]["so"]["selected"] == first["hparams"]["so"]["selected"]
    measured = ("forget_acc", "retain_acc", "test_acc", "mia", "params_updated")
    assert {k: rerun["methods"]["so"][k] for k in measured} == {
        k: first["methods"]["so"][k] for k in measured
    }


def test_a_trainer_phase_refuses_a_model_it_would_convert_in_place():
    from unlearn_lit.models import build_backbone
    from unlearn_lit.phases.mask_learning import MaskConfig, learn_mask

    backbone = build_backbone("tiny_vit", num_labels=10)
    kwargs = Runtime(accelerator="cpu", precision="bf16-true", progress_bar=False).trainer_kwargs()
    with pytest.raises(ValueError, match=r"computes with torch.bfloat16 weights.*place\(model\)"):
        learn_mask(backbone, MaskConfig(), [], [], **kwargs)
    assert next(backbone.parameters()).dtype == torch.float32  # untouched
