"""Shared test helpers: where the real data lives, and tiny synthetic videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$VADKIT_DATA`` or ``<repo>/../shared/data``, when it exists."""
    candidates = [os.environ.get("VADKIT_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data; the test is skipped, with the reason shown, when it is absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("real data not found: set VADKIT_DATA or place it at ../shared/data beside the repository")
    return root


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA device: without one they are skipped and say why."""
    import torch

    if torch.cuda.is_available():
        return
    reason = pytest.mark.skip(reason=f"no CUDA device: torch {torch.__version__} "
                                     f"({'CPU-only build' if torch.version.cuda is None else 'no GPU visible'}); "
                                     f"bench/gpu_check.sh runs these on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(reason)
