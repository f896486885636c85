"""A character-level tokenizer for tiny random-init causal LMs (fast CPU tests of LLM unlearning).

The tiny models otherwise share MiniLM's 30,522-token vocabulary, whose output projection dominates a
tiny decoder's cost (measured: about 0.5 s of a 0.6 s forward pass of a 64-wide Llama on 16 QA pairs).
With one token per printable ASCII character (plus newline and four special tokens) the projection is
negligible, and no file or network is needed: the vocabulary is built here.
"""

from __future__ import annotations

import functools
from typing import Any

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
CHARS = ("\n", *(chr(i) for i in range(32, 127)))


@functools.lru_cache(maxsize=1)
def char_tokenizer() -> Any:
    """An HF fast tokenizer with one token per character (unknown characters map to ``[UNK]``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate((*SPECIALS, *CHARS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]"
    )
