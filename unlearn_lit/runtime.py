"""Where the run's models live between Lightning phases (a first piece of METHOD.md's runtime).

Lightning moves a module to the accelerator for a phase and back to the CPU at teardown. The phases
that run outside a Trainer -- the SO-type statistics and selection, SSD, evaluation -- run wherever the
model sits, so the pipeline puts θ*, RT and every unlearned model on the run's device after each phase.
"""

from __future__ import annotations

import torch

ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


def device_for(accelerator: str) -> torch.device:
    """``cuda`` for ``gpu``/``cuda``, and for ``auto`` when a GPU is present; else ``cpu``."""
    if accelerator not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {accelerator!r}; valid choices: {', '.join(ACCELERATORS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"accelerator {accelerator!r} was requested but torch sees no CUDA device")
    if accelerator == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")
