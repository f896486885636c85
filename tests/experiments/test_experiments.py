"""experiments/common.py: paper numbers, config overrides, aggregation, CSV / markdown with the paper's
numbers beside ours, and a tiny end-to-end sparsity sweep on a reduced digits config."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))  # the scripts import `common` as a sibling module

import common  # noqa: E402


def test_paper_row_recomputes_avg_gap_from_the_table():
    row = common.paper_row("bert_base", "mnli", "mape_so")
    # |85.94 - 85.16|, |.7969 - .7500| (points), |94.15 - 97.95|, |84.62 - 84.78| -> mean
    assert row["avg_gap"] == pytest.approx((0.78 + 4.69 + 3.80 + 0.16) / 4, abs=1e-9)
    assert row["ua"] == pytest.approx(0.8594) and row["time_s"] == 1274
    assert common.paper_row("bert_base", "mnli", "rt")["avg_gap"] == 0.0
    assert common.paper_row("bert_base", "stsb", "so") is None  # the paper has no STS-B numbers
    assert common.paper_row("bert_base", "sst2", "ft") is None  # SST-2: RT, SO and MAPE-SO only


def test_aggregate_mean_std_skips_nan_and_keeps_failures():
    rows = [
        {"method": "so", "s": 0.9, "ua": 0.90, "failed": ""},
        {"method": "so", "s": 0.9, "ua": 0.94, "failed": ""},
        {"method": "so", "s": 0.9, "ua": math.nan, "failed": "FloatingPointError: nan"},
        {"method": "ga", "s": 0.9, "ua": 0.5, "failed": ""},
    ]
    so, ga = common.aggregate(rows, ("method", "s"), ("ua",))
    assert (so["method"], so["n"]) == ("so", 3)
    assert so["ua"] == pytest.approx(0.92) and so["ua_std"] == pytest.approx(0.0282842712)
    assert so["failed"] == "FloatingPointError: nan"
    assert ga["ua"] == 0.5 and math.isnan(ga["ua_std"])  # one value: no spread


def test_markdown_and_csv_put_the_papers_numbers_beside_ours(tmp_path):
    ours = {"model": "bert_base", "task": "mnli", "method": "mape_so", "ua": 0.8672, "ua_std": 0.0110,
            "mia": 0.8, "avg_gap": 2.5, "failed": ""}  # fmt: skip
    ours.update({f"paper_{k}": v for k, v in common.paper_row("bert_base", "mnli", "mape_so").items()})
    missing = {"model": "bert_base", "task": "stsb", "method": "so", "ua": 0.5, "mia": 0.7, "avg_gap": 1.0,
               "failed": "ValueError: boom"}  # fmt: skip
    table = common.markdown_table([ours, missing], ("model", "task", "method"), ("ua", "mia", "avg_gap"),
                                  paper=("ua", "avg_gap"))  # fmt: skip
    header, rule, first, second = table.strip().splitlines()
    assert header == "| model | task | method | UA % | MIA | Avg.Gap | paper UA % | paper Avg.Gap |"
    assert rule.count("---") == 8
    assert first == "| bert_base | mnli | mape_so | 86.72 ± 1.10 | 0.8000 | 2.50 | 85.94 | 2.36 |"
    assert "| – | –" in second and "(failed: ValueError: boom)" in second  # no paper cell, failure shown

    common.write_report(tmp_path, "t", "Title", "notes", table, [ours, missing], [ours])
    assert (tmp_path / "t.md").read_text().startswith("# Title\n\nnotes\n\n| model |")
    with (tmp_path / "t.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["mape_so", "so"]
    assert float(rows[0]["paper_ua"]) == pytest.approx(0.8594) and rows[1]["paper_ua"] == ""
    assert (tmp_path / "t_runs.csv").is_file()


def test_load_config_merges_overrides_and_keeps_typed_method_options():
    overrides = {
        "methods": ["rt", "mape_so"],
        "mask": {"sparsity": 0.5},
        "method_options": {"so": {"refine": 5}},
    }
    cfg = common.load_config(
        ROOT / "configs/offline/vit_digits.yaml", common.merge(overrides, common.seed_overrides(3))
    )
    # base-method options reach the variant; options of methods not run stay as typed (harmless)
    assert cfg.methods == ["rt", "mape_so"] and cfg.method_options.resolve("mape_so").refine == 5
    assert cfg.method_options.resolve("sa").gamma == pytest.approx(5e-5)  # the config's, kept
    assert (cfg.mask.sparsity, cfg.mask.kinds, cfg.mask.seed) == (0.5, "both", 3)  # merged, not replaced
    assert (cfg.data.seed, cfg.seed, cfg.data.name) == (3, 3, "digits")
    with pytest.raises(ValueError, match="sparsity"):
        common.load_config(ROOT / "configs/offline/vit_digits.yaml", {"mask": {"sparsity": 1.5}})


@pytest.mark.parametrize("config", ["offline/vit_digits.yaml", "quickstart/minilm_tweets.yaml"])
def test_relearn_scripts_attack_config_is_valid_for_the_shipped_configs(config):
    """relearn.py hands the config's FT rate to the attack; FT's rate may be unset (scaled to the model)."""
    import relearn

    cfg = common.load_config(ROOT / "configs" / config)
    lr = relearn.finetune_lr(cfg)
    merged = common.load_config(ROOT / "configs" / config, {"relearn": {"lr": lr, "steps": 2}})
    assert merged.relearn.lr == lr and merged.relearn.steps == 2


def test_resolve_refuses_a_used_output_directory_but_reuses_an_empty_one(tmp_path):
    parser = common.base_parser("doc", "vit_digits.yaml")
    out = tmp_path / "out"
    out.mkdir()  # what a run that failed before its first result leaves
    assert common.resolve(parser.parse_args(["--offline", "--out", str(out)]), "x")[2] == out
    (out / "runs").mkdir()
    with pytest.raises(SystemExit, match="--resume"):
        common.resolve(parser.parse_args(["--offline", "--out", str(out)]), "x")
    assert common.resolve(parser.parse_args(["--offline", "--out", str(out), "--resume"]), "x")[2] == out


@pytest.mark.integration
@pytest.mark.slow  # ~15 s: CI runs it in its slow step
@pytest.mark.timeout(300)
def test_tiny_sparsity_sweep_writes_table_csv_and_plot(tmp_path, monkeypatch):
    import sparsity_sweep

    from tests.crossrun.test_crossrun_report import check_report

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "backbone": "vit_digits", "backbone_options": {"embed_dim": 32, "depth": 2},
        "data": {"name": "digits", "forget_size": 32, "max_train": 300, "max_test": 150, "val_size": 64},
        "recipe": "vit_small", "recipe_overrides": {"epochs": 4},
        "mask": {"sparsity": 0.9, "search_rows": 64, "retain_subsample": 128},
        "methods": ["rt", "so", "mape_so", "random_so"],
        "method_options": {m: {"fisher_examples": 64, "selection_retain": 64, "selection_val": 64}
                           for m in ("so", "mape_so", "random_so")},
        "cache_dir": str(tmp_path / "cache"), "trainer": {"progress_bar": False}, "threads": 1,
    }))  # fmt: skip
    out = tmp_path / "out"
    argv = [
        "sparsity_sweep.py",
        "--config",
        str(config),
        "--seeds",
        "0",
        "--sparsities",
        "0.5",
        "0.9",
        "--out",
        str(out),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    sparsity_sweep.main()

    for name in ("sparsity_sweep.md", "sparsity_sweep.csv", "sparsity_sweep_runs.csv", "sparsity_sweep.png",
                 "report/report.html", "report/figures/overlap.png", "report/figures/sparsity.png"):  # fmt: skip
        assert (out / name).is_file(), name
    # the cross-run report on the two tiny runs (the default run's end-to-end test of it)
    runs = [out / "runs" / "0.5-seed0", out / "runs" / "0.9-seed0"]
    figures = ["mask_0.5-seed0.png", "mask_0.9-seed0.png", "overlap.png", "sparsity.png", "tradeoff.png"]
    md, _ = check_report(out / "report", runs, figures)
    assert "| mask.sparsity=0.5 | mape_so | 1 |" in md
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["0.5-seed0", "0.9-seed0"]
    with (out / "sparsity_sweep.csv").open() as f:
        rows = {(r["method"], r["sparsity"]): r for r in csv.DictReader(f)}
    assert {
        ("mape_so", "0.5"),
        ("random_so", "0.9"),
        ("so", "–"),
        ("rt", "–"),
        ("original", "–"),
    } <= rows.keys()
    assert float(rows[("rt", "–")]["avg_gap"]) == 0.0
    # at a higher sparsity the masked methods update fewer parameters
    assert float(rows[("mape_so", "0.9")]["updated"]) < float(rows[("mape_so", "0.5")]["updated"]) < 1.0
    text = (out / "sparsity_sweep.md").read_text()
    assert "utility holds up to 90% sparsity" in text and "| mape_so | 0.9 |" in text

    with pytest.raises(SystemExit, match="exists"):  # never overwritten silently
        sparsity_sweep.main()
    monkeypatch.setattr(sys, "argv", [*argv, "--resume"])
    sparsity_sweep.main()  # --resume reads the finished runs instead of running them again


def test_paired_differences_count_the_seeds_where_a_is_closer():
    raw = [
        {"method": m, "s": 0.9, "seed": seed, "avg_gap": gap}
        for m, seed, gap in (("a", 0, 1.0), ("b", 0, 2.0), ("a", 1, 3.0), ("b", 1, 2.5), ("a", 2, 1.0))
    ]  # seed 2 has no b: not paired
    (row,) = common.paired(raw, "a", "b", "s")
    assert row["avg_gap"] == pytest.approx(-0.25) and row["lower"] == "1/2"
    assert row["avg_gap_std"] == pytest.approx(math.sqrt(((-1 + 0.25) ** 2 + (0.5 + 0.25) ** 2) / 1))
