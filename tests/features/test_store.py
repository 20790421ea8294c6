import json

import numpy as np
import pytest

from vadkit.features.store import FeatureStore, StoreMismatchError, safe_name


def test_write_load_and_skip(tmp_path):
    store = FeatureStore(tmp_path / "s", {"crops": 1, "snippet_len": 16})
    store.write("train/01", np.ones((3, 8)), num_frames=50, fps=25.0)
    assert store.has("train/01") and not store.has("train/02")
    reopened = FeatureStore(tmp_path / "s", {"crops": 1, "snippet_len": 16})
    assert reopened.load("train/01").shape == (3, 8) and reopened.load("train/01").dtype == np.float32
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["videos"]["train/01"]["num_frames"] == 50
    assert (tmp_path / "s" / f"{safe_name('train/01')}.npy").exists()
    leftovers = [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".") and p.name != ".manifest.lock"]
    assert not leftovers  # no temporary files left (the lock file stays, empty)


def test_mismatched_settings_are_refused_naming_the_setting(tmp_path):
    FeatureStore(tmp_path, {"crops": 1, "input_range": "unit"}).write("a", np.zeros((1, 4)), 16, 25)
    with pytest.raises(StoreMismatchError, match=r"crops: store has 1, requested 10"):
        FeatureStore(tmp_path, {"crops": 10, "input_range": "unit"})


def test_missing_store_and_unknown_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="vadkit extract"):
        FeatureStore(tmp_path / "none")
    store = FeatureStore(tmp_path, {"x": 1})
    with pytest.raises(KeyError, match="not in the feature store"):
        store.load("nope")


def test_video_file_without_manifest_entry_is_not_finished(tmp_path):
    store = FeatureStore(tmp_path, {"x": 1})
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))  # e.g. left by a crash before the manifest was updated
    assert not store.has("a")


def test_stale_temporary_files_of_interrupted_writes_are_removed(tmp_path):
    import os
    import time

    root = tmp_path / "store"
    FeatureStore(root, {"x": 1}).write("v", np.zeros((2, 4), np.float32), 32, 25.0)
    stale = [root / ".v.npy.ab12cd_3.npy", root / ".manifest.json.zz99yy00"]
    fresh = root / ".w.npy.k2j3h4g5.npy"  # a write that may still be in progress
    keep = root / ".hidden_notes"
    for path in (*stale, fresh, keep):
        path.write_bytes(b"partial")
    hours_ago = time.time() - 2 * 3600
    for path in (*stale, keep):
        os.utime(path, (hours_ago, hours_ago))
    FeatureStore(root, {"x": 1})  # opened to write: cleans up
    assert not any(p.exists() for p in stale) and fresh.exists() and keep.exists()


def test_two_processes_writing_into_one_store_lose_no_manifest_entry(tmp_path):
    """Concurrent extractions into one store: every video each process wrote is in the manifest afterwards (without
    the lock and merge, the last writer's in-memory manifest overwrote the other's: 150 of 300 entries survived)."""
    import subprocess
    import sys
    import time

    root = tmp_path / "store"
    script = ("import os, sys, time, numpy as np\n"
              "from vadkit.features.store import FeatureStore\n"
              "store = FeatureStore(sys.argv[1], {'x': 1})\n"
              "while not os.path.exists(os.path.join(sys.argv[1], 'go')):\n"
              "    time.sleep(0.01)\n"
              "for i in range(150):\n"
              "    store.write(f'{sys.argv[2]}/{i}', np.zeros((2, 4), np.float32), 32, 25.0)\n")
    FeatureStore(root, {"x": 1}).save_manifest()
    workers = [subprocess.Popen([sys.executable, "-c", script, str(root), name]) for name in "ab"]
    time.sleep(2.0)  # both processes started and waiting: they write at the same time
    (root / "go").touch()
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    videos = FeatureStore(root).videos
    assert len(videos) == 300 and all(f"{n}/{i}" in videos for n in "ab" for i in range(150))
