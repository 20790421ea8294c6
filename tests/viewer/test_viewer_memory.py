"""The viewer keeps one loaded model for every upload: scoring many uploads must not grow its memory.

90 uploads go through the real path (HTTP ``POST /api/upload`` -> the job queue -> ``default_scorer`` ->
``vadkit.inference.score_video`` with one loaded model) and the process's resident memory is read after each. A
frame detector (a tiny sEnDec) keeps the test fast: a feature detector would spend seconds per upload in I3D (the
weak detectors' per-id feature cache, the leak this guards against, has its own test in
tests/detectors/test_weak_detectors.py and the contract test).

The uploads run in a fresh Python process: inside the whole suite the test process already holds ~2 GB that earlier
tests allocated and freed, and the allocator's reuse of that heap moved the reading by 20 MB with no leak at all."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
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
#: under 1 MB in a fresh process (10 -> 70 uploads: 493.6 -> 494.3 MB); 10.7 and 20.9 MB when it ran inside the
#: whole suite's process (allocator noise from earlier tests), which is why it runs in a process of its own now
MAX_GROWTH_MB = 15.0


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


def measure_uploads(model_file: Path, tmp_path: Path) -> list[float]:
    """Resident memory (MB) after each of ``UPLOADS`` uploads scored by one loaded model (run in a fresh process)."""
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
    return memory


CHILD = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("viewer_memory", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(module.measure_uploads(Path(sys.argv[2]), Path(sys.argv[3]))))
"""


def test_ninety_uploads_with_one_loaded_model_keep_memory_flat(model_file, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", CHILD, __file__, str(model_file), str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    memory = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(memory) == UPLOADS
    before, after = float(np.median(memory[WARM_UP - 5:WARM_UP])), float(np.median(memory[-5:]))
    print(f"resident memory (median of 5) after upload {WARM_UP}: {before:.1f} MB, after {UPLOADS}: {after:.1f} MB "
          f"(growth {after - before:+.1f} MB, max {max(memory[WARM_UP - 1:]):.1f} MB)")
    assert after - before <= MAX_GROWTH_MB, memory
    assert len(list((tmp_path / "runs" / "uploads").glob("clip*/result.json"))) == UPLOADS
