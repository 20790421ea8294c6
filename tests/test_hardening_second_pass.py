"""Hardening, second pass (issue 25): what a folder is is decided by its files; small ground-truth files cannot
claim gigabytes; a malformed model file, a bad result.json, a pickled model, slow uploads, a killed annotated write,
a FIFO named like a video, failed webhook deliveries and a linked abnormal/ folder each get a clear, bounded answer.

Every tree and file is built here; the memory cases run in a child process whose peak resident size is measured.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from typer.testing import CliRunner

from vadkit.datasets import DatasetError, get_dataset
from vadkit.detectors import Detector, ModelFileError, VideoItem, load_detector
from vadkit.inference import score_videos
from vadkit.io import write_video
from vadkit.io.inputs import find_videos

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "src" / "vadkit" / "assets" / "models" / "ped2-knn.pt"
PEAK_MB = 500  # for any input under 1 MB


def frames(n, value=30, size=(32, 24)):
    return [np.full((size[1], size[0], 3), value, np.uint8) for _ in range(n)]


def write_frame_folder(folder: Path, n: int, size=(8, 8)) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.zeros((size[1], size[0], 3), np.uint8))
    return folder


def cell(items) -> np.ndarray:
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


def savemat(path: Path, variables: dict) -> Path:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def peak_of_reading(dataset: str, root: Path) -> tuple[str, float]:
    """Read ``dataset`` at ``root`` in a child process: (its error or "accepted", its peak resident size in MB)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) test process that forked the child
    code = ("import re, sys\nfrom vadkit.datasets import get_dataset\n"
            "try:\n    d = get_dataset(sys.argv[1], sys.argv[2]); d.videos(); d.check(); out = 'accepted'\n"
            "except Exception as err:\n    out = type(err).__name__ + ': ' + str(err)\n"
            "status = open('/proc/self/status').read()\n"
            "print(out); print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024)\n")
    import vadkit

    env = {**os.environ, "PYTHONPATH": str(Path(vadkit.__file__).resolve().parents[1])}  # the vadkit under test
    done = subprocess.run([sys.executable, "-c", code, dataset, str(root)], capture_output=True, text=True, env=env,
                          timeout=300)
    lines = done.stdout.strip().splitlines()
    assert len(lines) >= 2, done.stderr[-2000:]
    return lines[-2], float(lines[-1])


class Brightness(Detector):
    name, inputs, threshold_rule = "brightness-hardening-2", "frames", "fixed 0.5"

    def _fit(self, train, progress):
        self.threshold_ = 0.5

    def _score(self, item):
        from vadkit.io import open_video

        return np.array([f.mean() / 255.0 for f in open_video(item.path).truncated(item.num_frames).frames()])


# ---------------------------------------------------------------------------------------------------------------
# 1. a folder is what its files are
# ---------------------------------------------------------------------------------------------------------------
def mixed_folder(tmp_path: Path) -> Path:
    import cv2

    folder = tmp_path / "in"
    write_video(folder / "good.mp4", frames(20), fps=10)
    write_video(folder / "ten.mp4", frames(10, value=200), fps=10)
    cv2.imwrite(str(folder / "still.jpg"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(folder / "cover.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "notes.txt").write_text("not a video")
    os.mkfifo(folder / "pipe.mp4")
    return folder


def test_a_stray_image_does_not_hide_a_folders_videos(tmp_path):
    folder = mixed_folder(tmp_path)
    skipped: list = []
    results = score_videos([folder], Brightness().fit([VideoItem(id="none", num_frames=1)]), tmp_path / "out",
                           progress=False, write_annotated=False, skipped=skipped)
    assert sorted(r["name"] for r in results) == ["good", "ten"]
    assert sorted(r["num_frames"] for r in results) == [10, 20]
    reasons = {path.name: reason for path, reason in skipped}
    assert set(reasons) == {"cover.png", "notes.txt", "pipe.mp4", "still.jpg"}
    assert "image beside videos" in reasons["still.jpg"] and "not a video file" in reasons["notes.txt"]
    assert "a FIFO" in reasons["pipe.mp4"]


def test_a_folder_of_images_alone_is_still_a_frame_folder(tmp_path):
    folder = write_frame_folder(tmp_path / "clip", 4)
    (folder / "readme.txt").write_text("frames of a clip")
    assert find_videos([folder]) == [folder]


def test_a_fifo_named_like_a_video_gets_one_line(tmp_path):
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"x\.mp4: expected a video file or a folder, found a FIFO"):
        find_videos([fifo])


# ---------------------------------------------------------------------------------------------------------------
# 2. small files cannot claim gigabytes
# ---------------------------------------------------------------------------------------------------------------
def ped2_tree(root: Path, gt: np.ndarray) -> Path:
    write_frame_folder(root / "training" / "frames" / "01", 4)
    write_frame_folder(root / "testing" / "frames" / "01", 12)
    savemat(root / "ped2.mat", {"gt": cell([gt])})
    return root


def test_a_compressed_ped2_mat_bomb_is_refused_before_it_inflates(tmp_path):
    bomb = np.zeros((2, 60_000_000), np.uint8)  # 120 MB of zeros: about 120 KB compressed, 960 MB as int64
    bomb[:, 0] = 1
    root = ped2_tree(tmp_path / "ped2", bomb)
    del bomb
    assert (root / "ped2.mat").stat().st_size < 1 << 20
    outcome, peak = peak_of_reading("ucsd_ped2", root)
    assert outcome.startswith("DatasetError") and "ped2.mat" in outcome and "more than" in outcome, outcome
    assert peak < PEAK_MB, peak


def test_millions_of_ranges_in_a_few_kilobytes_are_refused(tmp_path):
    root = ped2_tree(tmp_path / "ped2", np.ones((2, 4_000_000), np.uint8))
    assert (root / "ped2.mat").stat().st_size < 64 << 10
    outcome, peak = peak_of_reading("ucsd_ped2", root)
    assert outcome.startswith("DatasetError") and "more than 1000000 [start; end] ranges" in outcome, outcome
    assert peak < PEAK_MB, peak


def test_more_ranges_than_frames_are_refused(tmp_path):
    root = ped2_tree(tmp_path / "ped2", np.ones((2, 20), np.uint8))
    with pytest.raises(DatasetError, match=r"ped2\.mat, video 1: 20 ranges within frames 1 to 1"):
        get_dataset("ucsd_ped2", root).videos()


def test_an_avenue_mask_file_is_bounded_by_its_videos_frames_and_size(tmp_path):
    root = tmp_path / "avenue"
    write_frame_folder(root / "training" / "frames" / "01", 3)
    write_frame_folder(root / "testing" / "frames" / "01", 6)
    masks = root / "ground_truth_demo" / "testing_label_mask" / "1_label.mat"
    savemat(masks, {"volLabel": cell([np.zeros((360, 640), np.uint8) for _ in range(400)])})  # 92 MB inflated
    assert masks.stat().st_size < 1 << 20
    outcome, peak = peak_of_reading("avenue", root)
    assert outcome.startswith("DatasetError") and "1_label.mat" in outcome and "limit" in outcome, outcome
    assert peak < PEAK_MB, peak
    # masks of the video's own size and length are read
    savemat(masks, {"volLabel": cell([np.full((8, 8), i % 2, np.uint8) for i in range(6)])})
    labels = get_dataset("avenue", root).videos()[-1].frame_labels
    assert labels.tolist() == [0, 1, 0, 1, 0, 1]


# ---------------------------------------------------------------------------------------------------------------
# 3. a safe but malformed model file
# ---------------------------------------------------------------------------------------------------------------
def bundled() -> dict:
    return torch.load(BUNDLED, map_location="cpu", weights_only=True)


def malformed(tmp_path: Path, change) -> Path:
    saved = bundled()
    change(saved)
    path = tmp_path / "model.pt"
    torch.save(saved, path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("detector"), "key 'detector' is missing (expected a detector name)"),
    (lambda s: s.update(detector="nope"), "key 'detector': expected one of"),
    (lambda s: s.update(args=[1, 2]), "key 'args': expected a dict of constructor arguments, found list"),
    (lambda s: s["args"].update(k="three"), "key 'args.k': expected int (like the default 1), found str"),
    (lambda s: s["args"].update(colour=1), "key 'args': 'colour' is no argument of the knn detector"),
    (lambda s: s["state"].pop("bank"), "key 'state.bank' is missing (expected a tensor)"),
    (lambda s: s["state"].update(mean="x"), "key 'state.mean': expected a tensor or None, found str"),
    (lambda s: s.update(threshold="high"), "key 'threshold': expected a number or None, found str"),
    (lambda s: s.update(history=7), "key 'history': expected a list of training records, found int"),
    (lambda s: s.update(protocol=None), "key 'protocol': expected a dict (the protocol card), found NoneType"),
])
def test_a_malformed_model_file_names_the_key(tmp_path, change, message):
    path = malformed(tmp_path, change)
    with pytest.raises(ModelFileError) as info:
        load_detector(path)
    assert str(path) in str(info.value) and message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_the_bundled_model_file_passes_the_checks():
    assert load_detector(BUNDLED).name == "knn"


@pytest.mark.parametrize("command", [["score", "VIDEO", "--model", "MODEL", "--out", "OUT"],
                                     ["export", "MODEL", "--out", "OUT"]])
def test_commands_answer_a_malformed_model_in_one_line(tmp_path, command):
    from vadkit.cli import app

    path = malformed(tmp_path, lambda s: s["state"].update(bank=[1, 2, 3]))
    video = write_video(tmp_path / "v.mp4", frames(20), fps=10)
    argv = [{"VIDEO": str(video), "MODEL": str(path), "OUT": str(tmp_path / "out")}.get(a, a) for a in command]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert "key 'state.bank': expected a tensor, found list" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------------------------
# 4. one bad result.json never takes the viewer's list down
# ---------------------------------------------------------------------------------------------------------------
def test_one_bad_result_is_listed_as_broken_and_the_rest_listed(tmp_path):
    from fastapi.testclient import TestClient

    from vadkit.viewer.app import create_app

    good = {"name": "good", "num_frames": 3, "fps": 10.0, "events": [], "scores": [0.1, 0.2, 0.3], "files": {}}
    bad = {"events7": dict(good, name="events7", events=7), "files": dict(good, name="files", files="x.mp4"),
           "model": dict(good, name="model", model=5)}
    scores = tmp_path / "scores"
    for name, result in {"good": good, **bad}.items():
        (scores / name).mkdir(parents=True)
        (scores / name / "result.json").write_text(json.dumps(result))
    (scores / "deep").mkdir()
    (scores / "deep" / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    (scores / "list").mkdir()
    (scores / "list" / "result.json").write_text("[1, 2]")
    client = TestClient(create_app(tmp_path / "runs", scores=scores), base_url="http://127.0.0.1")
    listed = client.get("/api/videos")
    assert listed.status_code == 200
    by_id = {v["id"]: v for v in listed.json()}
    assert set(by_id) == {"scores/good", "scores/events7", "scores/files", "scores/model", "scores/deep",
                          "scores/list"}
    assert "broken" not in by_id["scores/good"] and by_id["scores/good"]["num_events"] == 0
    assert "'events' is int" in by_id["scores/events7"]["broken"]
    assert "'files' is str" in by_id["scores/files"]["broken"]
    assert "nested 100000 levels deep" in by_id["scores/deep"]["broken"]
    assert "expected a JSON object, found list" in by_id["scores/list"]["broken"]
    assert client.get("/api/videos/scores/good").status_code == 200
    page = client.get("/api/videos/scores/deep")
    assert page.status_code == 422 and "nested" in page.json()["detail"]


# ---------------------------------------------------------------------------------------------------------------
# 5. a pickled model is refused as able to run code, never with the advice to load it unsafely
# ---------------------------------------------------------------------------------------------------------------
class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def pickled_files(tmp_path: Path) -> list[Path]:
    """A torch.save zip holding a custom object, and a legacy protocol-0 pickle calling os.makedirs."""
    marker = tmp_path / "pwned"
    zipped = tmp_path / "zipped.pt"
    torch.save({"format": "vadkit-detector", "state": Payload(marker)}, zipped)
    legacy = tmp_path / "legacy.pt"
    import pickle

    legacy.write_bytes(pickle.dumps(Payload(marker), protocol=0))
    return [zipped, legacy]


def test_the_refusal_says_the_file_could_run_code(tmp_path):
    from vadkit.detectors import read_model_file

    for path in pickled_files(tmp_path):
        with pytest.raises(torch.serialization.pickle.UnpicklingError) as raw:
            torch.load(path, weights_only=True)
        assert "weights_only" in str(raw.value)  # torch's own wording carries the unsafe advice: the test can fail
        with pytest.raises(ModelFileError) as info:
            read_model_file(path)
        message = str(info.value)
        assert "refused: loading it could run code" in message and str(path) in message, message
        assert "weights_only" not in message and "trust" not in message and "\n" not in message
    assert not (tmp_path / "pwned").exists()


def test_extract_weights_refuses_the_same_way(tmp_path):
    from vadkit.features.weights import read_checkpoint

    for path in pickled_files(tmp_path):
        with pytest.raises(ValueError) as info:
            read_checkpoint(path)
        message = str(info.value)
        assert "refused: loading it could run code" in message and "weights_only" not in message, message
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------------------------------------------
# 6. uploads in progress are bounded in number and bytes
# ---------------------------------------------------------------------------------------------------------------
BOUNDARY = "vadkitboundary"


def upload_headers(length: int | None = None) -> dict:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if length is not None:
        headers["content-length"] = str(length)
    return headers


async def slow_body(release: asyncio.Event, size: int):
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
           f"Content-Type: video/mp4\r\n\r\n").encode()
    yield b"x" * size
    await release.wait()
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def run_uploads(tmp_path: Path, count: int, limits, size: int, announce: bool) -> list:
    from vadkit.viewer.upload import UploadError, receive_upload

    async def main():
        release = asyncio.Event()

        async def one():
            try:
                await receive_upload(upload_headers(size + 300 if announce else None), slow_body(release, size),
                                     tmp_path, 10 << 20, limits)
            except UploadError as err:
                return err.status
            return 200

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(0.5)  # every upload has started and is waiting mid-body
        in_progress = len(list((tmp_path / ".incoming").glob("*.part")))
        release.set()
        return in_progress, await asyncio.gather(*tasks)

    return asyncio.run(main())


def test_twelve_slow_uploads_with_room_for_eight(tmp_path):
    from vadkit.viewer.upload import IncomingLimits

    limits = IncomingLimits(max_uploads=8, max_bytes=100 << 20)
    in_progress, statuses = run_uploads(tmp_path, 12, limits, 1000, announce=False)
    assert in_progress == 8
    assert statuses.count(503) == 4 and statuses.count(415) == 8  # the 8 received are checked (not videos)
    assert limits.active == 0 and limits.bytes == 0 and not list((tmp_path / ".incoming").iterdir())


@pytest.mark.parametrize("announce", [True, False])
def test_the_bytes_of_uploads_in_progress_are_bounded(tmp_path, announce):
    from vadkit.viewer.upload import IncomingLimits

    limits = IncomingLimits(max_uploads=8, max_bytes=5000)
    in_progress, statuses = run_uploads(tmp_path, 4, limits, 2000, announce=announce)
    assert in_progress == 2 and statuses.count(503) == 2, statuses
    assert limits.active == 0 and limits.bytes == 0 and not list((tmp_path / ".incoming").iterdir())


def test_the_server_answers_503_with_retry_after(tmp_path):
    from fastapi.testclient import TestClient

    from vadkit.viewer.app import create_app

    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
            + "x" * 900 + f"\r\n--{BOUNDARY}--\r\n").encode()
    for room, expected in ((500, 503), (5000, 415)):  # 415: received, then found to be no video
        app = create_app(tmp_path / f"runs{room}", max_upload_bytes=1000, max_incoming_bytes=room,
                         scorer=lambda *a, **k: {})
        client = TestClient(app, base_url="http://127.0.0.1")
        answer = client.post("/api/upload", content=body, headers=upload_headers())
        assert answer.status_code == expected, answer.text
        if expected == 503:
            assert answer.headers["Retry-After"] == "30" and "allowed" in answer.json()["detail"]


# ---------------------------------------------------------------------------------------------------------------
# 7. smaller
# ---------------------------------------------------------------------------------------------------------------
def test_the_annotated_videos_temporary_is_cleaned_by_the_rerun(tmp_path):
    from vadkit.inference.pipeline import _prepare_folder

    out = tmp_path / "out"
    seen = []

    def frames_watching():
        for i in range(3):
            seen.extend(p.name for p in out.glob(".*"))
            yield np.zeros((16, 16, 3), np.uint8)

    write_video(out / "annotated.mp4", frames_watching(), fps=5)
    assert seen and all(name.startswith(".annotated.mp4.") for name in seen), seen
    # what a killed score leaves, in this naming and in the earlier one
    (out / seen[0]).write_bytes(b"half a video")
    (out / ".annotated.k3j4_x.mp4").write_bytes(b"half a video")
    (out / ".keep.txt").write_text("the user's")
    _prepare_folder(out)
    assert sorted(p.name for p in out.iterdir()) == [".keep.txt"]


def test_failed_webhook_deliveries_are_printed_and_reported(capsys):
    from vadkit.inference.watch import Webhook

    dead = Webhook("http://user:secret@127.0.0.1:9/hook?token=abc", tries=2, backoff=0.01)
    dead.post({"type": "event_open", "stream": "cam", "start_frame": 40})
    dead.close(wait_s=5)
    report = dead.report()
    assert report["failed"] == 1 and report["sent"] == 0
    assert report["recent_failures"][0]["stream"] == "cam" and report["recent_failures"][0]["start_frame"] == 40
    assert report["recent_failures"][0]["error"]
    printed = capsys.readouterr().err
    assert "webhook: delivery to http://127.0.0.1/hook failed after 2 tries" in printed
    assert "secret" not in printed and "token" not in json.dumps(report)


def test_a_folder_dataset_whose_abnormal_links_to_normal_says_so(tmp_path):
    root = tmp_path / "mine"
    write_frame_folder(root / "train" / "normal" / "walk", 3)
    write_frame_folder(root / "test" / "normal" / "calm", 3)
    os.symlink("normal", root / "test" / "abnormal")
    with pytest.raises(DatasetError, match=r"test/abnormal is a link to test/normal, whose videos are already read"):
        get_dataset("folder", root)
