"""Test-wide settings: offline hubs, W&B off, deterministic CPU threads."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

# Tests run tiny models: one intra-op thread is fastest and immune to spin-waiting when the
# machine is shared (2 threads made a tiny-ViT step 8x slower on a busy 2-core machine).
torch.set_num_threads(1)
