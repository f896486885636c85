"""unlearn_lit: module-aware parameter-efficient machine unlearning (MAPE-Unlearn) in PyTorch Lightning."""

__version__ = "0.1.0"
