"""The mask artifact: both unit masks, their scores and a summary (MAPE-Unlearn, METHOD.md §4).

Phase 1 ends with a mask (m^H ∈ {0,1}^{L×H}, m^F ∈ {0,1}^{L×N}, 1 = updated), the scores it was selected
by, the block objective J before and after the greedy search and the data it was computed on. A run
saves it as three files, so that a later run can load it and skip phase 1:

- ``mask.safetensors``: bool tensors ``head`` / ``filter``, float32 ``score.head`` / ``score.filter`` and,
  when the greedy search ran, the bool warm-start masks ``warm.head`` / ``warm.filter``;
- ``mask.json``: the summary, with the per-layer counts derived from the masks;
- ``mask.png``: the figure of :func:`unlearn_lit.viz.masks.mask_figure` (scores with the selected units
  marked, selected units per layer, the units the greedy search swapped).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from unlearn_lit.masks.objectives import KINDS

log = logging.getLogger(__name__)
FILES = {"tensors": "mask.safetensors", "summary": "mask.json", "figure": "mask.png"}


@dataclass
class MaskArtifact:
    """Unit masks (True = selected, updated), their scores and a JSON-serializable summary.

    Attributes:
        head: ``[L, H]`` bool head mask, or None when the backbone has no maskable heads.
        filter: ``[L, N]`` bool filter mask, or None.
        scores: ``kind -> [L, n]`` scores used for the selection (saved as float32).
        warm_start: ``kind -> [L, n]`` bool warm-start masks (top-k by score) before the greedy search;
            empty when no search ran.
        summary: free-form JSON-serializable facts, e.g. ``objective``, ``sparsity``, ``search`` (the info
            of :func:`~unlearn_lit.masks.search.greedy_search`), ``statistics`` (|D_f|, |D_r|, rows of
            G), ``data`` (dataset, split seed) and ``seconds``. ``counts`` is derived from the masks.
    """

    head: Tensor | None = None
    filter: Tensor | None = None
    scores: dict[str, Tensor] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    warm_start: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.masks:
            raise ValueError(f"a mask artifact needs at least one mask of kinds {KINDS}")
        for kind, mask in self.masks.items():
            if mask.dtype != torch.bool or mask.dim() != 2:
                raise ValueError(
                    f"{kind} mask must be a bool [L, n] tensor; found {mask.dtype} {tuple(mask.shape)}"
                )
        for kind, score in self.scores.items():
            if kind not in self.masks or score.shape != self.masks[kind].shape:
                expected = tuple(self.masks[kind].shape) if kind in self.masks else "no such mask"
                raise ValueError(f"scores[{kind!r}] has shape {tuple(score.shape)}; expected {expected}")
        for kind, warm in self.warm_start.items():
            if kind not in self.masks or warm.dtype != torch.bool or warm.shape != self.masks[kind].shape:
                expected = tuple(self.masks[kind].shape) if kind in self.masks else "no such mask"
                raise ValueError(
                    f"warm_start[{kind!r}] must be bool of shape {expected}; found {warm.dtype} "
                    f"{tuple(warm.shape)}"
                )

    @property
    def masks(self) -> dict[str, Tensor]:
        """``kind -> [L, n]`` bool masks of the kinds present."""
        return {kind: m for kind in KINDS if (m := getattr(self, kind)) is not None}

    def counts(self) -> dict[str, dict[str, Any]]:
        """Per kind: selected units per layer, selected and total units, and the realized sparsity."""
        out = {}
        for kind, mask in self.masks.items():
            selected = int(mask.sum())
            out[kind] = {
                "selected_per_layer": mask.sum(dim=1).tolist(),
                "selected": selected,
                "total": mask.numel(),
                "sparsity": 1.0 - selected / mask.numel(),
            }
        return out

    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Writes ``mask.safetensors``, ``mask.json`` and ``mask.png`` into ``directory``.

        All three files are rendered in memory and written to temporary files in ``directory`` before
        any is renamed into place, so a failure (e.g. a summary that is not JSON-serializable) leaves
        no partial artifact and no temporary files.

        Raises:
            FileExistsError: an artifact exists in ``directory`` and ``overwrite`` is False.
            ValueError: the summary is not JSON-serializable.

        Returns:
            The path of ``mask.safetensors``.
        """
        directory = Path(directory)
        if not overwrite and any((directory / name).exists() for name in FILES.values()):
            raise FileExistsError(
                f"{directory} already holds a mask artifact; pass overwrite=True to replace it"
            )
        try:
            summary = json.dumps({**self.summary, "counts": self.counts()}, indent=2, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"mask summary is not JSON-serializable: {err}") from err
        tensors = {kind: m.detach().cpu().contiguous() for kind, m in self.masks.items()}
        for kind, score in self.scores.items():
            tensors[f"score.{kind}"] = score.detach().to("cpu", torch.float32).contiguous()
        for kind, warm in self.warm_start.items():
            tensors[f"warm.{kind}"] = warm.detach().cpu().contiguous()
        from unlearn_lit.viz import png_bytes
        from unlearn_lit.viz.masks import mask_figure

        numpy = {k: v.numpy() for k, v in tensors.items()}
        payloads = {
            FILES["tensors"]: safetensors.torch.save(tensors),
            FILES["summary"]: summary.encode(),
            FILES["figure"]: png_bytes(mask_figure(numpy, {**self.summary, "counts": self.counts()})),
        }
        directory.mkdir(parents=True, exist_ok=True)
        temporary: dict[str, str] = {}
        try:
            for name, payload in payloads.items():
                fd, temporary[name] = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
            for name, tmp in temporary.items():
                os.replace(tmp, directory / name)
        finally:
            for tmp in temporary.values():
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return directory / FILES["tensors"]

    @classmethod
    def load(
        cls, path: str | os.PathLike, expected_shapes: dict[str, tuple[int, int]] | None = None
    ) -> MaskArtifact:
        """Loads and validates an artifact.

        Args:
            path: the artifact's directory or its ``mask.safetensors``; ``mask.json`` is read from the
                same directory (an empty summary, with a warning, if it is absent).
            expected_shapes: ``kind -> (L, n)`` of the backbone; the artifact must hold exactly these
                kinds with these shapes.

        Raises:
            ValueError: missing or corrupt file, unknown or missing keys, wrong dtype or shape.
        """
        path = Path(path)
        file = path / FILES["tensors"] if path.is_dir() else path
        if not file.is_file():
            raise ValueError(f"no mask artifact at {file}: file does not exist")
        try:
            tensors = safetensors.torch.load(file.read_bytes())
        except Exception as err:  # safetensors raises its own error type for any malformed content
            raise ValueError(f"mask file {file} is corrupt: {err}") from err
        valid = set(KINDS) | {f"{prefix}.{kind}" for prefix in ("score", "warm") for kind in KINDS}
        if set(tensors) - valid or not set(tensors) & set(KINDS):
            raise ValueError(f"mask file {file} has keys {sorted(tensors)}; expected some of {sorted(valid)}")
        for kind in KINDS:
            for key in (kind, f"warm.{kind}"):
                if key in tensors and tensors[key].dtype != torch.bool:
                    raise ValueError(
                        f"mask {key!r} in {file} has dtype {tensors[key].dtype}; expected torch.bool"
                    )
        if expected_shapes is not None:
            found = {k: tuple(tensors[k].shape) for k in KINDS if k in tensors}
            expected = {k: tuple(v) for k, v in expected_shapes.items()}
            if found != expected:
                raise ValueError(
                    f"mask shapes in {file} do not match the backbone: expected {expected}, found {found}"
                )
        summary_file = file.parent / FILES["summary"]
        summary: dict[str, Any] = {}
        if summary_file.is_file():
            try:
                summary = json.loads(summary_file.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"mask summary {summary_file} is corrupt: {err}") from err
        else:
            log.warning("mask summary %s is missing; loading the masks without it", summary_file)
        scores = {kind: tensors[f"score.{kind}"] for kind in KINDS if f"score.{kind}" in tensors}
        warm = {kind: tensors[f"warm.{kind}"] for kind in KINDS if f"warm.{kind}" in tensors}
        return cls(head=tensors.get("head"), filter=tensors.get("filter"), scores=scores, summary=summary,
                   warm_start=warm)  # fmt: skip
