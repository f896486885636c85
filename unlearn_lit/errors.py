"""The project's exceptions, below ``selection/``, ``methods/`` and ``phases/`` so that every layer can raise
them, and the wording of "unknown name" errors (valid choices, and a "did you mean" for a typo)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class UnlearningFailed(RuntimeError):
    """A method diverged (NaN/inf loss or update); θ* and earlier results are untouched."""


def unknown(
    kind: str,
    name: object,
    choices: Iterable[object],
    label: str = "valid choices",
    listed: str | None = None,
) -> str:
    """``unknown <kind> 'name'; did you mean 'x'? valid choices: a, b`` (the hint when one is close;
    ``listed`` replaces the list of choices when they are too many to print)."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"unknown {kind} {name!r}{hint} {label}: {listed or ', '.join(choices)}"


def suggest(message: str) -> str:
    """``message`` with a "did you mean" hint when it names a quoted unknown value and lists the valid
    choices (``...'bad'...; valid choices: a, b``) but gives no hint yet; else ``message`` unchanged."""
    found = re.search(r"'([^']+)'[^;]*; valid(?: choices)?: ([^;()]+)$", message)
    if "did you mean" in message or not found:
        return message
    choices = [c.strip(" '\"[]") for c in found.group(2).split(",")]
    close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
    if not close:
        return message
    return message[: found.end(1) + 1] + message[found.end(1) + 1 :].replace(
        "; valid", f"; did you mean {close[0]!r}? valid", 1
    )
