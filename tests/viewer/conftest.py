"""Fixtures for the viewer tests (builders live in viewer_builders.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from viewer_builders import make_frames, toy_scores, write_run_folder, write_scored_folder


@pytest.fixture(scope="session")
def runs_tree(tmp_path_factory) -> Path:
    """``runs/`` with a run at depth 1, scored videos at depths 1 and 2, and things that must not be listed."""
    runs = tmp_path_factory.mktemp("viewer") / "runs"
    frames = make_frames()
    write_run_folder(runs / "arnet-ped2-20260101-000000")
    write_scored_folder(runs / "scored" / "clip", frames, toy_scores())
    write_scored_folder(runs / "walk", make_frames(60, abnormal=(100, 100)), np.full(60, 0.1))
    write_scored_folder(runs / "too" / "deep" / "clip3", frames[:10], toy_scores(10))  # depth 3: not listed
    (runs / "unfinished").mkdir()
    (runs / "unfinished" / "annotated.mp4").write_bytes(b"partial")  # no result.json yet: not listed
    write_run_folder(runs / ".hidden-run")  # hidden: not listed
    return runs
