"""Typed method options (issue: typed method configs): base-method groups, variant overrides, validation."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from unlearn_lit.__main__ import build_parser, load_config, run_config
from unlearn_lit.config import MethodOptions, RunConfig
from unlearn_lit.methods import METHODS
from unlearn_lit.methods.so import SOConfig
from unlearn_lit.typed import matches

ROOT = Path(__file__).resolve().parents[2]


def test_base_options_apply_to_every_variant_and_overrides_to_one():
    opts = MethodOptions(so={"tau": 0.5, "refine": 4}, mape_so={"refine": 7, "rule": {"z": 1.0}})
    assert isinstance(opts.so, SOConfig) and opts.resolve("so").refine == 4
    mape, rand = opts.resolve("mape_so"), opts.resolve("random_so")
    assert (mape.tau, mape.refine, mape.rule.z, mape.rule.guard) == (0.5, 7, 1.0, "noise")
    assert (rand.tau, rand.refine, rand.rule.z) == (0.5, 4, 2.0)
    # the base config is not modified by a variant's override
    assert opts.so.refine == 4 and opts.so.rule.z == 2.0


def test_wrong_types_and_unknown_fields_name_the_path():
    with pytest.raises(ValueError, match=r"method_options\.mape_so\.tau: expected float, got 'abc'"):
        MethodOptions(mape_so={"tau": "abc"})
    with pytest.raises(
        ValueError,
        match=r"unknown method_options\.mape_ga\.optim option 'lrr'; did you mean 'lr'\? valid: betas, lr",
    ):
        MethodOptions(mape_ga={"optim": {"lrr": 1e-3}})
    with pytest.raises(ValueError, match=r"method_options\.ga\.max_steps: expected"):
        RunConfig(method_options={"ga": {"max_steps": "ten"}})
    assert matches(3, float) and not matches(True, int) and matches(None, int | None)
    assert matches([1, 2.5], list[float]) and not matches(["a"], list[float])


def test_oracle_selection_without_rt_fails_before_any_work():
    with pytest.raises(ValueError, match="needs `rt` in methods"):
        RunConfig(methods=["so"], method_options={"so": {"select": "oracle"}})
    RunConfig(methods=["rt", "so"], method_options={"so": {"select": "oracle"}})  # valid


def test_help_lists_every_methods_options():
    text = build_parser()._subcommands_action.choices["run"].format_help()
    for name in METHODS.names():
        assert f"--method_options.{name}." in text, name
    assert "--trainer.precision" in text and "--method_options.so.tau" in text


def test_readme_run_example_parses_as_written():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## A run") :]
    command = re.search(r"python -m unlearn_lit run (--config .*?)\n(?!\s)", block.replace("\\\n", " "), re.S)
    args = shlex.split(command.group(1))
    parser = build_parser()
    cfg = run_config(parser, parser.parse_args(["run", *args]))
    assert cfg.mask.sparsity == 0.8 and cfg.methods == ["rt", "so", "mape_so"]
    # a shipped config with per-variant options parses the same way
    assert load_config(ROOT / "configs/quickstart/vit_digits.yaml").method_options.resolve("mape_so")
