"""Fault tests (issue 12, outputs that last): a run killed after two methods keeps them, ``--resume``
recomputes only the rest and ends with the metrics of an uninterrupted run.

The killed runs are real processes (``python -m unlearn_lit run``) stopped by SIGINT (Ctrl-C) or SIGKILL
the moment the second method's record appears; the resumed runs go through the same CLI in-process.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pipeline.test_runtime import SMALL
from unlearn_lit.__main__ import main
from unlearn_lit.rundir import RunDirectory

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["rt", "so", "ga", "mape_so", "mape_ga"]
# the record's measurements of time and memory differ from run to run; everything else must not
VOLATILE = re.compile(r"time|seconds|_s$|budget|peak|memory|environment")


def config(tmp_path: Path) -> Path:
    """A tiny ViT on digits that learns something in seconds (so the methods' rows differ)."""
    fields = {
        **SMALL,
        "recipe_overrides": {"epochs": 12, "batch_size": 32},
        "methods": METHODS,
        "method_options": {
            "so": {"fisher_examples": 64, "selection_retain": 64, "selection_val": 64},
            "ga": {"max_steps": 12, "every_n_steps": 4, "lr_retries": 0, "selection_retain": 64},
        },
        "cache_dir": str(tmp_path / "cache"),
        "trainer": {"accelerator": "cpu", "progress_bar": False},
    }
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (it also fills the θ*/RT cache the killed runs read)."""
    tmp_path = tmp_path_factory.mktemp("resume")
    path = config(tmp_path)
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "reference")]) == 0
    return tmp_path, path, json.loads((tmp_path / "reference" / "metrics.json").read_text())


def kill_after(cfg: Path, out: Path, sig: int, steps: set[str]) -> subprocess.CompletedProcess:
    """Runs the CLI in a child process and sends ``sig`` once ``steps`` are recorded; waits for it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "unlearn_lit", "run", "--config", str(cfg), "--out", str(out)]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        recorded = {p.stem for p in out.parent.glob(f".{out.name}.partial-*/steps/*.json")}
        if steps <= recorded:
            child.send_signal(sig)
            break
        time.sleep(0.02)
    stdout, stderr = child.communicate(timeout=120)
    assert steps <= recorded, f"the run ended before {steps} were recorded:\n{stderr[-3000:]}"
    return subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every recorded step and saved model file: modification time and content."""
    files = [*directory.glob("steps/*.json"), *directory.glob("models/*/*")]
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def assert_same(a, b, where=""):
    """Equal, floats within float-arithmetic tolerance; measurements of time and memory skipped."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            if not VOLATILE.search(str(key)):
                assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert (math.isnan(a) and math.isnan(b)) or b == pytest.approx(a, rel=1e-6, abs=1e-9), where
    else:
        assert a == b, where


@pytest.mark.slow  # about 40 s each on 2 busy cores (a child process imports torch); the reference 20 s
@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_killed_run_resumes_and_matches_an_uninterrupted_run(reference, sig, capsys):
    tmp_path, cfg, expected = reference
    out = tmp_path / f"killed_{sig.name}"
    child = kill_after(cfg, out, sig, {"so", "ga"})
    assert not out.exists()  # nothing half-written where the results go
    assert "TPU available" not in child.stderr and "Tip" not in child.stderr  # no Lightning banners
    if sig == signal.SIGINT:  # Ctrl-C: one line, the directory kept as failed
        assert child.returncode == 130, child.stderr[-3000:]
        assert child.stderr.strip().splitlines()[-1].startswith("interrupted; finished steps kept in ")
        assert "Traceback" not in child.stderr
        (kept,) = tmp_path.glob(f"{out.name}.failed-*")
    else:
        assert child.returncode == -signal.SIGKILL
        (kept,) = tmp_path.glob(f".{out.name}.partial-*")
    before = snapshot(kept)
    finished = {Path(k).stem for k in before if k.startswith("steps/")}
    assert {"so", "ga", "phase1"} <= finished and "mape_ga" not in finished

    assert main(["run", "--config", str(cfg), "--out", str(out), "--resume"]) == 0
    after = snapshot(out)
    recomputed = {Path(k).stem for k, v in after.items() if k.startswith("steps/") and before.get(k) != v}
    assert recomputed == ({*METHODS[1:], "phase1"} - finished)  # only the rest ran
    for name in ("so", "ga"):  # finished models and records were kept as they were, not rewritten
        assert all(after[k] == v for k, v in before.items() if k.startswith(f"models/{name}/"))
    assert not list(tmp_path.glob(f"*{out.name}.*"))  # no partial or failed directory left beside it
    resumed = json.loads((out / "metrics.json").read_text())
    assert list(resumed["methods"]) == list(expected["methods"]) and not resumed["failed"]
    assert_same(expected["methods"], resumed["methods"], "methods")
    assert_same(expected["hparams"], resumed["hparams"], "hparams")
    # a finished run cannot be resumed again
    capsys.readouterr()
    assert main(["run", "--config", str(cfg), "--out", str(out), "--resume"]) == 2
    assert "exists" in capsys.readouterr().err


def test_run_directory_resumes_only_its_own_config_and_dead_runs(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        RunDirectory(out, {"a": 1}, resume=True)
    live = RunDirectory(out, {"a": 1, "b": {"c": 2}})
    live.record("ga", {"row": {"forget_acc": 0.5}})
    with pytest.raises(FileNotFoundError, match="belongs to a running process"):
        RunDirectory(out, {"a": 1, "b": {"c": 2}}, resume=True)  # locked: its process is alive
    kept = live.fail()
    assert kept.name.startswith("run.failed-") and not out.exists()
    with pytest.raises(ValueError, match=r"another configuration \(b.c: 2 then, 3 now\)"):
        RunDirectory(out, {"a": 1, "b": {"c": 3}}, resume=True)
    again = RunDirectory(out, {"a": 1, "b": {"c": 2}}, resume=True)
    assert again.resumed_from == kept and not kept.exists()
    assert again.done("ga") == {"row": {"forget_acc": 0.5}} and again.done("so") is None
    assert again.finish() == out and sorted(p.name for p in out.iterdir()) == ["config.json", "steps"]
    with pytest.raises(FileExistsError, match="finished"):
        RunDirectory(out, {"a": 1, "b": {"c": 2}}, resume=True)
