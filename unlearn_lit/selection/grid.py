"""The candidate grid of one-step methods (SO-type; METHOD.md §5 "Selection must stay cheap").

A step family θ(c, v) -- a damping choice ``c`` and a step value ``v`` -- is searched without RT:

1. **screen**: the coarse log grid of ``v`` for every ``c``, measured on the first ``screen`` examples of
   each selection set, extended by a decade while the rule's choice sits on the edge it points past;
2. **full**: θ* itself (``v = 0``), the screen's choice, then ``refine`` rounds of log-``v`` bisection
   from the best step > 0 towards the rule's target (smaller while the guard fails), measured on the full
   selection sets; the final choice is made among these (θ* included: the rule may keep it).

Every candidate stays in the table (``stage``). With a :class:`~unlearn_lit.selection.headroom.Headroom`,
every candidate is also scored against RT (analysis; ``oracle=True`` chooses by it, labelled ORACLE).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn
from tqdm.auto import tqdm

from unlearn_lit.selection.headroom import ORACLE_KEY, Headroom, best_scored
from unlearn_lit.selection.rule import Choice, SelectionRule, choose_oracle
from unlearn_lit.selection.sets import MEASURES, SelectionSets

Load = Callable[[Any, float], bool]  # writes θ(c, v) into the model; False if non-finite
Describe = Callable[[Any, float], dict[str, Any]]  # the row's hyperparameter columns


class StepSearch:
    """The candidate table of a one-step method.

    Args:
        model: the model :attr:`load` writes candidates into.
        load: ``(c, v) -> finite``.
        describe: ``(c, v) -> {column: value}`` (e.g. η and λ).
        sets: the full selection sets (None only for a fixed step).
        rule: the RT-free rule.
        target: ``val_loss`` or ``class``.
        screen: examples of each set for the coarse screen (None = the full sets).
        headroom: scores every candidate against RT.
        oracle: choose by the headroom score (analysis only).
        progress: a progress bar over the evaluated candidates (their number is not known ahead).

    Step 0 is the model the sets were built from (their reference: θ*, or θ^{t-1} of a successive
    request), so its row is the sets' reference row, not measured again.
    """

    def __init__(
        self,
        model: nn.Module,
        load: Load,
        describe: Describe,
        sets: SelectionSets | None,
        rule: SelectionRule,
        target: str,
        screen: int | None = None,
        headroom: Headroom | None = None,
        oracle: bool = False,
        progress: bool = False,
    ) -> None:
        if oracle and headroom is None:
            raise ValueError(
                'select="oracle" needs RT: add `rt` to the methods (the oracle compares with it)'
            )
        self.model, self.load, self.describe, self.rule, self.target = model, load, describe, rule, target
        self.headroom, self.oracle = headroom, oracle
        self.sets = {"full": sets, "screen": None if sets is None else sets.subset(screen)}
        self.rows: list[dict[str, Any]] = []
        self.headroom_s = 0.0  # time spent scoring candidates against RT (not part of the selection)
        self.completed = 0  # pruned candidates measured whole later (:meth:`least_harmful`)
        self.bar = tqdm(desc="selection", unit="candidate", leave=False, disable=None if progress else True)

    def evaluate(self, c: Any, value: float, stage: str) -> None:
        """Measures θ(c, v) once per stage (a repeated point is skipped)."""
        if any(r["stage"] == stage and r["c"] == c and math.isclose(r["value"], value) for r in self.rows):
            return
        sets = self.sets[stage]
        known = value == 0.0 and sets is not None  # step 0: the sets' reference model, measured already
        finite = True if known and self.headroom is None else self.load(c, value)
        row = {"stage": stage, "c": c, "value": value, **self.describe(c, value)}
        if known:
            row.update({k: sets.ref[k] for k in MEASURES})
        elif sets is not None:
            row.update(
                sets.measure(self.model, stop=self.stop(stage))
                if finite
                else dict.fromkeys(MEASURES, math.nan)
            )
        if self.headroom is not None:  # analysis, not selection: timed apart
            t0 = time.perf_counter()
            # pruning is bounded by this stage's rows: each stage's oracle (``oracle=True``) stays exact
            best = best_scored([r for r in self.rows if r["stage"] == stage])
            row.update(self.headroom(self.model, best) if finite else {ORACLE_KEY: math.nan})
            self.headroom_s += time.perf_counter() - t0
        self.rows.append(row)
        self.bar.update(1)

    def stop(self, stage: str) -> Callable[[dict[str, Any]], bool] | None:
        """Ends a candidate's measurement once it fails the guard (``rule.prune``; :meth:`SelectionRule.outside`).

        Exact: a pruned row is never within the guard, so the rule's choice among rows within it and the
        search's direction from it are what its whole row gives; where no row of a table is within the
        guard, :meth:`least_harmful` measures the rest of the pruned rows that may be the least harmful.
        """
        return None if self.oracle else self.rule.stop(self.sets[stage].ref, self.target)

    def complete(self, index: int) -> None:
        """Measures a pruned candidate whole (it may be the least harmful of a table none passes)."""
        row = self.rows[index]
        self.load(row["c"], row["value"])
        row.pop("pruned")
        row.update(self.sets[row["stage"]].measure(self.model))
        self.completed += 1

    def least_harmful(self, idx: list[int], stage: str, lone: bool = False) -> int | None:
        """The rule's choice among ``idx`` when none is within the guard -- the least harmful row with
        finite criteria, the first on a tie -- measuring pruned rows whole only while one of them may be
        it: a pruned row's measured terms bound its harm from below (:meth:`SelectionRule.harm_bound`).
        With ``lone``, a single pruned row is the choice without its other sets (the search's anchor:
        it has nothing to be compared with, and its direction is "smaller" either way)."""
        ref, rule = self.sets[stage].ref, self.rule
        while True:
            keys = []
            for i in idx:
                row = self.rows[i]
                if "pruned" in row:
                    bound = rule.harm_bound(row, ref)
                    if math.isfinite(bound):
                        keys.append((bound, i))
                elif rule.finite(row, ref, self.target):
                    keys.append((rule.harm(row, ref), i))
            if not keys:
                return None
            _, best = min(keys)  # a pruned row at the same bound and an earlier index: measured first
            if "pruned" not in self.rows[best] or (lone and len(idx) == 1):
                return best
            self.complete(best)

    def _within(self, idx: list[int], stage: str) -> bool:
        return any(self.rule.within(self.rows[i], self.sets[stage].ref) for i in idx)

    def choose(self, stage: str) -> Choice:
        idx = [i for i, r in enumerate(self.rows) if r["stage"] == stage]
        if not self.oracle and not self._within(idx, stage):
            self.least_harmful(idx, stage)  # the rule's fallback: measure whole any pruned row it may be
        rows = [self.rows[i] for i in idx]
        if self.oracle:
            choice = choose_oracle(rows, lambda r: r.get(ORACLE_KEY, math.nan))
        else:
            choice = self.rule.choose(rows, self.sets[stage].ref, self.target)
        return Choice(idx[choice.index], choice.reason, choice.oracle)

    def run(self, cs: Sequence[Any], grid: Sequence[float], refine: int, max_extend: int) -> Choice:
        """Screen, extend, then measure and refine on the full sets; returns the final choice."""
        for c in cs:
            for value in grid:
                self.evaluate(c, value, "screen")
        choice = self.choose("screen")
        for _ in range(max_extend):  # a decade past the edge the rule points beyond
            row = self.rows[choice.index]
            values = sorted(r["value"] for r in self.rows if r["c"] == row["c"] and r["stage"] == "screen")
            way = self.direction(row, "screen")
            if way >= 0 and row["value"] == values[-1]:
                self.evaluate(row["c"], row["value"] * 10, "screen")
            elif way <= 0 and row["value"] == values[0]:
                self.evaluate(row["c"], row["value"] / 10, "screen")
            else:
                break
            choice = self.choose("screen")
        row = self.rows[choice.index]
        self.evaluate(row["c"], 0.0, "full")  # θ* itself: the rule may keep it (reported as not unlearned)
        self.evaluate(row["c"], row["value"], "full")
        choice = self.choose("full")
        for _ in range(refine):  # bisect in log v towards the rule's target, from the best step > 0
            anchor = self.anchor()
            if anchor is None:
                break
            row = self.rows[anchor]
            values = sorted({r["value"] for r in self.rows if r["c"] == row["c"] and r["value"] > 0})
            below = [v for v in values if v < row["value"]]
            above = [v for v in values if v > row["value"]]
            way = self.direction(row, "full")
            if way >= 0:
                self.evaluate(
                    row["c"], math.sqrt(row["value"] * (above[0] if above else row["value"] * 10)), "full"
                )
            if way <= 0:
                self.evaluate(
                    row["c"], math.sqrt(row["value"] * (below[-1] if below else row["value"] / 10)), "full"
                )
            choice = self.choose("full")
        self.bar.close()
        return choice

    def anchor(self) -> int | None:
        """The full-stage step > 0 the rule prefers (θ* excluded): where the bisection continues from."""
        idx = [i for i, r in enumerate(self.rows) if r["stage"] == "full" and r["value"] > 0]
        if not idx:
            return None
        rows = [self.rows[i] for i in idx]
        if self.oracle:
            return idx[choose_oracle(rows, lambda r: r.get(ORACLE_KEY, math.nan)).index]
        if not self._within(idx, "full"):  # None: every step > 0 diverged
            return self.least_harmful(idx, "full", lone=True)
        try:
            return idx[self.rule.choose(rows, self.sets["full"].ref, self.target).index]
        except ValueError:  # every step > 0 diverged
            return None

    def direction(self, row: dict[str, Any], stage: str) -> int:
        """+1 if a larger step should be closer to the rule's target, -1 if a smaller one, 0 for the oracle."""
        if self.oracle:
            return 0
        return self.rule.direction(row, self.sets[stage].ref, self.target)
