"""Did a method unlearn at all? (METHOD.md §5: no silent no-ops.)

A method whose selection kept θ* (step 0, τ = 0, an empty mask), or that changed weights without
changing any reported metric (UA, RA, TA, MIA), did not unlearn. It is flagged in the table,
``metrics.json`` (``"unlearned": false`` with the reason) and the log, never shown as an ordinary row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def verdict(
    changed: int, metrics: Mapping[str, float], original: Mapping[str, float], info: Mapping[str, Any]
) -> tuple[bool, str]:
    """``(unlearned, reason)`` from the number of changed entries and the metrics before/after.

    Args:
        changed: parameter entries that differ from θ*.
        metrics: the unlearned model's metrics; ``original``: θ*'s on the same splits.
        info: the method's info (``kept_original`` and ``reason`` of its selection, if any).
    """
    from unlearn_lit.eval.metrics import GAP_KEYS  # here: the package's torch-free part stays so

    if info.get("kept_original") or changed == 0:
        why = info.get("reason") or info.get("choice") or "the update changed no parameter"
        return False, f"kept the original model ({why})"
    score = "spearman" if "test/spearman" in original else "acc"
    keys = [k.format(score=score) for k in GAP_KEYS if k.format(score=score) in original]
    if keys and all(metrics.get(k) == original[k] for k in keys):
        return False, f"changed {changed} parameter entries but none of {', '.join(keys)}"
    return True, ""
