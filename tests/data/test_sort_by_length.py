"""Sets measured whole are re-cut by length (issue 14): no padding to pay for, the same numbers.

Checked against independent computations: each example's own tokens before and after, a plain
per-batch forward loop for ``predict``, and hand-computed selection rows over the unsorted batches."""

from __future__ import annotations

import pytest
import torch

from unlearn_lit.data import UnlearnDataModule, build_dataset
from unlearn_lit.data.buckets import (
    PART_ROWS,
    length_parts,
    positions_by_length,
    sort_by_length,
    sorted_windows,
    trim_padding,
)
from unlearn_lit.eval.metrics import predict
from unlearn_lit.models import build_backbone
from unlearn_lit.selection import SelectionSets, first_examples


@pytest.fixture(scope="module")
def tweets():
    """Tiny BERT and the bundled tweets: unshuffled evaluation batches padded to their longest example."""
    torch.manual_seed(0)
    backbone = build_backbone("tiny_bert", num_labels=3).eval()
    dm = UnlearnDataModule(build_dataset("tweets"), max_train=600, max_test=200, batch_size=32)
    return backbone, dm.bind(backbone)


def tokens(batches):
    """Each example's unpadded token ids, in batch order."""
    return [
        row[m.bool()].tolist()
        for b in batches
        for row, m in zip(b["input_ids"], b["attention_mask"], strict=True)
    ]


def padding(batches):
    return 1 - sum(int(b["attention_mask"].sum()) for b in batches) / sum(
        b["attention_mask"].numel() for b in batches
    )


def test_recut_batches_hold_every_example_once_with_its_own_tokens(tweets):
    _, dm = tweets
    batches = first_examples(dm.test_dataloader())
    out, order = sort_by_length(batches)
    assert sorted(order.tolist()) == list(range(200))  # a permutation
    before, after = tokens(batches), tokens(out)
    assert after == [before[i] for i in order.tolist()]  # example i of the output is input order[i]
    labels = torch.cat([b["labels"] for b in batches])
    assert torch.equal(torch.cat([b["labels"] for b in out]), labels[order])
    assert [len(b["labels"]) for b in out] == [len(b["labels"]) for b in batches]  # 64, 64, 64, 8
    assert all(int(b["attention_mask"][:, -1].sum()) > 0 for b in out)  # trimmed to the longest
    assert padding(out) < 0.5 * padding(batches), (padding(batches), padding(out))  # measured: 19% vs 52%


def test_left_padding_and_images_come_back_as_they_are():
    left = {
        "input_ids": torch.tensor([[0, 5, 6], [7, 8, 9]]),
        "attention_mask": torch.tensor([[0, 1, 1], [1, 1, 1]]),
    }
    images = {"pixel_values": torch.randn(4, 1, 8, 8), "labels": torch.arange(4)}
    options = [  # a second padded dimension that is not the mask's: left as it is
        {
            "input_ids": torch.ones(2, n),
            "attention_mask": torch.ones(2, n),
            "options": torch.ones(2, 4, n + 1),
        }
        for n in (3, 5)
    ]
    for batches in ([left], [images], options):
        out, order = sort_by_length(batches)
        assert out == batches and order.tolist() == list(range(len(order)))
    assert trim_padding(left) is left and trim_padding(images) is images


def test_unpadded_batches_of_different_widths_are_not_widened_with_guessed_padding():
    """Nothing padded: the collate's padding values (pad token, labels' ignore index) are unknown, so the
    batches come back as they are; with one padded batch they are read from it."""
    unpadded = [
        {"input_ids": torch.full((2, n), 5), "attention_mask": torch.ones(2, n, dtype=torch.long),
         "labels": torch.full((2, n), 7)}
        for n in (2, 4)
    ]  # fmt: skip
    out, order = sort_by_length(unpadded)
    assert out == unpadded and order.tolist() == [0, 1, 2, 3]
    padded = {"input_ids": torch.tensor([[5, 5, 5, 9], [5, 5, 5, 5]]),
              "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]),
              "labels": torch.tensor([[7, 7, 7, -100], [7, 7, 7, 7]])}  # fmt: skip
    out, order = sort_by_length([unpadded[0], padded], batch_size=4)
    whole = out[0]
    assert order.tolist() == [0, 1, 2, 3] and whole["input_ids"].shape == (4, 4)
    assert whole["input_ids"][:2, 2:].eq(9).all() and whole["labels"][:2, 2:].eq(-100).all()


def test_predict_matches_a_plain_forward_loop_in_loader_order(tweets):
    backbone, dm = tweets
    out = predict(backbone, dm.test_dataloader())
    losses, preds, index = [], [], []
    with torch.inference_mode():
        for batch in dm.test_dataloader():  # the padded batches, as the loader gives them
            logits = backbone(batch)
            losses.append(torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none"))
            preds.append(logits.argmax(-1))
            index.append(batch["index"])
    assert torch.equal(out.index, torch.cat(index))  # loader order kept
    torch.testing.assert_close(out.losses, torch.cat(losses), atol=1e-5, rtol=1e-5)
    assert (out.preds == torch.cat(preds)).float().mean() > 0.99  # argmax may flip on a float tie only
    windows = list(sorted_windows(dm.test_dataloader(), window=3))  # 4 batches: 64, 64, 64, 8
    assert [len(w) for w, _ in windows] == [3, 1]  # bounded windows of the loader's batches


def test_selection_rows_equal_hand_computed_means_over_the_unsorted_batches(tweets):
    backbone, dm = tweets
    retain = first_examples(dm.retain_dataloader(subsample=128, seed=0))
    forget, val = first_examples(dm.forget_dataloader()), first_examples(dm.val_dataloader(), 64)
    sets = SelectionSets(backbone, retain, forget, val)

    def loss_and_acc(batches):
        with torch.inference_mode():
            rows = [(backbone(b).double(), b["labels"]) for b in batches]
        loss = torch.cat([torch.nn.functional.cross_entropy(z, y, reduction="none") for z, y in rows])
        return loss.mean().item(), torch.cat([(z.argmax(-1) == y).double() for z, y in rows]).mean().item()

    for name, batches in (("retain", retain), ("forget", forget), ("val", val)):
        loss, acc = loss_and_acc(batches)
        assert sets.ref[f"{name}_loss"] == pytest.approx(loss, abs=1e-6), name
        assert sets.ref[f"{name}_acc"] == pytest.approx(acc, abs=1e-12), name
    assert padding(sets.retain) < padding(retain)  # the stored sets are the re-cut ones (32% vs 43%)


def test_positions_by_length_is_a_stable_sort_by_tokens_and_leaves_images_alone(tweets):
    backbone, dm = tweets
    positions = torch.arange(0, 300, 3)
    out = positions_by_length(dm.retain, positions, dm.collate_fn)
    assert sorted(out.tolist()) == positions.tolist()
    lengths = [int(dm.collate_fn([dm.retain[int(p)]])["attention_mask"].sum()) for p in out]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    vit = build_backbone("tiny_vit", num_labels=10)
    digits = UnlearnDataModule(build_dataset("digits"), batch_size=32).bind(vit)
    assert torch.equal(positions_by_length(digits.retain, positions, digits.collate_fn), positions)


def test_length_parts_hold_every_example_once_without_padding_and_only_split_when_it_pays(tweets):
    _, dm = tweets
    batch = first_examples(dm.test_dataloader())[0]  # 64 tweets padded to the longest
    parts = list(length_parts(batch))
    assert len(parts) > 1 and all(len(p["labels"]) >= PART_ROWS for p in parts)
    assert sorted(tokens(parts)) == sorted(tokens([batch]))  # every example once, its own tokens
    assert all(int(p["attention_mask"][:, -1].sum()) > 0 for p in parts)  # each trimmed to its longest
    cost = sum(p["attention_mask"].numel() for p in parts)
    assert cost <= 0.8 * batch["attention_mask"].numel()
    uniform = {k: v[:, :5] for k, v in batch.items() if torch.is_tensor(v) and v.dim() == 2}
    uniform["attention_mask"] = torch.ones_like(uniform["attention_mask"])
    assert len(list(length_parts(uniform))) == 1  # nothing to save: one piece
    (whole,) = length_parts(batch, split=False)  # one piece, sorted and trimmed
    assert sorted(tokens([whole])) == sorted(tokens([batch])) and whole["attention_mask"][:, -1].any()
    chunks = list(length_parts(batch, 10))  # per-example chunks: sorted, each trimmed
    assert [len(c["labels"]) for c in chunks] == [10] * 6 + [4]
    widths = [c["attention_mask"].shape[1] for c in chunks]
    assert widths == sorted(widths) and sorted(tokens(chunks)) == sorted(tokens([batch]))
    image = {"pixel_values": torch.randn(40, 1, 8, 8), "labels": torch.arange(40)}
    assert [torch.equal(p["labels"], image["labels"]) for p in length_parts(image)] == [True]
    assert [p["labels"].tolist() for p in length_parts(image, 16)][2] == list(range(32, 40))
