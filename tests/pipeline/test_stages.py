"""The stages as commands (issue 12): ``train`` → ``mask`` → ``unlearn`` → ``evaluate`` on a CSV of texts and on
an image folder made on the fly, each stage reading what the previous one wrote; a saved unlearned model
reloads with transformers / timm alone and reproduces its recorded forget accuracy."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from tests.data.test_imagefolder import make_folder
from tests.data.test_table import rows, write_csv
from unlearn_lit.__main__ import load_config, main
from unlearn_lit.run import run
from unlearn_lit.rundir import RunInterrupted

TINY = {
    "recipe_overrides": {"epochs": 2},
    "mask": {"sparsity": 0.5, "search_rows": 32, "retain_subsample": 64, "batch_size": 16},
    "method_options": {"ga": {"max_steps": 4, "lr_retries": 0, "selection_retain": 32}},
    "trainer": {"accelerator": "cpu", "progress_bar": False},
    "threads": 1,
}


def text_setup(tmp_path: Path) -> dict:
    write_csv(tmp_path / "reviews.csv", rows(120))
    options = {"path": str(tmp_path / "reviews.csv"), "text": "review", "label": "stars"}
    data = {"name": "csv", "options": options, "forget_size": 16, "val_size": 16, "batch_size": 16}
    return {"backbone": "tiny_bert", "recipe": "vit_small", "data": data}


def image_setup(tmp_path: Path) -> dict:
    make_folder(tmp_path / "images")
    options = {"root": str(tmp_path / "images"), "grayscale": True}
    data = {"name": "imagefolder", "options": options, "forget_size": 16, "val_size": 16}
    return {"backbone": "vit_digits", "backbone_options": {"embed_dim": 32, "depth": 2}, "data": data}


class InterruptAt(L.Callback):
    """Ctrl-C (a real SIGINT to this process) when the ``n``-th Lightning fit starts."""

    def __init__(self, n: int) -> None:
        self.n, self.starts = n, 0

    def on_train_start(self, trainer, pl_module) -> None:
        self.starts += 1
        if self.starts == self.n:
            os.kill(os.getpid(), signal.SIGINT)


def stock_forget_acc(directory: Path, forget: list[dict]) -> float:
    """Forget accuracy of a saved model loaded with transformers or timm alone (no unlearn_lit)."""
    labels = torch.tensor([e["label"] for e in forget])
    if (directory / "tokenizer_config.json").is_file():
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
        enc = AutoTokenizer.from_pretrained(directory)(
            [e["text"] for e in forget], padding=True, return_tensors="pt"
        )
        with torch.no_grad():
            return (model(**enc).logits.argmax(-1) == labels).double().mean().item()
    from safetensors.torch import load_file
    from timm.models.vision_transformer import VisionTransformer

    saved = json.loads((directory / "config.json").read_text())
    net = VisionTransformer(**saved["kwargs"]).eval()
    net.load_state_dict(load_file(str(directory / "model.safetensors")))
    x = torch.stack([e["image"] for e in forget])
    with torch.no_grad():
        return (net((x - saved["mean"]) / saved["std"]).argmax(-1) == labels).double().mean().item()


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize("setup", [text_setup, image_setup], ids=["csv", "imagefolder"])
def test_train_mask_unlearn_evaluate(tmp_path, setup):
    config = tmp_path / "own.yaml"
    config.write_text(yaml.safe_dump({**TINY, **setup(tmp_path), "cache_dir": str(tmp_path / "cache")}))

    def cli(command: str, out: str, *args: str) -> Path:
        assert main([command, "--config", str(config), "--out", str(tmp_path / out), *args]) == 0
        return tmp_path / out

    theta = cli("train", "theta")
    assert logging.getLogger("lightning.pytorch").getEffectiveLevel() >= logging.WARNING  # no banners
    rt = cli("train", "rt", "--retain_only")
    assert (theta / "model" / "model.safetensors").is_file() and (
        rt / "model" / "model.safetensors"
    ).is_file()
    assert json.loads((rt / "metrics.json").read_text())["which"] == "retrain"
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.safetensors"))
    assert cached == ["original", "retrain"]
    mask = cli("mask", "mask", "--original", str(theta))
    assert (mask / "mask.safetensors").is_file() and (mask / "forget_indices.json").is_file()
    unlearned = cli("unlearn", "unlearned", "--original", str(theta), "--mask_file", str(mask),
                    "--methods", "[mape_ga, ga]")  # fmt: skip
    summary = json.loads((unlearned / "metrics.json").read_text())
    assert not summary["failed"] and summary["times_s"]["phase1_and_search"] == 0.0  # the saved mask
    assert "rt" not in summary["methods"] and summary["methods"]["mape_ga"]["avg_gap"] is None
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2  # θ* was loaded, not trained again
    models = [str(unlearned / "models" / m) for m in ("mape_ga", "ga")]
    evaluated = cli(
        "evaluate", "evaluated", "--original", str(theta), "--rt", str(rt), "--models", json.dumps(models)
    )
    table = json.loads((evaluated / "metrics.json").read_text())["methods"]
    assert list(table) == ["original", "rt", "mape_ga", "ga"] and table["rt"]["avg_gap"] == 0.0
    trained = json.loads((theta / "metrics.json").read_text())["metrics"]
    assert table["original"]["metrics"] == pytest.approx(trained, rel=1e-6, abs=1e-9)
    for method in ("mape_ga", "ga"):  # the same numbers as where they were unlearned, Avg.Gap added
        for key in ("forget_acc", "retain_acc", "test_acc", "mia"):
            assert table[method][key] == pytest.approx(summary["methods"][method][key], abs=1e-9), (
                method,
                key,
            )
        assert table[method]["params_updated"] == summary["methods"][method]["params_updated"]
        assert table[method]["avg_gap"] is not None
    bare = json.loads((cli("evaluate", "bare", "--models", json.dumps(models)) / "metrics.json").read_text())
    assert list(bare["methods"]) == ["mape_ga", "ga"] and bare["methods"]["ga"]["avg_gap"] is None  # no RT
    for method, row in bare["methods"].items():  # without θ*, the parameters updated come from the record
        assert row["params_updated"] == summary["methods"][method]["params_updated"]
    # the stock library alone reproduces the recorded forget accuracy of a saved unlearned model
    record = json.loads((unlearned / "models" / "mape_ga" / "unlearning_record.json").read_text())
    forget = list(load_config(config).data.build().forget)  # the same seeded split in every stage
    acc = stock_forget_acc(unlearned / "models" / "mape_ga", forget)
    assert acc == pytest.approx(record["metrics"]["forget_acc"], abs=1e-9)
    # Ctrl-C during the second method; --resume keeps the first (and the saved mask) and ends the same
    cfg = load_config(
        config, "--original", str(theta), "--mask_file", str(mask), "--methods", "[mape_ga, ga]"
    )
    with pytest.raises(RunInterrupted):
        run(cfg, tmp_path / "again", callbacks=[InterruptAt(2)])
    (kept,) = tmp_path.glob("again.failed-*")
    first = (kept / "steps" / "mape_ga.json").stat().st_mtime_ns
    assert not (kept / "steps" / "ga.json").exists()
    assert cli("unlearn", "again", "--original", str(theta), "--mask_file", str(mask),
               "--methods", "[mape_ga, ga]", "--resume") == tmp_path / "again"  # fmt: skip
    assert (tmp_path / "again" / "steps" / "mape_ga.json").stat().st_mtime_ns == first
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())["methods"]
    for method in ("mape_ga", "ga"):
        for key in ("forget_acc", "retain_acc", "test_acc", "mia", "params_updated"):
            assert again[method][key] == pytest.approx(summary["methods"][method][key], abs=1e-9), (
                method,
                key,
            )
    # a model unlearned on another forget set is refused (the split follows the config's data fields)
    assert main(["evaluate", "--config", str(config), "--data.seed", "1", "--models", json.dumps(models),
                 "--out", str(tmp_path / "other")]) == 2  # fmt: skip
    assert not (tmp_path / "other").exists()


def test_stages_refuse_what_does_not_fit(tmp_path, capsys):
    config = tmp_path / "own.yaml"
    config.write_text(yaml.safe_dump({**TINY, **text_setup(tmp_path), "cache_dir": str(tmp_path / "cache")}))
    base = ["--config", str(config), "--out", str(tmp_path / "x")]
    assert main(["unlearn", *base, "--methods", "[rt, ga]"]) == 2
    assert "RT is `train --retain_only`" in capsys.readouterr().err
    assert main(["train", *base, "--original", str(config)]) == 2
    assert "--original is what later stages load" in capsys.readouterr().err
    assert main(["evaluate", *base]) == 2  # --models is required
    assert "models" in capsys.readouterr().err


def test_readme_stage_commands_parse_as_written():
    """The README's stage commands name real options (each is parsed, not run: the test above runs them)."""
    import re
    import shlex

    from unlearn_lit.__main__ import command_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### One stage at a time") :]
    lines = re.findall(
        r"^python -m unlearn_lit (\w+) (.*?)(?:\s+#.*)?$", section[: section.index("\n## ")], re.M
    )
    assert [c for c, _ in lines] == ["train", "train", "mask", "unlearn", "evaluate"]
    root = Path(__file__).resolve().parents[2]
    for command, args in lines:
        argv = [a.replace("configs/", f"{root}/configs/") for a in shlex.split(args)]
        parsed = command_parser(command).parse_args(argv)
        assert parsed.out.startswith("runs/"), command
