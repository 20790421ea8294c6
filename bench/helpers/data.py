"""Where the benchmarks find the real data (imported by bench/*.py; not a benchmark)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """``$VADKIT_DATA``, else ``../shared/data`` beside the repository; exits with a message when UCSD Ped2's test
    frames are not under it."""
    root = Path(os.environ.get("VADKIT_DATA", REPO.parent / "shared" / "data"))
    if not (root / "ucsd_ped2" / "testing" / "frames").is_dir():
        sys.exit(f"UCSD Ped2 not found under {root}: set VADKIT_DATA")
    return root
