"""Fuzz test (issues 13, 25): mutated copies of every ground-truth format vadkit reads, compressed .mat bombs, the
box files, videos and frame folders, model files and the viewer's result.json, run through the public parsers,
dataset constructors, the video decoder, ``load_detector`` and the viewer's catalog, raise only the documented
errors, never hang and never take much memory (an input under 1 MB: 500 MB at most, the process included).

The campaign is ``bench/fuzz.py`` (seeded; the long form is ``python bench/fuzz.py --n 10000``), run here in a child
process (a crash of the interpreter, a hang or a memory blow-up fails the test instead of ending the session).
By default about half a minute: ``VADKIT_FUZZ_N`` sets the number of inputs, ``VADKIT_FUZZ_SEED`` the seed.
The seed inputs are built by the fuzzer itself; the real samples of ``../shared/data`` are added when present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FUZZ = REPO / "bench" / "fuzz.py"

DATASET_TARGETS = ("ucsd_m,ucsd_mat,ucsd_masks,avenue_vollabel,avenue_mat,lad2000_gt,shanghaitech_mask,"
                   "shanghaitech_lists,ucf_annotation,ucf_lists,ucf_gt_arrays,xd_annotations,xd_gt_arrays,range_csv,"
                   "range_json,split_json,folder_links")
BOX_TARGETS = "boxes_npz,boxes_npy"
VIDEO_TARGETS = "video_file,frame_folder"
MAT_TARGETS = "ucsd_mat,avenue_mat,avenue_vollabel,lad2000_gt"  # with compressed bombs among their inputs
MODEL_RESULT_TARGETS = "model_file,result_json"
PEAK_MEMORY_MB = 1024


def run_fuzz(targets: str, n: int, tmp_path: Path) -> dict:
    seed = int(os.environ.get("VADKIT_FUZZ_SEED", "0"))
    command = [sys.executable, str(FUZZ), "--n", str(n), "--seed", str(seed), "--targets", targets,
               "--workdir", str(tmp_path / "work"), "--save-failures", str(tmp_path / "failures")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=max(600, n // 10))
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"bench/fuzz.py printed no summary (exit {result.returncode}): {result.stderr[-3000:]}"
    return json.loads(lines[-1])


def verdict(summary: dict) -> str:
    shown = {key: summary[key] for key in ("other", "other_examples", "hangs", "hang_examples", "peak_memory_mb",
                                           "memory_examples")}
    return json.dumps(shown, indent=1)


def test_dataset_parsers_raise_only_documented_errors(tmp_path):
    """DatasetError (or VideoReadError / FileNotFoundError) for every malformed ground truth, list, label or split
    file and every symlink loop; no other exception, no crash, no hang, no memory blow-up, no wrong count."""
    n = int(os.environ.get("VADKIT_FUZZ_N", "8000"))
    summary = run_fuzz(DATASET_TARGETS, n, tmp_path)
    assert summary["inputs"] == n
    assert summary["other"] == 0, verdict(summary)
    assert summary["hangs"] == 0, verdict(summary)
    assert summary["peak_memory_mb"] < PEAK_MEMORY_MB, verdict(summary)
    assert summary["unnamed"] == 0, json.dumps(summary["unnamed_examples"], indent=1)
    # the campaign exercises both sides: most mutated inputs are refused, and some are still read
    assert summary["accepted"] > n // 50 and summary["clean_errors"] > n // 2


def test_box_files_raise_only_value_errors(tmp_path):
    """``load_boxes`` on mutated .npz / VEC .npy box files raises BoxFileError (a ValueError) naming the file, or
    FileNotFoundError only."""
    n = int(os.environ.get("VADKIT_FUZZ_N", "8000")) // 8
    summary = run_fuzz(BOX_TARGETS, n, tmp_path)
    assert summary["inputs"] == n
    assert summary["other"] == 0 and summary["hangs"] == 0, verdict(summary)
    assert summary["peak_memory_mb"] < PEAK_MEMORY_MB, verdict(summary)
    assert summary["unnamed"] == 0, json.dumps(summary["unnamed_examples"], indent=1)


def test_video_files_and_frame_folders_raise_only_video_read_errors(tmp_path):
    """Mutated mp4 / avi files and frame folders with a mutated frame, decoded through ``open_video``: only
    VideoReadError (naming the file) or FileNotFoundError, and no image header that announces gigabytes is
    decoded."""
    n = int(os.environ.get("VADKIT_FUZZ_N", "8000")) // 8
    summary = run_fuzz(VIDEO_TARGETS, n, tmp_path)
    assert summary["inputs"] == n
    assert summary["other"] == 0 and summary["hangs"] == 0, verdict(summary)
    assert summary["peak_memory_mb"] < PEAK_MEMORY_MB, verdict(summary)
    assert summary["unnamed"] == 0, json.dumps(summary["unnamed_examples"], indent=1)


def test_compressed_mat_bombs_stay_under_the_memory_bound(tmp_path):
    """The .mat targets, compressed bombs among their inputs (up to 900 MB inflated from under 1 MB): refused or
    read within 500 MB each (an input past it counts under ``other`` as MemoryBound), every input's peak measured."""
    n = int(os.environ.get("VADKIT_FUZZ_N", "8000")) // 20
    summary = run_fuzz(MAT_TARGETS, n, tmp_path)
    assert summary["inputs"] == n and summary["peaks_measured"] == n
    assert summary["other"] == 0 and summary["hangs"] == 0, verdict(summary)
    assert summary["peak_memory_mb"] < 500, verdict(summary)


def test_model_files_and_results_raise_only_documented_errors(tmp_path):
    """``load_detector`` on malformed-but-safe and pickled model files: ModelFileError naming the file (or
    FileNotFoundError); the viewer's list always answers for malformed result.json files, every folder listed."""
    n = int(os.environ.get("VADKIT_FUZZ_N", "8000")) // 8
    summary = run_fuzz(MODEL_RESULT_TARGETS, n, tmp_path)
    assert summary["inputs"] == n
    assert summary["other"] == 0 and summary["hangs"] == 0, verdict(summary)
    assert summary["peak_memory_mb"] < PEAK_MEMORY_MB, verdict(summary)
    assert summary["unnamed"] == 0, json.dumps(summary["unnamed_examples"], indent=1)
    assert summary["accepted"] > n // 50 and summary["clean_errors"] > n // 2
