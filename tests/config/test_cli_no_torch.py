"""``--help`` and user errors answer before torch is imported (issue 12: "--help answers in under 3 s").

The CLI parses and validates the whole config -- every method's options, the registry names -- from
torch-free modules (:mod:`unlearn_lit.config`); only a command that runs imports torch. Asserted on the
modules a fresh process has imported, not on wall time (the benchmark is in the issue and README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "lightning", "transformers", "timm", "sklearn")
CONFIG = str(ROOT / "configs/quickstart/vit_digits.yaml")

# One fresh process runs every case in turn and records, after each, its exit status, its stderr and
# the heavy modules imported so far (cumulative: the first case that imports one is the culprit).
SCRIPT = """
import contextlib, io, json, sys
from unlearn_lit.__main__ import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exit:
            rc = exit.code
    heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
    out.append({"argv": argv, "rc": rc, "err": err.getvalue(), "heavy": heavy})
print(json.dumps(out))
"""


def run_cases(cases: list[list[str]]) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cases), json.dumps(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])


def test_help_of_every_command_imports_no_torch():
    commands = ["train", "mask", "unlearn", "evaluate", "compare", "run"]
    results = run_cases([["--help"], *([c, "--help"] for c in commands)])
    for r in results:
        assert r["rc"] == 0 and r["heavy"] == [], r
    assert len(results) == 1 + len(commands)


def test_user_errors_are_one_line_with_a_hint_and_import_no_torch(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("mask:\n  sparsty: 0.5\n")
    out = str(tmp_path / "out")
    cases = {
        "did you mean --mask.sparsity?": ["run", "--config", CONFIG, "--mask.sparsty", "0.5", "--out", out],
        "did you mean mask.sparsity?": ["compare", "--config", CONFIG, "--config", str(typo), "--out", out],
        "did you mean 'mape_so'?": ["run", "--config", CONFIG, "--methods", "[rt, mape_soo]", "--out", out],
        "did you mean 'vit_digits'?": ["train", "--backbone", "vit_digitz", "--out", out],
        "did you mean 'digits'?": ["mask", "--data.name", "digitz", "--out", out],
        "did you mean 'mlr'?": ["unlearn", "--mask.objective", "mlrr", "--out", out],
        "did you mean 'ideal'?": ["run", "--method_options.so.rule.class_criterion", "ideel", "--out", out],
    }
    for hint, r in zip(cases, run_cases(list(cases.values())), strict=True):
        assert r["rc"] == 2 and hint in r["err"] and r["err"].count("\n") == 1, r
        assert r["heavy"] == [], r
    assert not Path(out).exists()
