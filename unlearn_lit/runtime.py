"""The run's runtime: one typed ``trainer`` group that every phase receives (METHOD.md's runtime).

:class:`Runtime` holds the Lightning settings of a run -- accelerator, devices, nodes, strategy,
precision, progress bars -- and is built once from the run config (``--trainer.accelerator gpu``).
Every Lightning phase builds its ``Trainer`` from :meth:`Runtime.trainer_kwargs`: θ*/RT training,
phase 1 + search, the fine-tuning methods. The phases that run outside a Trainer -- the SO-type
statistics and selection, SSD, evaluation, the relearning attack -- run on :meth:`Runtime.device`, and
the pipeline puts θ*, RT and every unlearned model there after each Lightning phase (Lightning returns
modules on the CPU at teardown).

Which phases run data-parallel (``devices > 1`` or several nodes, e.g. ``--trainer.devices 2
--trainer.strategy ddp_spawn``):

- θ*/RT training, phase 1 + search, the fine-tuning methods and the SO-type statistics run under the
  runtime's strategy. Phase 1 and the SO statistics shard examples and all-reduce their sums, so the
  mask and the SO step are those of one process; the fine-tuning methods train with a per-process
  batch (the global batch is ``world_size`` times it) and the hard freeze intact, and every process
  runs the same checkpoint selection on the same weights;
- the SO step search, SSD, evaluation and the relearning attack run in the main process on the
  runtime's root device; the run directory and ``metrics.json`` are written once, by it.

Precision (``--trainer.precision``) means one thing in every phase, in one process or several:

- a ``*-true`` precision (``bf16-true``, ``16-true``, ``64-true``) is the dtype of the weights. θ*
  and RT are built in it before they are trained or loaded (a float64 file is never read through
  float32), and the pipeline places them once (:meth:`Runtime.place`), so every phase computes with
  the same θ*. Otherwise a one-process Lightning pass (phase 1) would convert θ* in place halfway
  through a run, and under ``ddp_spawn`` the workers would compute on converted copies while the
  main process kept float32. A ``*-true`` precision of the training recipe alone (no
  ``trainer.precision``) sets θ*'s and RT's dtype the same way, whether trained or cached. Entry
  points handed a model of another dtype refuse it (:func:`check_weights`);
- a ``*-mixed`` precision keeps float32 weights and computes the Lightning phases under autocast;
  the SO-type methods' statistics run under the same autocast in one process as in a distributed
  pass (:meth:`Runtime.autocast`), equal up to the rounding of sums over differently formed batches
  (the distributed pass forms text batches by length, and every process sums its own shard).
  The selection's forward passes follow the run's ``selection_precision`` (``auto``: this autocast;
  :func:`~unlearn_lit.selection.sets.selection_dtype`). Evaluation, SSD, SalUn's saliency and the
  successive requests' statistics (one process only; the memory-aided variant subtracts Fishers)
  compute in the weights' dtype.

Spawn-type strategies (``ddp_spawn``) keep the pipeline in one main process; with several processes
any other strategy is refused before any work, with the reason: FSDP (the one-process phases need the
whole model on one device, and Lightning's FSDP needs a GPU, so no test here could cover it), plain
``ddp`` (it re-launches the whole command in every process) and ``num_nodes > 1`` (every rank would
run the comparison: the pipeline is not rank-aware yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# torch is imported where it is used: the CLI validates a run's config (this dataclass included) without
# importing it. Not under TYPE_CHECKING either: jsonargparse runs those imports to resolve annotations.

ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
PRECISIONS = ("32-true", "32", "64-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true")
TRUE_DTYPES = {"64-true": "float64", "bf16-true": "bfloat16", "16-true": "float16"}  # the weights' dtype
MIXED = ("16-mixed", "bf16-mixed")  # float32 weights, autocast


def true_dtype(precision: str | None) -> Any:
    """The weights' dtype of a ``*-true`` precision (``torch.float64`` for ``64-true``); None else."""
    name = TRUE_DTYPES.get(precision or "")
    if name is None:
        return None
    import torch

    return getattr(torch, name)


def check_weights(model: Any, precision: str | None) -> None:
    """Refuses to hand ``model`` to a Trainer that would convert it in place: a ``*-true`` precision
    casts its module to that dtype, which would change a caller's θ* for everything after."""
    dtype = true_dtype(precision)
    have = next(model.parameters()).dtype
    if dtype is not None and have != dtype:
        raise ValueError(
            f"precision {precision!r} computes with {dtype} weights but the model's are {have}: the Trainer "
            f"would convert the model in place; cast it first (Runtime(precision={precision!r}).place(model))"
        )


def device_for(accelerator: str) -> Any:
    """The ``torch.device``: ``cuda`` for ``gpu``/``cuda``, and for ``auto`` when a GPU is present; else ``cpu``."""
    import torch

    if accelerator not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {accelerator!r}; valid choices: {', '.join(ACCELERATORS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"accelerator {accelerator!r} was requested but torch sees no CUDA device")
    if accelerator == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


@dataclass
class Runtime:
    """Where and how every phase runs (``--trainer.*`` on the command line).

    Attributes:
        accelerator: ``auto`` (a GPU when present), ``cpu``, ``gpu`` or ``cuda``.
        devices: devices per node for the data-parallel phases (θ*/RT training, phase 1); ``auto``
            takes every visible device. 1 by default: the one-process phases need no more.
        num_nodes: nodes; only 1 is supported (a multi-node run needs a rank-aware pipeline).
        strategy: Lightning strategy of the data-parallel phases: a spawn-type one (``ddp_spawn``)
            when there are several processes (plain ``ddp`` re-launches the whole command per process;
            FSDP is refused, see the module docstring); with ``devices: 1`` it has nothing to
            distribute.
        precision: Lightning precision of every Trainer phase (``bf16-mixed`` on recent GPUs); None:
            the training recipe's precision for θ*/RT and ``32-true`` elsewhere. A ``*-true``
            precision is also the dtype θ* and RT are cast to when loaded (see the module
            docstring). Phase 1 accumulates its statistics in float64 whatever the forward precision.
        progress_bar: show progress bars in every phase.
    """

    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.accelerator not in ACCELERATORS:
            raise ValueError(
                f"unknown trainer.accelerator {self.accelerator!r}; valid choices: {', '.join(ACCELERATORS)}"
            )
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown trainer.precision {self.precision!r}; valid choices: {', '.join(PRECISIONS)}"
            )
        if isinstance(self.devices, str) and self.devices != "auto" and not self.devices.isdigit():
            raise ValueError(f"trainer.devices must be a positive number or 'auto', got {self.devices!r}")
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)
        if isinstance(self.devices, int) and self.devices < 1 or self.num_nodes < 1:
            raise ValueError(
                f"trainer.devices and trainer.num_nodes must be >= 1, got {self.devices}, {self.num_nodes}"
            )
        self._check_supported()

    def _check_supported(self) -> None:
        """Layouts the pipeline cannot run are refused before any work, with what to use instead."""
        if "fsdp" in self.strategy.lower():
            raise ValueError(
                f"trainer.strategy {self.strategy!r} is not supported: the SO-type methods, SSD and "
                "evaluation need the whole model on one device; use ddp_spawn (or one device)"
            )
        if self.num_nodes > 1:
            raise ValueError(
                "trainer.num_nodes > 1 is not supported yet: every rank would run the whole comparison "
                "(the pipeline is not rank-aware); use one node with --trainer.strategy ddp_spawn"
            )
        if self.distributed and "spawn" not in self.strategy:
            raise ValueError(
                f"trainer.strategy {self.strategy!r} with {self.world_size} processes would re-launch the "
                "whole command in every process; use --trainer.strategy ddp_spawn"
            )

    @property
    def distributed(self) -> bool:
        """Whether the data-parallel phases start more than one process."""
        return self.world_size > 1

    @property
    def world_size(self) -> int:
        """Processes of the data-parallel phases (``devices: auto`` counts the visible GPUs)."""
        devices = self.devices
        if devices == "auto":
            import torch

            devices = torch.cuda.device_count() if self.device().type == "cuda" else 1
        return max(int(devices), 1) * self.num_nodes

    def device(self) -> Any:
        """The root ``torch.device`` of the one-process phases (the first GPU when the accelerator is one)."""
        return device_for(self.accelerator)

    @property
    def dtype(self) -> Any:
        """The weights' dtype of a ``*-true`` precision (``torch.bfloat16`` for ``bf16-true``); None
        for the others, which keep the model's own."""
        return true_dtype(self.precision)

    def place(self, model: Any, dtype: Any = None) -> Any:
        """``model`` on :meth:`device`, cast to ``dtype`` (default :attr:`dtype`) when one is set (in
        place, as ``Module.to``; returns it)."""
        return model.to(device=self.device(), dtype=dtype or self.dtype)

    def autocast(self) -> Any:
        """The autocast context a ``*-mixed`` precision computes a Lightning pass under (Lightning's
        own), for the same computation outside a Trainer; a null context for every other precision."""
        if self.precision not in MIXED:
            import contextlib

            return contextlib.nullcontext()
        from lightning.pytorch.plugins.precision import MixedPrecision

        return MixedPrecision(self.precision, device=self.device().type).forward_context()

    def trainer_kwargs(
        self,
        *,
        precision: str | None = None,
        logger: Any = None,
        callbacks: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """Keyword arguments of ``lightning.Trainer`` for one phase.

        Args:
            precision: the phase's default precision when the runtime sets none.
            logger: a Lightning logger (None: no logger).
            callbacks: the phase's callbacks.
        """
        if self.distributed and "spawn" in self.strategy:
            # Spawned workers receive the datasets by pickling. With torch's default file-descriptor
            # sharing, numpy-backed example tensors failed to rebuild ("unable to resize file");
            # shared-memory files work.
            import torch.multiprocessing

            torch.multiprocessing.set_sharing_strategy("file_system")
        kwargs: dict[str, Any] = {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "num_nodes": self.num_nodes,
            "strategy": self.strategy,
            "precision": self.precision or precision or "32-true",
            "enable_progress_bar": self.progress_bar,
            "logger": logger if logger is not None else False,
            "callbacks": list(callbacks),
        }
        return kwargs
