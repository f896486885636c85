"""A run directory's life: written aside, renamed into place only when complete, resumable in between.

``out`` appears only when a run succeeds; an existing ``out`` is never touched. While a run works,
everything goes into ``.<out>.partial-<pid>``, locked (``flock``) so that another process can tell a
live run from a dead one. A run that fails or is interrupted is renamed ``<out>.failed-<time>``; a
killed one (SIGKILL, power loss) leaves its unlocked partial directory. Each step that finishes
(phase 1, each method, each successive-unlearning row) is recorded at once in ``steps/<name>.json`` (written atomically, after the
step's own files). ``resume`` takes the newest failed or abandoned directory of ``out``, checks that
it was written by the same configuration, and continues it: finished steps are read back, not
recomputed; the leftovers of an unfinished step are removed before it runs again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unlearn_lit.report import atomic_write

log = logging.getLogger(__name__)
CONFIG = "config.json"  # the resolved config, written first: what a resume must match
LOCK = ".lock"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped the run; ``directory`` keeps what finished (continue with ``resume``)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"interrupted; finished steps kept in {directory} (continue with --resume)")
        self.directory = directory


@contextlib.contextmanager
def open_run(out: str | Path, config: dict[str, Any], resume: bool = False) -> Iterator[RunDirectory]:
    """A :class:`RunDirectory` for the ``with`` block, with ``run.log`` inside: renamed to ``out`` when
    the block ends, kept as failed (traceback in its ``run.log``) when it raises.

    Raises:
        RunInterrupted: Ctrl-C in the block (also when Lightning turned it into ``sys.exit(1)``).
    """
    rundir = RunDirectory(out, config, resume=resume)
    handler = logging.FileHandler(rundir.path / "run.log")  # appends when resumed
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        with sigint_flag() as interrupted:
            yield rundir
    except BaseException as err:
        with open(rundir.path / "run.log", "a") as f:
            traceback.print_exc(file=f)
        kept = rundir.fail()
        if interrupted or isinstance(err, KeyboardInterrupt):
            raise RunInterrupted(kept) from err
        err.add_note(f"(finished steps kept in {kept}, traceback in its run.log; continue with --resume)")
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    rundir.finish()


@contextlib.contextmanager
def sigint_flag() -> Iterator[list[bool]]:
    """A list that holds True once SIGINT arrived; Ctrl-C still raises KeyboardInterrupt as usual.

    Lightning catches the KeyboardInterrupt inside a Trainer and exits with ``sys.exit(1)``: the flag
    tells that exit from others.
    """
    seen: list[bool] = []

    def handler(signum, frame):
        seen.append(True)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield seen
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


class RunDirectory:
    """The partial directory of run ``out`` (``path``), new or resumed.

    Args:
        out: the run directory to create; it must not exist.
        config: the resolved config (JSON-serializable with ``default=str``).
        resume: continue the newest failed or abandoned partial directory of ``out`` instead of
            starting an empty one; an error when there is none or its config differs.
    """

    def __init__(self, out: str | Path, config: dict[str, Any], resume: bool = False) -> None:
        self.out = Path(out)
        if self.out.exists():
            done = " (that run finished: nothing to resume)" if resume else ""
            raise FileExistsError(f"run directory {self.out} exists{done}; choose another --out or remove it")
        self.config = json.loads(json.dumps(config, default=str))
        self.path = self.out.with_name(f".{self.out.name}.partial-{os.getpid()}")
        self.resumed_from: Path | None = None
        if resume:
            found = self._resumable()
            _check_config(found, self.config)
            os.rename(found, self.path)
            self.resumed_from = found
            log.info("resuming %s (finished steps: %s)", found, ", ".join(self.finished()) or "none")
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            _atomic_json(self.path / CONFIG, self.config)
        self._lock = _lock(self.path)
        if self._lock is None:
            raise RuntimeError(f"{self.path} is locked by another process")

    def finished(self) -> list[str]:
        """Names of the recorded steps."""
        return sorted(p.stem for p in (self.path / "steps").glob("*.json"))

    def done(self, step: str) -> dict[str, Any] | None:
        """What step ``step`` recorded when it finished, or None (not run, or interrupted)."""
        path = self.path / "steps" / f"{step}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def record(self, step: str, data: dict[str, Any]) -> dict[str, Any]:
        """Records that ``step`` finished (atomically); returns ``data`` as it will be read back."""
        (self.path / "steps").mkdir(exist_ok=True)
        _atomic_json(self.path / "steps" / f"{step}.json", data)
        return json.loads(json.dumps(data, default=str))

    def clear(self, *relative: str) -> None:
        """Removes an unfinished step's leftovers (e.g. ``models/ga``, ``logs/ga``) before it runs again."""
        for rel in relative:
            target = self.path / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()

    def finish(self) -> Path:
        """Renames the complete directory to ``out``; returns ``out``."""
        (self.path / LOCK).unlink(missing_ok=True)
        os.rename(self.path, self.out)
        self._release()
        return self.out

    def fail(self) -> Path:
        """Renames the directory to ``<out>.failed-<time>`` (what a resume continues); returns it."""
        failed = self.out.with_name(f"{self.out.name}.failed-{time.strftime('%Y%m%d-%H%M%S')}")
        while failed.exists():  # two failures in one second
            failed = failed.with_name(failed.name + "+")
        os.rename(self.path, failed)
        self._release()
        return failed

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _resumable(self) -> Path:
        """The newest failed or abandoned (unlocked) partial directory of ``out``."""
        parent, name = self.out.parent, self.out.name
        candidates = [*parent.glob(f"{name}.failed-*"), *parent.glob(f".{name}.partial-*")]
        live = []
        free = []
        for path in candidates:
            fd = _lock(path)
            if fd is None:
                live.append(path)
            else:
                os.close(fd)
                free.append(path)
        if not free:
            running = f"; {live[0]} belongs to a running process" if live else ""
            raise FileNotFoundError(
                f"nothing to resume for {self.out}: no {name}.failed-* or abandoned .{name}.partial-* "
                f"directory beside it{running}"
            )
        return max(free, key=lambda p: p.stat().st_mtime)


def _check_config(directory: Path, config: dict[str, Any]) -> None:
    path = directory / CONFIG
    if not path.is_file():
        raise ValueError(f"cannot resume {directory}: it has no {CONFIG} (written before resume existed)")
    differs = _differences(json.loads(path.read_text()), config)
    if differs:
        raise ValueError(
            f"cannot resume {directory}: it was run with another configuration ({'; '.join(differs[:5])}); "
            "resume with the same config and options"
        )


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(old.keys() | new.keys(), key=str):
            out += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
        return out
    return [] if old == new else [f"{where}: {old!r} then, {new!r} now"]


def _lock(directory: Path) -> int | None:
    """An exclusive lock on ``directory`` (a descriptor to keep open), or None when another process holds it."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _atomic_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=1, default=str))
