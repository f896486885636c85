"""The README's "Your own model and data" commands, run as written (in a scratch directory holding the
repository's configs/ and examples/)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from unlearn_lit.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "HF_HUB_OFFLINE=1 .venv/bin/python -m unlearn_lit "


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own model and data") :]
    section = section[: section.index("\n## ", 3)]
    lines = [line for line in re.findall(r"^(HF_HUB_OFFLINE=1 .*)$", section, re.M)]
    assert lines and all(line.startswith(PREFIX) for line in lines)
    return [shlex.split(line[len(PREFIX) :]) for line in lines]


@pytest.mark.slow  # about 2 minutes: MiniLM fine-tuned on 400 reviews, then two unlearning runs
@pytest.mark.integration
@pytest.mark.timeout(900)
def test_own_model_and_data_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("configs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    commands = readme_commands()
    assert len(commands) == 2
    for argv in commands:
        assert main(argv) == 0
    first, second = (
        json.loads((tmp_path / "runs" / d / "metrics.json").read_text()) for d in ("own_csv", "own_csv_next")
    )
    assert "rt" not in first["methods"] and first["methods"]["ga"]["avg_gap"] is None
    # the second request starts from the GA model the first one saved: its "original" is that model
    for k in ("forget_acc", "retain_acc", "test_acc"):
        assert second["methods"]["original"][k] == pytest.approx(first["methods"]["ga"][k])
    assert sorted(p.name for p in (tmp_path / "runs" / "cache").glob("*.safetensors"))[0].startswith(
        "original-"
    )
    assert len(list((tmp_path / "runs" / "cache").glob("*.safetensors"))) == 1  # θ* once, never RT
