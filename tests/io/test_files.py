"""The atomic writes every run folder relies on: an interrupted write leaves the old file whole and never a file
that looks finished; the temporary files a killed process leaves are recognised and removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vadkit.io.files import (atomic_path, atomic_save_npy, atomic_write_bytes, atomic_write_json, json_safe,
                             remove_stale_temporaries, safe_name, sha256_file)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"auc": 0.9})
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        atomic_write_json(target, {"auc": object()})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text('{"auc": 0.1')  # half a file, then Ctrl-C
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"auc": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_killed_writer_leaves_the_old_file_whole_and_a_temporary_that_is_cleaned(tmp_path):
    target = tmp_path / "features.npy"
    atomic_save_npy(target, np.arange(10, dtype=np.float32))
    before = sha256_file(target)
    writer = (f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
              "from vadkit.io.files import atomic_path\n"
              f"with atomic_path({str(target)!r}, suffix='.npy') as tmp:\n"
              "    with open(tmp, 'wb') as handle:\n"
              "        handle.write(b'x' * 1000); handle.flush(); print('writing', flush=True)\n"
              "        import time; time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)  # no cleanup code runs: as a power cut
        process.wait(timeout=30)
    finally:
        process.kill()
    assert sha256_file(target) == before and np.load(target).tolist() == list(range(10))
    left = [p for p in tmp_path.iterdir() if p.name != "features.npy"]
    assert len(left) == 1 and left[0].name.startswith(".features.npy.")
    assert remove_stale_temporaries(tmp_path, older_than_s=3600) == []  # young: may be a write in progress
    old = time.time() - 7200
    os.utime(left[0], (old, old))
    assert remove_stale_temporaries(tmp_path, older_than_s=3600) == left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npy"]


def test_written_files_are_readable_by_others_and_json_is_strict(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"abc")
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    atomic_write_json(tmp_path / "b.json", {"x": float("nan"), "y": [np.float32(1.5), np.int64(2)], "p": Path("/a")})
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": None, "y": [1.5, 2], "p": "/a"}
    assert json_safe({"a": (float("inf"), 1.0)}) == {"a": [None, 1.0]}
    assert safe_name("Fighting/Fighting003") == "Fighting__Fighting003"
