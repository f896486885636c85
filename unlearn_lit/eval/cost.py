"""Cost of unlearning (METHOD.md §7): wall-clock time per phase, peak memory, parameters updated.

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU (reset at the start of each phase) and
the process's peak resident set size on the CPU (Linux ``VmHWM``, reset per phase through
``/proc/self/clear_refs`` where the kernel allows it, otherwise the process-lifetime peak, labelled as
such). :func:`tensor_bytes` measures the update buffers themselves (the paper's "memory of the update").
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _cpu_peak_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class CostTracker:
    """Records wall time and peak memory of named phases.

    >>> cost = CostTracker()
    >>> with cost.phase("mask_learning"):
    ...     ...
    >>> cost.as_dict()  # {"cost/mask_learning/seconds": ..., "cost/mask_learning/peak_memory_bytes": ...}

    Args:
        device: the device whose memory is tracked (CUDA devices use the allocator's peak).
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else None
        self.phases: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        """Times the ``with`` block; the yielded dict is filled when the block ends."""
        record: dict[str, Any] = {}
        cuda = self.device is not None and self.device.type == "cuda" and torch.cuda.is_available()
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            kind = "cuda_max_allocated"
        else:
            kind = "cpu_peak_rss" if _reset_cpu_peak() else "cpu_peak_rss_lifetime"
        start = time.perf_counter()
        try:
            yield record
        finally:
            if cuda:
                torch.cuda.synchronize(self.device)
            record["seconds"] = time.perf_counter() - start
            record["peak_memory_bytes"] = (
                torch.cuda.max_memory_allocated(self.device) if cuda else _cpu_peak_bytes()
            )
            record["memory_kind"] = kind
            self.phases[name] = record
            log.info(
                "phase %s: %.2f s, peak memory %.1f MiB (%s)",
                name,
                record["seconds"],
                record["peak_memory_bytes"] / 2**20,
                kind,
            )

    def as_dict(self) -> dict[str, Any]:
        """Flat ``cost/{phase}/{seconds|peak_memory_bytes|memory_kind}`` entries."""
        return {f"cost/{p}/{k}": v for p, rec in self.phases.items() for k, v in rec.items()}


def tensor_bytes(*tensors: Tensor | Mapping[str, Tensor] | Iterable[Tensor]) -> int:
    """Bytes held by tensors, dicts of tensors (state dicts, Fisher buffers) or iterables of tensors."""
    total = 0
    for item in tensors:
        if isinstance(item, Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, Mapping):
            total += tensor_bytes(*item.values())
        else:
            total += tensor_bytes(*item)
    return total


def parameter_counts(model: nn.Module, updated: Mapping[str, Tensor] | None = None) -> dict[str, float]:
    """Parameters updated and total.

    Args:
        model: the model.
        updated: per parameter name, a boolean mask of the entries an update may change (absent
            names count as frozen); None counts every parameter with ``requires_grad``.

    Returns:
        ``params/total``, ``params/updated`` and ``params/updated_fraction``.
    """
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    if updated is None:
        n_updated = sum(p.numel() for p in params.values() if p.requires_grad)
    else:
        unknown = sorted(set(updated) - set(params))
        if unknown:
            raise KeyError(f"no such parameters: {unknown[:5]}; valid names look like {list(params)[:3]}")
        n_updated = sum(int(m.bool().sum()) for m in updated.values())
    return {"params/total": total, "params/updated": n_updated, "params/updated_fraction": n_updated / total}


def changed_parameters(before: Mapping[str, Tensor], after: Mapping[str, Tensor]) -> dict[str, float]:
    """Entries that actually differ between two state dicts (a check of the hard freeze, METHOD.md §5)."""
    keys = [k for k in before if torch.is_floating_point(before[k])]
    total = sum(before[k].numel() for k in keys)
    changed = sum(int((before[k] != after[k].to(before[k].device)).sum()) for k in keys)
    return {"params/changed": changed, "params/changed_fraction": changed / max(total, 1)}
