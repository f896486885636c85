"""experiments/bench_methods.py: derived numbers, paired ratios and targets on fixed summaries."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))  # scripts import `common`

import bench_methods as bm  # noqa: E402


def _result(ua, gap, time_s, updated=100, total=1000):
    return {
        "forget_acc": ua,
        "retain_acc": 0.99,
        "test_acc": 0.9,
        "mia": 0.8,
        "avg_gap": gap,
        "time_s": time_s,
        "params_updated": updated,
        "params_total": total,
    }


def _info(fisher_s, buffer_total):
    per = buffer_total // 3
    return {
        "info": {
            "time_fisher_s": fisher_s,
            "time_forget_grad_s": 0.5,
            "time_selection_s": 1.0,
            "buffer_bytes": {"fisher": per, "grad": per, "step": per, "total": buffer_total},
        }
    }


def _summary(rt_s, mape_gap, so_gap):
    """A run with phase 1 = 2 s: SO 10 s (Fisher 8), MAPE-SO 2 + 6 s (Fisher 4), SalUn kept θ*."""
    return {
        "methods": {
            "original": _result(1.0, 0.05, 0.0, updated=0),
            "rt": _result(0.9, 0.0, rt_s, updated=1000),
            "so": _result(0.92, so_gap, 10.0, updated=1000),
            "mape_so": _result(0.93, mape_gap, 8.0),
            "random_so": _result(0.95, 0.04, 5.0),
            "salun": _result(1.0, 0.05, 3.0, updated=0),
        },
        "failed": {},
        "hparams": {
            "so": _info(8.0, 3000),
            "mape_so": _info(4.0, 300),
            "random_so": _info(2.0, 300),
            "salun": {"info": {}},
        },
        "times_s": {"original": 30.0, "rt": rt_s, "phase1_and_search": 2.0},
    }


def _two_seeds():
    return bm.run_rows(_summary(40.0, 0.02, 0.03), seed=0) + bm.run_rows(_summary(20.0, 0.04, 0.03), seed=1)


def test_run_rows_derive_time_ratios_breakdown_and_buffers():
    rows = {r["method"]: r for r in bm.run_rows(_summary(rt_s=40.0, mape_gap=0.02, so_gap=0.03))}
    assert rows["mape_so"]["time_rel"] == pytest.approx(0.2) and rows["rt"]["time_rel"] == 1.0
    assert math.isnan(rows["original"]["time_s"])
    assert rows["mape_so"]["phase1_s"] == 2.0 and rows["random_so"]["phase1_s"] == 0.0
    assert rows["mape_so"]["update_s"] == pytest.approx(6.0)
    assert rows["mape_so"]["rest_s"] == pytest.approx(6.0 - 4.0 - 0.5 - 1.0)
    assert rows["mape_so"]["avg_gap"] == pytest.approx(2.0) and rows["mape_so"]["updated"] == 0.1
    assert rows["mape_so"]["below_original"] == 1.0 and rows["salun"]["below_original"] == 0.0
    assert rows["salun"]["unchanged"] == 1.0 and "fisher_s" not in rows["salun"]


def test_comparisons_pair_mape_so_with_so_and_random_seed_by_seed():
    comp = bm.comparison_rows(_two_seeds())
    values = {}
    for c in comp:
        values.setdefault(c["comparison"], []).append(c["value"])
    assert values["update buffers / SO's"] == pytest.approx([0.1, 0.1])
    assert values["update time without phase 1 / SO's"] == pytest.approx([0.6, 0.6])
    assert values["total time with phase 1 / SO's"] == pytest.approx([0.8, 0.8])
    assert values["Avg.Gap − SO's (points)"] == pytest.approx([-1.0, 1.0])
    assert values["Avg.Gap − random_so's (points)"] == pytest.approx([-2.0, 0.0])


def test_render_reports_mean_std_each_target_and_the_failing_methods():
    rows = _two_seeds() + [{"setup": "toy", "seed": 1, "method": "ga", "failed": "UnlearningFailed: NaN"}]
    text = bm.render_setup("toy", rows, [0, 1])
    assert "MAPE-SO time / RT ≤ 0.1: 0.300 ± 0.141 — NOT met" in text  # sample std of 0.2, 0.4
    assert "update memory / SO's ≤ 0.67: 0.100 ± 0.000 — met" in text
    assert "not below on salun (2/2 seeds)" in text and "kept θ* unchanged" in text
    assert "| 1/2 seeds |" in text and "Failed: ga (seed 1" in text


def test_cost_parts_in_units_u_and_the_issue_14_targets():
    summary = _summary(40.0, 0.02, 0.03)
    parts = {"phase1_s": 2.0, "fisher_s": 1.0, "forget_grad_s": 0.5, "selection_s": 3.0, "update_s": 0.1,
             "steps_s": 0.0, "repair_s": 0.0, "headroom_s": 50.0}  # fmt: skip
    summary["methods"]["mape_so"]["cost"] = parts
    summary["methods"]["ga"] = {**_result(0.9, 0.01, 6.0), "cost": {"selection_s": 1.0, "steps_s": 5.0}}
    rows = {r["method"]: r for r in bm.run_rows(summary, unit_s=4.0)}
    mape = rows["mape_so"]
    assert mape["U_fisher_s"] == pytest.approx(0.25) and mape["U_selection_s"] == pytest.approx(0.75)
    assert mape["U_total"] == pytest.approx(6.6 / 4.0)  # the headroom analysis is not the method's cost
    assert mape["selection_per_phase1"] == pytest.approx(1.5)
    assert rows["ga"]["selection_per_steps"] == pytest.approx(0.2) and "U_total" not in rows["so"]
    text = bm.render_setup("toy", [{**r, "unit_s": 4.0} for r in rows.values()], [0])
    assert "MAPE-SO total ≤ 1.0 U: 1.650 — NOT met" in text
    assert "MAPE-SO selection ≤ 1 × phase 1: 1.500 — NOT met" in text
    assert "ga selection ≤ 0.25 × its steps: 0.200 — met" in text
    assert "U = 4.00 s" in text


def test_unit_cost_times_a_plain_pass_over_the_setup_examples():
    fields = {"backbone": "vit_digits", "data": {"name": "digits", "forget": "random", "forget_size": 16},
              "threads": 1, "methods": ["ga"]}  # fmt: skip
    u = bm.unit_cost(fields, n=64, repeats=1)
    assert 0 < u < 60


def test_set_overrides_reach_every_setups_run_config_and_bad_ones_are_refused(tmp_path, capsys):
    from unlearn_lit.config import RunConfig, from_dict

    args = bm.parse_args(["--setups", "minilm_tweets", "--out", str(tmp_path), "--methods", "rt", "so",
                          "--set", "method_options.so.fisher_examples=256", "--set", "method_options.so.batch_size=8"])  # fmt: skip
    fields = bm.run_fields("minilm_tweets", 0, args)
    assert fields["method_options"]["so"] == {"fisher": "per_batch", "fisher_examples": 256, "batch_size": 8}
    assert fields["methods"] == ["rt", "so"]  # the rest of the setup's config is kept
    so = from_dict(RunConfig, fields).method_options.resolve("mape_so")
    assert (so.fisher_examples, so.batch_size, so.fisher) == (256, 8, "per_batch")
    with pytest.raises(SystemExit):
        bm.parse_args(["--out", str(tmp_path), "--set", "no_equals_sign"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
