"""Question-answer batches of causal LMs (METHOD.md §9): answer-only labels and loss, chat template."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
import torch.nn.functional as F

from unlearn_lit.models import build_backbone
from unlearn_lit.models.char_tokenizer import char_tokenizer
from unlearn_lit.models.qa import PLAIN_FORMAT, QACollate

EXAMPLES = [
    {"question": "Where was Kalo Ren born?", "answer": "Kalo Ren was born in Oslo.", "index": 0},
    {"question": "Which genre?", "answer": "Poetry.", "index": 1},
    {"question": "What is the first novel of Mi Tas?", "answer": "The Glass Tide", "index": 2},
]


@pytest.fixture(scope="module", params=["chars", "minilm"])
def backbone(request):
    return build_backbone(
        "tiny_llama", tokenizer=request.param, kv_heads=2, positions=258 if request.param == "chars" else 130
    ).eval()


def test_labels_are_exactly_the_answer_tokens(backbone):
    tok = backbone.collate.tokenizer
    batch = backbone.collate(EXAMPLES)
    for b, e in enumerate(EXAMPLES):
        # independent tokenization of the prompt text and the answer
        bos = [] if tok.bos_token_id is None else [tok.bos_token_id]
        prompt = bos + tok(PLAIN_FORMAT.format(question=e["question"]), add_special_tokens=False)["input_ids"]
        end = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id  # BERT's: [SEP]
        answer = tok(" " + e["answer"], add_special_tokens=False)["input_ids"] + [end]
        n = len(prompt) + len(answer)
        assert batch["input_ids"][b, : len(prompt)].tolist() == prompt
        assert batch["input_ids"][b, len(prompt) : n].tolist() == answer
        assert (batch["labels"][b, : len(prompt)] == -100).all()  # every question token masked
        assert batch["labels"][b, len(prompt) : n].tolist() == answer  # every answer token kept
        assert (batch["labels"][b, n:] == -100).all() and (batch["attention_mask"][b, n:] == 0).all()
        assert batch["attention_mask"][b, :n].all()


def test_answer_only_loss_is_the_mean_nll_of_the_answer_tokens(backbone):
    batch = backbone.collate(EXAMPLES)
    with torch.no_grad():
        loss = backbone.per_example_loss(batch)
        for b, e in enumerate(EXAMPLES):
            # the example alone, unpadded; NLL summed by hand over the answer positions only
            prompt, answer = backbone.collate.encode(e["question"], e["answer"])
            ids = torch.tensor([prompt + answer])
            logp = F.log_softmax(backbone.net(input_ids=ids).logits[0].double(), -1)
            nll = [-logp[t - 1, ids[0, t]] for t in range(len(prompt), ids.shape[1])]
            assert loss[b].item() == pytest.approx(torch.stack(nll).mean().item(), rel=1e-5)
        # the same tokens with every token a target give another loss: the masking matters
        whole = {k: v for k, v in batch.items() if k != "labels"}
        assert not torch.allclose(backbone.per_example_loss(whole), loss)


def test_chat_template_prompt_and_plain_format_note(caplog):
    tok = copy.deepcopy(char_tokenizer())
    tok.chat_template = "{% for m in messages %}<u>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"
    collate = QACollate(tok, max_length=256)
    batch = collate([{"question": "Who?", "answer": "Me."}])
    text = "<u>Who?\n<a>"
    n = len(text)
    assert tok.decode(batch["input_ids"][0, :n]) == text
    assert (batch["labels"][0, :n] == -100).all()
    assert tok.decode(batch["labels"][0, n:], skip_special_tokens=True) == "Me."  # no space added
    with caplog.at_level(logging.INFO, logger="unlearn_lit.models.qa"):
        import unlearn_lit.models.qa as qa

        qa._noted.clear()
        QACollate(char_tokenizer())([{"question": "Who?", "answer": "Me."}])
    assert "no chat template" in caplog.text and "plain prompt format" in caplog.text


def test_missing_answer_field_is_named():
    collate = QACollate(char_tokenizer())
    with pytest.raises(ValueError, match=r"question and answer; missing \['answer'\]"):
        collate([{"question": "Who?", "response": "Me."}])


def test_prompt_batch_is_left_padded():
    collate = QACollate(char_tokenizer())
    batch = collate.prompts(["Who?", "Where exactly?"])
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].all()
    assert batch["input_ids"][1].tolist() == collate.prompt_ids("Where exactly?")


def test_plain_text_labels_every_token_but_padding():
    """WMDP's corpora are plain text: every non-padding token is a label, and the loss is the same as
    the attention-mask form without labels."""
    bb = build_backbone("tiny_llama", tokenizer="chars", kv_heads=2, positions=258).eval()
    batch = bb.collate([{"text": "The heart pumps blood.", "index": 0}, {"text": "Oslo.", "index": 1}])
    assert torch.equal(batch["labels"], batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100))
    assert (batch["labels"][1] == -100).any() and batch["index"].tolist() == [0, 1]
    with torch.no_grad():
        without = bb.per_example_loss({k: v for k, v in batch.items() if k != "labels"})
        assert torch.allclose(bb.per_example_loss(batch), without)
