"""The RT-free selection rule (METHOD.md §5): a guard calibrated from the user's own data, then a target.

Every candidate (an SO step, a fine-tuning checkpoint) is a row of measurements on the selection sets
(:class:`~unlearn_lit.selection.sets.SelectionSets`); ``ref`` is θ*'s own row. The rule:

1. **Guard** -- keep the candidates whose utility is, as far as the user's data can tell, still θ*'s.
   ``noise`` (default): the validation loss (without the forgotten classes, for class forgetting) may
   rise, and the retain-slice loss may move either way (``two_sided``), by at most ``z`` standard errors
   of θ*'s validation loss -- a change the validation set itself could not tell from sampling noise. ``gap``: each may rise by at most
   ``gap_fraction`` of θ*'s generalization gap (validation minus retain loss), so retain examples still
   look more seen than unseen. ``kl``: the old fixed bound, mean KL(θ* || candidate) on the retain slice
   at most ``eps`` nats (kept for comparison; it is miscalibrated: RT itself may be farther than ``eps``).
2. **Target** among the guarded candidates -- random forgetting (``val_loss``): the forget loss closest
   to the candidate's validation loss, relative to the candidate's own generalization gap (D_f looks
   like unseen data, see :func:`distance`). Ties go to the smaller harm.
3. If no candidate passes the guard, the least harmful one is chosen and the reason says so.

Class forgetting (``class``) is different: there the retrained model is known without training it --
it never predicts the forgotten classes, and on the other classes it is as accurate as θ* (it learnt
them from the same data). The default ``class_criterion="ideal"`` therefore chooses the candidate
closest to that ideal, :func:`class_gap` -- the mean of the forget accuracy and the drops of the
retain and kept-class validation accuracies below θ*'s, an RT-free estimate of Avg.Gap's accuracy terms --
with no loss guard: a class's removal legitimately moves the other classes' losses (measured: the
kept-class losses of candidates as close to RT as any rose by 3-6 standard errors, rejecting them).
``class_criterion="guard"`` keeps the previous rule (the lowest forget accuracy among the guarded
candidates) for comparison.

No per-setup constant: ``z`` and ``gap_fraction`` are statistical, the same for every task.
An ``oracle`` (closest to RT) exists for analysis only, and its choice is labelled as such.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

GUARDS = ("noise", "gap", "kl")
TARGETS = ("val_loss", "class")
CLASS_CRITERIA = ("ideal", "guard")
SCALES = ("candidate", "reference")
Row = Mapping[str, Any]


@dataclass
class Choice:
    """The selected candidate: its index in the table, and why."""

    index: int
    reason: str
    oracle: bool = False


@dataclass
class SelectionRule:
    """The RT-free rule shared by every method (METHOD.md §5).

    Attributes:
        guard: ``noise`` (default), ``gap`` or ``kl`` (see the module docstring).
        z: ``noise`` guard: tolerated rise of the validation and retain losses, in standard errors of
            θ*'s mean validation loss (2 ≈ a two-sided 95% band).
        gap_fraction: ``gap`` guard: tolerated rise, as a fraction of θ*'s validation-minus-retain loss.
        eps: ``kl`` guard: bound on the mean KL(θ* || candidate) on the retain slice, nats.
        two_sided: count a *fall* of the retain loss as harm too (default): RT fits D_r as θ* does, so a
            candidate that fits it more tightly -- fine-tuning on D_r -- moves away from RT as well
            (measured on MiniLM: FT under the one-sided guard ended farther from RT than θ*). False:
            only rises count.
        target: ``auto`` (``class`` when the datamodule forgets whole classes, else ``val_loss``),
            ``val_loss`` or ``class``.
        class_criterion: class forgetting: ``ideal`` (default; the smallest :func:`class_gap`, no loss
            guard) or ``guard`` (the lowest forget accuracy within the guard).
        scale: random forgetting: the generalization gap :func:`distance` divides by -- ``candidate``
            (default: the candidate's own validation minus retain loss) or ``reference`` (θ*'s). With
            ``candidate``, fine-tuning on D_r lowers the retain loss and so looks closer to the target
            although D_f did not move (FT on MiniLM ended farther from RT than θ* on 2 of 5 seeds);
            ``reference`` does not, but re-applied to saved candidate tables it chose worse on digits
            for every fine-tuning method (experiments/README.md, "MiniLM, random forgetting").
        prune: measure a candidate's guarded sets first and stop once it fails the guard (:meth:`outside`):
            the rule chooses such a candidate only as the least harmful of a table where none is within
            the guard, and the search measures the rest of it then, so every choice is the same as
            without pruning. False measures every candidate whole (e.g. to re-apply other guards to the
            table offline).
    """

    guard: str = "noise"
    z: float = 2.0
    gap_fraction: float = 0.5
    eps: float = 0.02
    two_sided: bool = True
    target: str = "auto"
    class_criterion: str = "ideal"
    scale: str = "candidate"
    prune: bool = True

    def __post_init__(self) -> None:
        if self.guard not in GUARDS:
            raise ValueError(f"unknown selection guard {self.guard!r}; valid choices: {', '.join(GUARDS)}")
        if self.target not in ("auto", *TARGETS):
            raise ValueError(
                f"unknown selection target {self.target!r}; valid choices: auto, {', '.join(TARGETS)}"
            )
        if self.class_criterion not in CLASS_CRITERIA:
            raise ValueError(
                f"unknown class_criterion {self.class_criterion!r}; valid choices: {', '.join(CLASS_CRITERIA)}"
            )
        if self.scale not in SCALES:
            raise ValueError(f"unknown distance scale {self.scale!r}; valid choices: {', '.join(SCALES)}")
        if min(self.z, self.gap_fraction, self.eps) <= 0:
            raise ValueError(
                f"z, gap_fraction and eps must be positive, got {self.z}, {self.gap_fraction}, {self.eps}"
            )

    def resolve(self, datamodule: Any) -> str:
        """The target: ``class`` for class forgetting, else ``val_loss`` (``auto`` reads the forget policy)."""
        if self.target != "auto":
            return self.target
        spec = getattr(datamodule, "forget_spec", None)
        return "class" if getattr(spec, "policy", None) == "class" else "val_loss"

    def tolerance(self, ref: Row) -> float:
        """How far the guarded losses may rise above θ*'s (nats; the KL bound for ``kl``)."""
        if self.guard == "kl":
            return self.eps
        if self.guard == "noise":
            return self.z * ref["val_keep_loss_se"]
        return self.gap_fraction * max(ref["val_keep_loss"] - ref["retain_loss"], 0.0)

    def harm(self, row: Row, ref: Row) -> float:
        """The guarded quantity: KL for ``kl``, else the larger rise of the retain and validation losses."""
        return max(self._harms(row, ref))

    def _harms(self, row: Row, ref: Row) -> tuple[float, ...]:
        """The guarded terms whose largest is the harm: the KL, or the retain and validation rises."""
        if self.guard == "kl":
            return (row["damage"],)
        retain = row["retain_loss"] - ref["retain_loss"]
        return (abs(retain) if self.two_sided else retain, row["val_keep_loss"] - ref["val_keep_loss"])

    def within(self, row: Row, ref: Row) -> bool:
        """Whether the candidate passes the guard (False for non-finite rows)."""
        harm = self.harm(row, ref)
        return math.isfinite(harm) and harm <= self.tolerance(ref)

    def harm_bound(self, row: Row, ref: Row) -> float:
        """:meth:`harm` of a possibly partly measured row, from the terms measured so far (NaN = not
        measured yet): a lower bound of its harm, equal to it once the guarded sets are measured; NaN
        when none is."""
        measured = [t for t in self._harms(row, ref) if not math.isnan(t)]
        return max(measured) if measured else math.nan

    def outside(self, row: Row, ref: Row, target: str) -> bool:
        """Whether a (possibly partly measured) row already fails the guard (:meth:`harm_bound` above the
        tolerance). Never for the class-forgetting ideal, which has no guard. While a table holds a row
        within the guard, the rule never chooses such a row, so its remaining sets need not be measured
        (:class:`~unlearn_lit.selection.grid.StepSearch` completes one only if it may be the least harmful
        of a table where none is within)."""
        return not self._ideal(target) and self.harm_bound(row, ref) > self.tolerance(ref)

    def stop(self, ref: Row, target: str) -> Callable[[Row], bool] | None:
        """What a measurement may stop on (``SelectionSets.measure(stop=...)``): :meth:`outside` against
        ``ref``, or None when the rule does not prune."""
        return functools.partial(self.outside, ref=ref, target=target) if self.prune else None

    def finite(self, row: Row, ref: Row, target: str) -> bool:
        """Whether the rule may choose the row at all: its harm and its target criterion are finite."""
        return all(math.isfinite(v) for v in self._criteria(row, ref, target))

    def choose(self, rows: list[Row], ref: Row, target: str) -> Choice:
        """Applies the rule to a candidate table; non-finite rows (a diverged candidate) are never chosen."""
        if target not in TARGETS:
            raise ValueError(f"unknown selection target {target!r}; valid choices: {', '.join(TARGETS)}")
        finite = [i for i, r in enumerate(rows) if self.finite(r, ref, target)]
        if not finite:
            raise ValueError("no candidate has finite selection criteria (every candidate diverged)")
        if self._ideal(target):
            best = min(finite, key=lambda i: (class_gap(rows[i], ref), self.harm(rows[i], ref)))
            return Choice(
                best,
                f"{len(finite)}/{len(rows)} finite; closest to the class-forgetting ideal "
                f"(estimated accuracy gap {class_gap(rows[best], ref):.3f})",
            )
        within = [i for i in finite if self.within(rows[i], ref)]
        what = f"{self.guard} guard {self.tolerance(ref):.3g}"
        if not within:
            best = min(finite, key=lambda i: self.harm(rows[i], ref))
            return Choice(best, f"no candidate within the {what}; least harmful chosen")
        best = min(within, key=lambda i: (self.distance(rows[i], ref, target), self.harm(rows[i], ref)))
        goal = "forget loss closest to validation loss" if target == "val_loss" else "lowest forget accuracy"
        return Choice(best, f"{len(within)}/{len(rows)} within the {what}; {goal}")

    def rank(self, rows: list[Row], ref: Row, target: str, k: int | None = None) -> list[int]:
        """The first ``k`` (all when None) indices in the rule's order of preference: its choice, then
        its choice among the rows left, and so on; non-finite rows are left out.

        The order is a fixed key per row (guarded rows by target distance then harm, then the others
        by harm; for the class ideal, gap then harm), so a row's place relative to the others never
        depends on rows added later.
        """
        left, out = list(range(len(rows))), []
        while left and (k is None or len(out) < k):
            try:
                pick = self.choose([rows[i] for i in left], ref, target).index
            except ValueError:  # only non-finite rows are left
                break
            out.append(left.pop(pick))
        return out

    def direction(self, row: Row, ref: Row, target: str) -> int:
        """+1 if a larger step should get closer to the rule's target, -1 if a smaller one, 0 if either
        may (the class-forgetting ideal trades forget against kept-class accuracy: search both sides)."""
        if self._ideal(target):
            return 0
        if not self.within(row, ref):
            return -1
        if target == "class":
            return 1
        return 1 if row["forget_loss"] < row["val_loss"] else -1

    def passed(self, row: Row, target: str, class_target: float = 0.0) -> bool:
        """The forget set has reached its target (fine-tuning may stop soon after)."""
        if target == "class":
            return row["forget_acc"] <= class_target
        return row["forget_loss"] >= row["val_loss"]

    def distance(self, row: Row, ref: Row, target: str) -> float:
        """:func:`distance` with this rule's ``scale`` (θ*'s generalization gap for ``reference``)."""
        return distance(row, target, ref if self.scale == "reference" else None)

    def _ideal(self, target: str) -> bool:
        return target == "class" and self.class_criterion == "ideal"

    def _criteria(self, row: Row, ref: Row, target: str) -> tuple[float, ...]:
        gap = class_gap(row, ref) if self._ideal(target) else self.distance(row, ref, target)
        return (self.harm(row, ref), gap)


def class_gap(row: Row, ref: Row) -> float:
    """Estimated accuracy gap to the class-forgetting ideal, without RT (0 = the ideal).

    The ideal never predicts the forgotten classes (forget accuracy 0) and keeps θ*'s accuracy on the
    other classes: the mean of ``forget_acc`` and the *drops* of ``retain_acc`` and ``val_keep_acc``
    below θ*'s -- Avg.Gap's UA, RA and TA terms with RT replaced by what class forgetting implies about
    it. A rise above θ*'s accuracy is no gap: RT is at least as accurate as θ* on the kept classes
    (it learnt them from the same data, without the forgotten one to confuse them with; measured RA
    99.9% vs 99.7% on digits), and a rise on a few hundred validation examples is within their noise.
    Candidates at the same gap (e.g. several repaired checkpoints at θ*'s accuracy) are told apart by
    the smooth loss criterion (:meth:`SelectionRule.harm`).
    """
    return (
        row["forget_acc"]
        + max(ref["retain_acc"] - row["retain_acc"], 0.0)
        + max(ref["val_keep_acc"] - row["val_keep_acc"], 0.0)
    ) / 3


def distance(row: Row, target: str, scale_row: Row | None = None) -> float:
    """How far a candidate is from the rule's target (0 = D_f looks unseen / the class is gone).

    For random forgetting, |forget − val| / (val − retain): where the forget loss sits between "seen"
    (the retain loss) and "unseen" (the validation loss), as a fraction of the candidate's own
    generalization gap -- 1 for θ* when D_f looks like D_r, 0 once D_f looks like unseen data. The
    normalization makes a method that raises every loss together (e.g. random labels) not look closer
    to the target than it is. ``scale_row``: divide by that row's gap instead (θ*'s, for
    ``SelectionRule(scale="reference")``).
    """
    if target == "class":
        return row["forget_acc"]
    scale = row if scale_row is None else scale_row
    return abs(row["forget_loss"] - row["val_loss"]) / max(scale["val_loss"] - scale["retain_loss"], 1e-6)


def choose_oracle(rows: list[Row], gap: Callable[[Row], float]) -> Choice:
    """ORACLE (analysis only): the candidate with the smallest ``gap`` to RT."""
    scored = [(gap(r), i) for i, r in enumerate(rows)]
    scored = [(g, i) for g, i in scored if math.isfinite(g)]
    if not scored:
        raise ValueError("no candidate has a finite gap to RT")
    return Choice(
        min(scored)[1], "ORACLE: closest to RT (uses the retrained model; analysis only)", oracle=True
    )
