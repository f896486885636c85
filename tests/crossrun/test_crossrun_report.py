"""The cross-run report on two real tiny runs: figures, report.md and a self-contained report.html whose
images decode and whose tables hold the runs' numbers; settings, confidence intervals, no torch."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from tests.pipeline.test_runtime import SMALL
from unlearn_lit.__main__ import load_config, main
from unlearn_lit.crossrun.report import fmt
from unlearn_lit.crossrun.runs import MASKED_PREFIXES, aggregate, mean_ci, settings, short_labels
from unlearn_lit.masks.overlap import jaccard
from unlearn_lit.run import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    """Two tiny ViT runs on digits that differ in their seeds (forget split, methods, mask subsample)."""
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for seed in (0, 1):
        fields = {**SMALL, "recipe_overrides": {"epochs": 15}, "seed": seed, "cache_dir": str(root / "cache"),
                  "data": {**SMALL["data"], "seed": seed}, "mask": {**SMALL["mask"], "seed": seed},
                  "methods": ["rt", "mape_so"], "save_models": seed == 0}  # fmt: skip
        (root / f"seed{seed}.yaml").write_text(yaml.safe_dump(fields))
        cfg = load_config(
            root / f"seed{seed}.yaml", "--trainer.accelerator", "cpu", "--trainer.progress_bar", "false"
        )
        run(cfg, root / f"seed{seed}")
        dirs.append(root / f"seed{seed}")
    return dirs


def embedded_pngs(html: str) -> list[bytes]:
    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [base64.b64decode(data) for data in found]


def check_report(out: Path, run_dirs: list[Path], figures: list[str]) -> tuple[str, str]:
    """The report in ``out`` has exactly ``figures``, a report.html whose embedded images decode and
    whose tables, like report.md's, hold every run's numbers as the run recorded them; the overlap
    table holds the Jaccard overlap of the first two runs' saved filter masks. Returns (md, html)."""
    from matplotlib.image import imread

    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(figures)
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    pngs = embedded_pngs(html)
    assert len(pngs) == len(figures) and 'src="figures/' not in html  # self-contained
    for png in pngs:
        assert imread(io.BytesIO(png), format="png").shape[2] in (3, 4)  # decodes to an RGB(A) image
    assert all(f"](figures/{name})" in md for name in figures)
    for path in run_dirs:
        for method, r in json.loads((path / "metrics.json").read_text())["methods"].items():
            cells = [path.name, method, fmt(r["forget_acc"], scale=100), fmt(r["retain_acc"], scale=100),
                     fmt(r["test_acc"], scale=100), fmt(r["mia"], digits=4)]  # fmt: skip
            assert "| " + " | ".join(cells) + " |" in md, (path.name, method)
            assert "".join(f"<td>{c}</td>" for c in cells) in html, (path.name, method)
    masks = [load_file(p / "mask" / "mask.safetensors") for p in run_dirs[:2]]
    overlap = fmt(jaccard(masks[0]["filter"], masks[1]["filter"]), digits=3)
    assert f"| filter | {run_dirs[0].name} | {run_dirs[1].name} | {overlap} |" in md
    assert "lightning" in html and f"<summary>{run_dirs[0].name}</summary>" in html  # config, versions
    return md, html


@pytest.mark.slow  # two real runs (about 25 s); the default run checks the report through the sweep test
@pytest.mark.integration
@pytest.mark.timeout(300)
def test_report_command_on_two_seeds(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(two_runs[0].parent), "--out", str(out)]) == 0  # a folder of runs
    assert str(out / "report.html") in capsys.readouterr().out
    md, html = check_report(
        out, two_runs, ["mask_seed0.png", "mask_seed1.png", "overlap.png", "tradeoff.png"]
    )
    # the seeds are one setting: its mean ± CI of the methods' UA
    ua = [json.loads((p / "metrics.json").read_text())["methods"]["mape_so"]["forget_acc"] for p in two_runs]
    mean, half, n = mean_ci(ua)
    assert n == 2 and f"| all runs | mape_so | 2 | {fmt(mean, half, 100)} |" in md
    # the saved models' folder of the run that kept them
    link = re.search(r'<a href="([^"]+)">mape_so</a>', html).group(1)
    assert (out / link / "mape_so").is_dir()
    assert main(["report", str(two_runs[1]), "--out", str(out), "--force"]) == 0  # replaces it
    assert "1 run(s) with a mask: nothing to compare" in (out / "report.md").read_text()


def test_report_refuses_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert "not a run directory (no metrics.json)" in capsys.readouterr().err
    (tmp_path / "r").mkdir()
    with pytest.raises(SystemExit):  # checked before any run is read
        main(["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert "exists; choose another --out or pass --force" in capsys.readouterr().err


def test_report_and_cli_parsing_import_no_torch(tmp_path):
    code = ("import sys; import unlearn_lit.__main__, unlearn_lit.crossrun.report, unlearn_lit.viz.masks; "
            "assert 'torch' not in sys.modules, 'torch imported'")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_settings_name_what_differs_besides_seeds():
    base = {"backbone": "vit_digits", "seed": 0, "data": {"seed": 0, "name": "digits"}, "mask": {"sparsity": 0.9},
            "methods": ["rt"], "cache_dir": "a"}  # fmt: skip
    other_seed = {
        **base,
        "seed": 1,
        "data": {"seed": 1, "name": "digits"},
        "methods": ["rt", "so"],
        "cache_dir": "b",
    }
    sparser = {**base, "mask": {"sparsity": 0.99}}
    assert settings([base, other_seed]) == ["all runs", "all runs"]
    assert settings([base, other_seed, sparser]) == ["mask.sparsity=0.9"] * 2 + ["mask.sparsity=0.99"]
    assert settings([{**base, "backbone_options": {}}, {**base, "backbone_options": {"depth": 2}}]) == [
        "backbone_options.depth=None",
        "backbone_options.depth=2",
    ]  # an empty group reads as absent
    assert short_labels(["a=1", "a=2", "a=1"]) == ["a=1", "a=2", "a=1"]
    assert short_labels(["x" * 60, "y", "x" * 60]) == ["S1", "S2", "S1"]


def test_mean_ci_is_students_t_interval():
    mean, half, n = mean_ci([1.0, 2.0, 3.0, None, math.nan])
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean_ci([5.0])[:2] == (5.0, pytest.approx(math.nan, nan_ok=True))
    rows = [{"setting": "s", "method": "so", "seed": s, "sparsity": None, "ua": u, "failed": ""}
            for s, u in ((0, 0.5), (1, 0.7))]  # fmt: skip
    (group,) = aggregate(rows)
    assert group["n"] == 2 and group["seeds"] == [0, 1] and group["ua"] == pytest.approx(0.6)
    assert group["ua_ci"] == pytest.approx(12.7062 * np.std([0.5, 0.7], ddof=1) / math.sqrt(2), rel=1e-4)


def test_masked_prefixes_match_the_mask_sources():
    from unlearn_lit.methods import MASK_SOURCES

    assert MASKED_PREFIXES == tuple(f"{s}_" for s in MASK_SOURCES if s != "none")
