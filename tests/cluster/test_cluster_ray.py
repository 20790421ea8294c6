"""``vadkit extract --ray`` / ``vadkit score --ray`` (vadkit.inference.cluster) on a two-node Ray cluster on this
machine: the same feature store and scored folders as a local run, bit for bit where the numbers are concerned; a
killed worker or driver loses nothing; a bad video is listed and the job goes on; no Ray -> the install hint."""

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

from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
from vadkit.features.store import FeatureStore
from vadkit.cli_output import ray_flag_argv
from vadkit.inference.cluster import (INSTALL_HINT, RayNotInstalledError, extract_videos_ray, looks_like_address,
                                      score_videos_ray)

BACKEND = "torch"  # the same runtime locally and on the workers (auto may measure another one fastest)
ENTRY_KEYS = ("file", "num_frames", "fps", "num_snippets", "shape", "source")


def needs_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        print("ray is not installed: pip install 'vadkit[ray]' to run the cluster tests")
        pytest.skip("ray is not installed (pip install 'vadkit[ray]')")


# ---------------------------------------------------------------------------------------------------------------
# Without a cluster
# ---------------------------------------------------------------------------------------------------------------
def test_bare_ray_flag_means_a_local_cluster():
    assert ray_flag_argv(["extract", "--ray", "--out", "s"]) == ["extract", "--ray=local", "--out", "s"]
    assert ray_flag_argv(["score", "a.mp4", "--ray"]) == ["score", "a.mp4", "--ray=local"]
    assert ray_flag_argv(["score", "--ray", "a.mp4"]) == ["score", "--ray=local", "a.mp4"]  # a path is no address
    assert ray_flag_argv(["score", "--ray", "auto", "a.mp4"]) == ["score", "--ray", "auto", "a.mp4"]
    assert ray_flag_argv(["score", "--ray", "10.1.2.3:6379"]) == ["score", "--ray", "10.1.2.3:6379"]
    assert ray_flag_argv(["score", "--ray=auto"]) == ["score", "--ray=auto"]
    assert [looks_like_address(a) for a in ("auto", "local", "head:6379", "ray://h:10001", "clip.mp4", "a/b:1")] == \
        [True, True, True, True, False, False]


def test_without_ray_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    from vadkit.cli_output import USER_ERRORS

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    with pytest.raises(RayNotInstalledError) as caught:
        extract_videos_ray([("v", tmp_path / "v.mp4")], tmp_path / "store", progress=False)
    assert str(caught.value) == INSTALL_HINT == "Ray is not installed: pip install 'vadkit[ray]'"
    assert isinstance(caught.value, USER_ERRORS)  # the CLI prints it as one line, no traceback
    with pytest.raises(RayNotInstalledError):
        score_videos_ray([tmp_path], "ped2-knn", tmp_path / "out", progress=False)


def test_an_address_where_no_cluster_listens_fails_at_once(tmp_path, monkeypatch):
    needs_ray()
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="no Ray cluster answers at 127.0.0.1:1"):
        extract_videos_ray([("v", tmp_path / "v.mp4")], tmp_path / "store", address="127.0.0.1:1", progress=False)
    assert time.perf_counter() - start < 60  # a generous bound on a shared machine: Ray retries for minutes otherwise
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # what "auto" stands for: a cluster that has stopped
    with pytest.raises(ConnectionError, match="no Ray cluster answers at 127.0.0.1:1"):
        extract_videos_ray([("v", tmp_path / "v.mp4")], tmp_path / "store", address="auto", progress=False)


# ---------------------------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_store(tmp_path_factory, clips, one_thread):
    """The clips extracted locally, one torch thread (the reference)."""
    root = tmp_path_factory.mktemp("local") / "store"
    extractor = SnippetExtractor(ExtractionSettings(), batch_size=4, threads=1, backend=BACKEND)
    extract_videos(clips, root, extractor, progress=False)
    return FeatureStore(root)


def same_store(ray_root: Path, local: FeatureStore, ids) -> None:
    """Bit-identical features, the same settings and the same manifest entries; no temporary file left."""
    store = FeatureStore(ray_root)
    assert store.settings == local.settings
    for vid in ids:
        assert np.array_equal(store.load(vid), local.load(vid)), vid
        assert {k: store.videos[vid][k] for k in ENTRY_KEYS} == {k: local.videos[vid][k] for k in ENTRY_KEYS}
    leftovers = [p.name for p in Path(ray_root).iterdir() if p.name.startswith(".") and p.name != ".manifest.lock"]
    assert leftovers == []


def test_extract_on_ray_equals_local_and_a_rerun_skips(tmp_path, ray_address, clips, local_store):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    videos = clips[:2] + [("broken", broken)] + clips[2:]
    seen = []
    report = extract_videos_ray(videos, tmp_path / "store", threads=1, address=ray_address, progress=False,
                                backend=BACKEND, on_video=lambda vid, worker: seen.append((vid, worker["node"])))
    ids = [vid for vid, _ in clips]
    assert sorted(report["done"]) == sorted(ids) and report["skipped"] == []
    assert [vid for vid, _ in report["failed"]] == ["broken"] and report["failed"][0][1]  # listed with its error
    assert report["frames"] == sum(local_store.videos[v]["num_frames"] for v in ids) and report["workers"] == 2
    assert len({node for _, node in seen}) == 2  # both nodes worked
    same_store(tmp_path / "store", local_store, ids)
    assert "broken" not in FeatureStore(tmp_path / "store").videos

    again = extract_videos_ray(videos, tmp_path / "store", threads=1, address=ray_address, progress=False,
                               backend=BACKEND)
    assert again["done"] == [] and sorted(again["skipped"]) == sorted(ids)
    assert [vid for vid, _ in again["failed"]] == ["broken"]


def test_workers_that_cannot_start_give_their_error(tmp_path, ray_address, clips):
    with pytest.raises(RuntimeError, match="no Ray worker could start: FileNotFoundError: I3D checkpoint not found"):
        extract_videos_ray(clips[:2], tmp_path / "store", weights=tmp_path / "missing.pt", threads=1,
                           address=ray_address, progress=False, backend=BACKEND)
    assert not (tmp_path / "store").exists()


def test_ped2_clips_on_ray_equal_local(tmp_path, ray_address, shared_data, one_thread):
    folder = shared_data / "ucsd_ped2" / "training" / "frames"
    if not folder.is_dir():
        pytest.skip(f"UCSD Ped2 training frames not found at {folder}")
    videos = [(f"ped2/{p.name}", p) for p in sorted(folder.iterdir())[:2]]
    extractor = SnippetExtractor(ExtractionSettings(), batch_size=4, threads=1, backend=BACKEND)
    extract_videos(videos, tmp_path / "local", extractor, progress=False)
    report = extract_videos_ray(videos, tmp_path / "ray", threads=1, address=ray_address, progress=False,
                                backend=BACKEND)
    assert sorted(report["done"]) == sorted(v for v, _ in videos) and report["failed"] == []
    same_store(tmp_path / "ray", FeatureStore(tmp_path / "local"), [v for v, _ in videos])


def test_a_killed_worker_loses_no_video(tmp_path, ray_address, clips, local_store):
    """SIGKILL the worker that finished the first video (it has the next one by then): Ray restarts it and runs that
    video again; the job ends with every video, identical, and nothing partial in the store."""
    order, killed = [], []

    def kill_first(vid: str, worker: dict) -> None:
        order.append((vid, worker["pid"]))
        if not killed:
            killed.append(worker["pid"])
            os.kill(worker["pid"], signal.SIGKILL)

    report = extract_videos_ray(clips, tmp_path / "store", threads=1, address=ray_address, progress=False,
                                backend=BACKEND, on_video=kill_first)
    ids = [vid for vid, _ in clips]
    assert sorted(report["done"]) == sorted(ids) and report["failed"] == []
    assert all(pid != killed[0] for _, pid in order[1:])  # the killed process wrote nothing more
    before = {order[0][1]} | ({order[1][1]} if len(order) > 1 and order[1][1] != killed[0] else set())
    assert any(pid not in before for _, pid in order[1:])  # a restarted worker did a video
    same_store(tmp_path / "store", local_store, ids)


DRIVER = """
import sys
from vadkit.inference.cluster import extract_videos_ray
videos = [tuple(v.split("=", 1)) for v in sys.argv[3:]]
extract_videos_ray(videos, sys.argv[2], threads=1, address=sys.argv[1], progress=False, backend="torch")
"""


def test_a_killed_driver_resumes_from_the_store(tmp_path, ray_address, clips, local_store):
    root = tmp_path / "store"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, ray_address, str(root)] +
                              [f"{vid}={path}" for vid, path in clips])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            manifest = root / "manifest.json"
            if manifest.is_file() and json.loads(manifest.read_text())["videos"]:
                break
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(timeout=30)
    finished = set(FeatureStore(root).videos)
    assert finished, "the driver was killed before it wrote anything"
    report = extract_videos_ray(clips, root, threads=1, address=ray_address, progress=False, backend=BACKEND)
    ids = [vid for vid, _ in clips]
    assert set(report["skipped"]) == finished and set(report["done"]) == set(ids) - finished
    same_store(root, local_store, ids)


LOCAL_DRIVER = """
import json, os, sys
from vadkit.inference.cluster import extract_videos_ray
workers = []
report = extract_videos_ray([("clip", sys.argv[1])], sys.argv[2], threads=1, progress=False, backend="torch",
                            on_video=lambda vid, worker: workers.append(worker))
print(json.dumps({"done": report["done"], "ip": workers[0]["ip"], "left": os.environ.get(sys.argv[3])}))
"""


def test_no_address_starts_a_local_cluster_on_the_loopback_address(tmp_path, clips, request):
    """``--ray`` alone: a local cluster, its services on 127.0.0.1, stopped afterwards; the same features."""
    needs_ray()
    local_store = request.getfixturevalue("local_store")
    from vadkit.inference.cluster import LOOPBACK_ENV

    env = {k: v for k, v in os.environ.items() if k != LOOPBACK_ENV}  # the module must set it itself
    done = subprocess.run([sys.executable, "-c", LOCAL_DRIVER, str(clips[2][1]), str(tmp_path / "store"),
                           LOOPBACK_ENV], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"done": ["clip"], "ip": "127.0.0.1", "left": None}
    assert np.array_equal(FeatureStore(tmp_path / "store").load("clip"), local_store.load(clips[2][0]))


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
def test_score_on_ray_writes_the_local_folders(tmp_path, ray_address, one_thread, make_video):
    from vadkit.inference import score_videos

    inputs = tmp_path / "in"
    make_video(inputs / "walk.mp4", 40)
    make_video(inputs / "sub" / "walk.mp4", 24, shift=2)  # the same name: walk-2
    (inputs / "broken.mp4").write_bytes(b"not a video")
    paths = [inputs / "walk.mp4", inputs / "sub" / "walk.mp4", inputs / "broken.mp4"]
    options = {"write_annotated": False, "batch_size": 4}
    local_errors: list = []
    local = score_videos(paths, "ped2-knn", tmp_path / "local", progress=False, errors=local_errors,
                         backend=BACKEND, **options)
    errors: list = []
    results = score_videos_ray(paths, "ped2-knn", tmp_path / "ray", address=ray_address, threads=1, progress=False,
                               errors=errors, backend=BACKEND, **options)
    assert [r["name"] for r in results] == [r["name"] for r in local] == ["walk", "walk-2"]
    assert [p for p, _ in errors] == [p for p, _ in local_errors] == [inputs / "broken.mp4"]
    for r in local:
        mine = json.loads((tmp_path / "ray" / r["name"] / "result.json").read_text())
        for key in ("scores", "smoothed", "events", "threshold", "num_frames", "fps", "video", "files", "model"):
            assert mine[key] == r[key], key
        assert sorted(p.name for p in (tmp_path / "ray" / r["name"]).rglob("*")) == \
            sorted(p.name for p in (tmp_path / "local" / r["name"]).rglob("*"))
    assert not (tmp_path / "ray" / "broken").exists() and not (tmp_path / "local" / "broken").exists()

    # a rerun skips what is finished (same videos, model and options): nothing is rewritten
    stamps = {r["name"]: (tmp_path / "ray" / r["name"] / "result.json").stat().st_mtime_ns for r in results}
    again = score_videos_ray(paths[:2], "ped2-knn", tmp_path / "ray", address=ray_address, threads=1, progress=False,
                             backend=BACKEND, **options)
    assert [r["scores"] for r in again] == [r["scores"] for r in results]
    assert {n: (tmp_path / "ray" / n / "result.json").stat().st_mtime_ns for n in stamps} == stamps
    # other options (or rescore=True) score again
    score_videos_ray(paths[:1], "ped2-knn", tmp_path / "ray", address=ray_address, threads=1, progress=False,
                     backend=BACKEND, **{**options, "smoothing_sigma": 1.0})
    assert (tmp_path / "ray" / "walk" / "result.json").stat().st_mtime_ns != stamps["walk"]
    assert json.loads((tmp_path / "ray" / "walk" / "result.json").read_text())["smoothing_sigma"] == 1.0
