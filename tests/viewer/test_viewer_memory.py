"""The viewer keeps one loaded model for every upload: scoring many uploads must not grow its memory.

90 uploads go through the real path (HTTP ``POST /api/upload`` -> the job queue -> ``default_scorer`` ->
``vadkit.inference.score_video`` with one loaded model) and the process's resident memory is read after each. A
frame detector (a tiny sEnDec) keeps the test fast: a feature detector would spend seconds per upload in I3D (the
weak detectors' per-id feature cache, the leak this guards against, has its own test in
tests/detectors/test_weak_detectors.py and the contract test)."""

from __future__ import annotations

import gc
import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the viewer needs fastapi (pip install fastapi uvicorn python-multipart httpx)")
from fastapi.testclient import TestClient  # noqa: E402

from vadkit.detectors import VideoItem, build_detector  # noqa: E402
from vadkit.io import write_video  # noqa: E402
from vadkit.viewer import create_app  # noqa: E402

UPLOADS = 90
WARM_UP = 10  # uploads before the baseline: imports, matplotlib's font cache, the first allocations
#: allowed growth of resident memory (after a garbage collection; the median of five readings, as single readings
#: jump by a few MB and fall back) from the warm-up to the last uploads. Keeping each upload's decoded frames, scores
#: and report (several hundred kB) would grow 30+ MB over the 80 measured uploads; measured growth without a leak:
#: under 1 MB alone (10 -> 70 uploads: 493.6 -> 494.3 MB), 10.7 MB once inside the whole suite on a loaded machine
#: (allocator noise from earlier tests), hence the bound
MAX_GROWTH_MB = 20.0


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status (resident memory is read from Linux's /proc)")


def random_video(path: Path, seed: int, frames: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    write_video(path, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(frames)], fps=10)
    return path.read_bytes()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sendec")
    train = [VideoItem(id=f"v{i}", num_frames=12, path=root / f"v{i}.mp4") for i in range(2)]
    for i, item in enumerate(train):
        random_video(item.path, 100 + i, 12)
    detector = build_detector("sendec", clip_length=2, height=32, width=32, batch_size=4, epochs=1, bn_clips=4,
                              optimizer="adam", lr=1e-3, threads=1, seed=0).fit(train, progress=False)
    detector.save(root / "model.pt")
    return root / "model.pt"


def test_ninety_uploads_with_one_loaded_model_keep_memory_flat(model_file, tmp_path):
    from vadkit.inference import resolve_model

    model = resolve_model(model_file, backend="torch")  # loaded once, kept by the app for every upload
    app = create_app(tmp_path / "runs", detector=model, max_pending=2)
    memory = []
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for i in range(UPLOADS):
            data = random_video(tmp_path / "upload.mp4", i)
            response = client.post("/api/upload", files={"file": (f"clip{i}.mp4", io.BytesIO(data), "video/mp4")})
            assert response.status_code == 202, response.text
            done = app.state.jobs.wait(response.json()["job"]["id"], timeout=120)
            assert done["state"] == "done", done
            gc.collect()  # matplotlib's figures are cycles: what is garbage is not growth
            memory.append(rss_mb())
    before, after = float(np.median(memory[WARM_UP - 5:WARM_UP])), float(np.median(memory[-5:]))
    print(f"resident memory (median of 5) after upload {WARM_UP}: {before:.1f} MB, after {UPLOADS}: {after:.1f} MB "
          f"(growth {after - before:+.1f} MB, max {max(memory[WARM_UP - 1:]):.1f} MB)")
    assert after - before <= MAX_GROWTH_MB, memory
    assert len(list((tmp_path / "runs" / "uploads").glob("clip*/result.json"))) == UPLOADS
