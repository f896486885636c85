"""Forget-set policies and seeded hold-outs (METHOD.md §1: D = D_f ∪ D_r, held-out D_v and D_t).

Every random choice is drawn from a :class:`numpy.random.Generator` (PCG64, platform independent)
seeded by ``(seed, purpose)``, never from global RNG state, and every index array is sorted, so a split is
identical for the same seed on every machine and world size.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unlearn_lit.config.names import FORGET_POLICIES


def rng(seed: int, purpose: str) -> np.random.Generator:
    """An independent generator for one purpose (``"val"``, ``"forget"``, ...) derived from ``seed``."""
    return np.random.default_rng([int(seed), zlib.crc32(purpose.encode())])


def holdout(n: int, size: int, seed: int, purpose: str) -> tuple[np.ndarray, np.ndarray]:
    """Splits ``range(n)`` into a seeded held-out part of ``size`` positions and the rest, both sorted."""
    if not 0 <= size <= n:
        raise ValueError(f"cannot hold out {size} of {n} examples for {purpose!r}; choose 0 <= size <= {n}")
    perm = rng(seed, purpose).permutation(n)
    return np.sort(perm[:size]), np.sort(perm[size:])


def subsample(n: int, size: int | None, seed: int, purpose: str) -> np.ndarray:
    """Sorted seeded subsample of ``range(n)`` of ``size`` positions (all of them when ``size`` is None)."""
    if size is None or size >= n:
        return np.arange(n)
    if size <= 0:
        raise ValueError(f"subsample size for {purpose!r} must be positive, got {size}")
    return np.sort(rng(seed, purpose).permutation(n)[:size])


@dataclass(frozen=True)
class ForgetSpec:
    """Which training examples form the forget set D_f.

    Attributes:
        policy: ``random`` (``size`` examples drawn with the seed), ``class`` (every training example
            whose label is in ``classes``) or ``indices`` (read from ``indices_file``).
        size: number of forget examples for ``random`` (the paper uses 128).
        classes: labels to forget for ``class``.
        indices_file: for ``indices``: one integer per line, a JSON list, or a JSON object with a
            ``forget_indices`` list (the file :meth:`UnlearnDataModule.write_split` writes);
            ``split``: the dataset's own forget split (TOFU's forget01/05/10, chosen by its options).
        ids_file: for ``ids`` (a deletion request): the example ids to forget, one per line or a JSON
            list. An example's id is its dataset's ``id`` column (option ``id`` of ``csv`` and ``hf``),
            else its position in the dataset's training pool.
    """

    policy: str = "random"
    size: int = 128
    classes: tuple[int, ...] = field(default_factory=tuple)
    indices_file: str | None = None
    ids_file: str | None = None

    def __post_init__(self) -> None:
        if self.policy not in FORGET_POLICIES:
            raise ValueError(
                f"unknown forget policy {self.policy!r}; valid choices: {', '.join(FORGET_POLICIES)}"
            )
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        if self.policy == "random" and self.size <= 0:
            raise ValueError(f"forget policy 'random' needs size >= 1, got {self.size}")
        if self.policy == "class" and not self.classes:
            raise ValueError("forget policy 'class' needs at least one class in `classes`")
        if self.policy == "indices" and not self.indices_file:
            raise ValueError("forget policy 'indices' needs `indices_file` (one int per line or a JSON list)")
        if self.policy == "ids" and not self.ids_file:
            raise ValueError("forget policy 'ids' needs `ids_file` (one example id per line or a JSON list)")


def read_indices_file(path: str | Path) -> list[int]:
    """Reads forget indices from one integer per line, a JSON list, or ``{"forget_indices": [...]}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"forget indices file {str(path)!r} does not exist")
    text = path.read_text().strip()
    if text.startswith(("[", "{")):
        data = json.loads(text)
        values = data.get("forget_indices") if isinstance(data, dict) else data
        if not isinstance(values, list):
            raise ValueError(f"{path}: a JSON object must hold a 'forget_indices' list")
    else:
        values = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: forget indices must be integers ({err})") from None


def read_ids_file(path: str | Path) -> list[str]:
    """Example ids (as strings) from one id per line (``#`` comments allowed) or a JSON list."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"forget ids file {str(path)!r} does not exist")
    text = path.read_text().strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def positions_of_ids(wanted: Sequence[str], ids: Sequence[str], where: str) -> list[int]:
    """Positions in D of the examples whose id is in ``wanted``; every wanted id must be in D."""
    position = {str(i): p for p, i in enumerate(ids)}
    if len(position) < len(ids):
        raise ValueError(f"example ids are not unique in D; ids cannot name the forget set ({where})")
    missing = [i for i in wanted if i not in position]
    if missing:
        raise ValueError(
            f"{len(missing)} forget ids are not in D (unknown, or held out as D_v or by max_train): "
            f"{missing[:10]} ({where})"
        )
    return [position[i] for i in wanted]


def check_forget(indices: Sequence[int], n: int) -> np.ndarray:
    """Validates forget indices into a training set of ``n`` examples; returns them sorted.

    Raises:
        ValueError: for an empty forget set, the whole training set, out-of-range or duplicate indices.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("the forget set is empty; choose at least one training example to forget")
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise ValueError(f"forget indices out of range [0, {n}): {bad[:10].tolist()}")
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"duplicate forget indices: {uniq[counts > 1][:10].tolist()}")
    if uniq.size == n:
        raise ValueError(f"the forget set is all {n} training examples; the retain set would be empty")
    return uniq


def select_forget(
    spec: ForgetSpec,
    labels: np.ndarray,
    num_labels: int,
    task: str,
    seed: int,
    ids: Callable[[], Sequence[str]] | None = None,
) -> np.ndarray:
    """Sorted forget indices into D chosen by ``spec``.

    Args:
        spec: the forget policy.
        labels: ``[|D|]`` training labels (used by ``class``).
        num_labels: number of classes of the task.
        task: ``classification`` or ``regression`` (``class`` forgetting needs classes).
        seed: the forget seed.
        ids: the ids of D's examples, in order (called for ``ids`` only).
    """
    n = len(labels)
    if spec.policy == "random":
        if spec.size >= n:
            raise ValueError(f"cannot forget {spec.size} random examples of {n}; choose size < {n}")
        return check_forget(rng(seed, "forget").permutation(n)[: spec.size], n)
    if spec.policy == "class":
        if task != "classification":
            raise ValueError(f"forget policy 'class' needs a classification task, not {task!r}")
        bad = [c for c in spec.classes if not 0 <= c < num_labels]
        if bad:
            raise ValueError(f"classes {bad} do not exist; valid classes: 0..{num_labels - 1}")
        return check_forget(np.flatnonzero(np.isin(labels, spec.classes)), n)
    if spec.policy == "ids":
        if ids is None:
            raise ValueError("forget policy 'ids' needs the examples' ids")
        return check_forget(positions_of_ids(read_ids_file(spec.ids_file), ids(), spec.ids_file), n)
    return check_forget(read_indices_file(spec.indices_file), n)
