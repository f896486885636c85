"""Test-wide settings: offline hubs, W&B off, the torch intra-op thread count.

``UNLEARN_LIT_TEST_THREADS`` (default 1) sets the intra-op thread count of every test. One thread is
fastest for tiny models on a shared 2-core machine (2 threads made a tiny-ViT step 8x slower); CI runs
the float-sensitive modules a second time with 2 threads, so that a test assuming one reduction order
fails in CI rather than on a user's machine.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

TEST_THREADS = int(os.environ.get("UNLEARN_LIT_TEST_THREADS", "1"))
torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def test_threads():
    """Every test starts with ``UNLEARN_LIT_TEST_THREADS`` intra-op threads (a run may have changed it)."""
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(TEST_THREADS)


def pytest_report_header(config):
    return f"torch intra-op threads: {TEST_THREADS} (UNLEARN_LIT_TEST_THREADS)"


from tests.toys import toy_inputs  # noqa: E402,F401  (fixture of every test module)
