"""The viewer's HTTP API: listing, file serving with ranges, path safety, uploads, background jobs."""

from __future__ import annotations

import http.client
import inspect
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the viewer needs fastapi (pip install fastapi uvicorn python-multipart httpx)")
from fastapi.testclient import TestClient  # noqa: E402
from viewer_builders import LiveServer, brightness_scorer, make_frames, write_scored_folder  # noqa: E402

from vadkit.detectors import Detector, VideoItem  # noqa: E402
from vadkit.io import open_video, write_video  # noqa: E402
from vadkit.viewer import create_app  # noqa: E402
from vadkit.viewer.catalog import Catalog, UnsafePathError  # noqa: E402
from vadkit.viewer.jobs import ProgressTasks  # noqa: E402

RUN_ID = "runs/arnet-ped2-20260101-000000"


@pytest.fixture(scope="module")
def client(runs_tree):
    with TestClient(create_app(runs_tree), base_url="http://127.0.0.1") as c:
        yield c


def mp4_bytes(tmp_path: Path, num_frames: int = 12, name: str = "small.mp4") -> bytes:
    return write_video(tmp_path / name, make_frames(num_frames, size=(64, 48)), fps=25.0).read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------------------------------------------
def test_lists_scored_videos_at_depth_two_and_skips_unfinished_hidden_and_deeper(client):
    videos = client.get("/api/videos").json()
    assert [v["id"] for v in videos] == ["runs/scored/clip", "runs/walk"]
    clip = videos[0]
    assert clip["name"] == "clip" and clip["num_frames"] == 100 and clip["num_events"] == 1
    assert clip["duration_s"] == pytest.approx(4.0) and clip["model"] == "toy"
    assert "scores" not in clip  # summaries stay small
    assert videos[1]["num_events"] == 0


def test_lists_evaluation_runs_with_headline_metrics(client):
    runs = client.get("/api/runs").json()
    assert [r["id"] for r in runs] == [RUN_ID]
    assert runs[0]["micro_auc"] == pytest.approx(0.8765)
    assert runs[0]["method"] == "arnet: arnet_single" and runs[0]["dataset"] == "ucsd_ped2"


def test_video_detail_has_scores_events_and_urls_inside_the_folder(client, runs_tree):
    detail = client.get("/api/videos/runs/scored/clip").json()
    result = json.loads((runs_tree / "scored" / "clip" / "result.json").read_text())
    assert detail["scores"] == result["scores"] and detail["smoothed"] == result["smoothed"]
    assert detail["urls"]["video"] == "/files/runs/scored/clip/annotated.mp4"
    assert set(detail["urls"]) == {"csv", "plot", "video", "report"}
    (event,) = detail["events"]
    expected = result["events"][0]
    assert (event["start_frame"], event["end_frame"]) == (expected["start_frame"], expected["end_frame"])
    thumb = client.get(event["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_run_detail_has_metrics_protocol_and_roc_image(client):
    run = client.get(f"/api/runs/{RUN_ID}").json()
    assert run["metrics"]["micro_auc"] == pytest.approx(0.8765)
    assert run["metrics"]["protocol"]["split"] == "official"
    assert run["images"] == {"roc.png": f"/files/{RUN_ID}/roc.png"}
    assert "config.yaml" in run["texts"]
    png = client.get(run["images"]["roc.png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)


def test_missing_items_are_404(client):
    assert client.get("/api/videos/runs/nothing-here").status_code == 404
    assert client.get("/api/runs/runs/scored/clip").status_code == 404  # a video is not a run
    assert client.get("/files/runs/scored/clip/nothing.mp4").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404


def test_page_and_modules_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "timeline.js"):
        script = client.get(f"/static/{name}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for name in ("/", "/static/app.js", "/static/timeline.js", "/static/style.css"):
        assert "http:" not in client.get(name).text and "https:" not in client.get(name).text  # nothing external
    assert client.get("/static/style.css").status_code == 200


# ---------------------------------------------------------------------------------------------------------------
# files and ranges
# ---------------------------------------------------------------------------------------------------------------
def test_video_is_served_with_range_support(client, runs_tree):
    data = (runs_tree / "scored" / "clip" / "annotated.mp4").read_bytes()
    url = "/files/runs/scored/clip/annotated.mp4"
    full = client.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes" and full.headers["content-type"] == "video/mp4"

    part = client.get(url, headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(data)}"
    assert part.content == data[100:300]

    tail = client.get(url, headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == data[-64:]
    open_ended = client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert open_ended.status_code == 206 and open_ended.content == data[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416

    head = client.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data) and head.content == b""


def test_report_html_is_sandboxed(client):
    report = client.get("/files/runs/scored/clip/report.html")
    assert report.status_code == 200 and report.headers["content-security-policy"].startswith("sandbox")


# ---------------------------------------------------------------------------------------------------------------
# path safety
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def escape_tree(tmp_path_factory):
    """A runs folder with symlinks leading out of it, and a secret beside it."""
    base = tmp_path_factory.mktemp("escape")
    outside = base / "outside"
    write_scored_folder(outside / "stolen", make_frames(10, size=(32, 32)), np.zeros(10))
    (outside / "secret.json").write_text('{"secret": "s3cr3t"}')
    runs = base / "runs"
    write_scored_folder(runs / "ok", make_frames(10, size=(32, 32)), np.zeros(10))
    (runs / "escape").symlink_to(outside, target_is_directory=True)
    (runs / "ok" / "link.json").symlink_to(outside / "secret.json")
    (runs / "inside-link").symlink_to(runs / "ok", target_is_directory=True)  # stays inside: allowed
    return runs


UNSAFE_REFS = [
    "runs/../outside/secret.json", "runs/ok/../../outside/secret.json", "runs//etc/passwd",
    "runs/ok/..\\..\\outside\\secret.json", "runs/ok/\x00.json", "etc/passwd", "runs/escape/secret.json",
    "runs/escape/stolen/result.json", "runs/ok/link.json", "runs/./ok/result.json", "runs/.incoming/x.mp4",
]


@pytest.mark.parametrize("ref", UNSAFE_REFS)
def test_catalog_refuses_paths_leaving_its_folders(escape_tree, ref):
    with pytest.raises(UnsafePathError):
        Catalog({"runs": escape_tree}).resolve_file(ref)


def test_catalog_serves_symlinks_that_stay_inside(escape_tree):
    catalog = Catalog({"runs": escape_tree})
    path, media = catalog.resolve_file("runs/inside-link/result.json")
    assert path == (escape_tree / "ok" / "result.json").resolve() and media == "application/json"


def test_listing_does_not_follow_symlinks_out_of_the_folder(escape_tree):
    with TestClient(create_app(escape_tree), base_url="http://127.0.0.1") as c:
        ids = [v["id"] for v in c.get("/api/videos").json()]
    assert "runs/escape/stolen" not in ids and "runs/ok" in ids


ENCODED_TRICKS = [
    "/files/runs/%2e%2e/outside/secret.json", "/files/runs/ok/%2E%2E/%2E%2E/outside/secret.json",
    "/files/runs/ok/..%2f..%2foutside%2fsecret.json", "/files/runs/%2Fetc%2Fpasswd", "/files/runs//etc/passwd",
    "/files/runs/ok/..%5c..%5coutside%5csecret.json", "/files/runs/ok/%00.json", "/files/runs/escape/secret.json",
    "/files/runs/ok/link.json", "/api/videos/runs/escape/stolen", "/api/videos/runs/%2e%2e/outside/stolen",
    "/api/runs/runs/..%2F..", "/files/%2e%2e/outside/secret.json",
]


@pytest.mark.parametrize("url", ENCODED_TRICKS)
def test_http_refuses_encoded_traversal(escape_tree, url):
    with TestClient(create_app(escape_tree), base_url="http://127.0.0.1") as c:
        response = c.get(url)
    assert response.status_code in (403, 404), response.text
    assert "s3cr3t" not in response.text and "root:" not in response.text


def test_http_refuses_raw_dot_dot_and_unserved_files_over_a_real_socket(escape_tree, runs_tree):
    """A browser or curl may send ``..`` unnormalised; the server must not resolve it."""
    raw_paths = ["/files/runs/../outside/secret.json", "/files/runs/ok/../../outside/secret.json",
                 "/files/runs/../../../../../../etc/passwd", "/api/videos/runs/../outside/stolen"]
    with LiveServer(create_app(escape_tree)) as url:
        for path in raw_paths:
            conn = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=10)
            conn.request("GET", path)  # http.client sends the path exactly as given
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            conn.close()
            assert response.status in (403, 404), (path, response.status)
            assert "s3cr3t" not in body and "root:" not in body
    with TestClient(create_app(runs_tree), base_url="http://127.0.0.1") as c:
        assert c.get(f"/files/{RUN_ID}/model.pt").status_code == 403  # not a kind of file the page needs
        assert c.get(f"/files/{RUN_ID}/scores/01.npy").status_code == 403
        assert c.get("/files/runs/.hidden-run/metrics.json").status_code == 403


# ---------------------------------------------------------------------------------------------------------------
# uploads and jobs
# ---------------------------------------------------------------------------------------------------------------
def upload_files(tmp_path: Path) -> list[Path]:
    uploads = tmp_path / "runs" / "uploads"
    return sorted(p for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []


def test_upload_is_scored_in_the_background_and_listed(tmp_path):
    app = create_app(tmp_path / "runs", scorer=brightness_scorer, detector="toy")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        data = mp4_bytes(tmp_path)
        response = c.post("/api/upload", files={"file": ("../../My Clip (1).mp4", data, "video/mp4")})
        assert response.status_code == 202, response.text
        job = response.json()["job"]
        assert job["state"] in ("queued", "running", "done") and job["name"] == "../../My Clip (1).mp4"
        done = app.state.jobs.wait(job["id"], timeout=60)
        assert done["state"] == "done", done
        polled = c.get(f"/api/jobs/{job['id']}").json()
        assert polled["progress"] == 1.0 and polled["result"].startswith("runs/uploads/My_Clip_1-")
        assert "video" not in polled  # the server path is not shown
        assert polled["result"] in [v["id"] for v in c.get("/api/videos").json()]
        detail = c.get(f"/api/videos/{polled['result']}").json()
        assert detail["num_frames"] == 12 and len(detail["scores"]) == 12
    saved = [p for p in upload_files(tmp_path) if p.parent.name == "uploads"]
    assert len(saved) == 1 and saved[0].read_bytes() == data  # stored under uploads/, the given name made safe
    assert saved[0].name.startswith("My_Clip_1-") and saved[0].suffix == ".mp4"


class MeanBrightness(Detector):
    """A fitted frame detector: a frame's score is its mean brightness in [0, 1]."""

    name = "mean-brightness"
    inputs = "frames"
    threshold_rule = "fixed 0.3"

    def _fit(self, train, progress):
        self.threshold_ = 0.3

    def _score(self, item):
        return np.array([f.mean() / 255.0 for f in open_video(item.path).frames()])


def test_upload_scored_by_the_real_pipeline_with_progress(tmp_path):
    """The default scorer: vadkit.inference.score_video, its rich-style progress folded into one fraction."""
    pytest.importorskip("vadkit.inference", reason="vadkit.inference (vadkit score) is not in this checkout")
    seen = []
    app = create_app(tmp_path / "runs", detector=MeanBrightness().fit([VideoItem(id="none", num_frames=1)]))
    original = app.state.jobs._update

    def record(job_id, **changes):  # observe the progress the worker reports, then store it as usual
        seen.append(changes.get("progress"))
        original(job_id, **changes)

    app.state.jobs._update = record
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/info").json()["detector"] == "mean-brightness"
        job = c.post("/api/upload", files={"file": ("walk.mp4", mp4_bytes(tmp_path, 30), "video/mp4")}).json()["job"]
        done = app.state.jobs.wait(job["id"], timeout=120)
        assert done["state"] == "done", done
        detail = c.get(f"/api/videos/{done['result']}").json()
        assert detail["num_frames"] == 30 and detail["model"]["name"] == "mean-brightness"
        assert c.get(detail["urls"]["video"], headers={"Range": "bytes=0-9"}).status_code == 206
    fractions = [f for f in seen if f is not None]
    assert fractions == sorted(fractions) and 0 < fractions[0] < 1 and fractions[-1] == 1.0
    assert any(0.4 < f < 0.9 for f in fractions)  # the scoring pass and the annotated-video pass both count


def test_progress_tasks_fold_into_one_fraction():
    reported = []
    tasks = ProgressTasks(reported.append, expected_tasks=2)
    first = tasks.add_task("scoring", total=10)
    tasks.advance(first, 5)
    tasks.update(first, completed=10)
    second = tasks.add_task("writing", total=4)
    tasks.advance(second)
    tasks.update(second, completed=0)  # a task going back does not move the fraction back
    tasks.advance(second, 4)
    tasks.add_task("an unexpected third pass", total=3)
    assert reported == [0.25, 0.5, 0.625, 1.0]


def test_jobs_run_one_at_a_time_and_report_progress(tmp_path):
    release = threading.Event()
    calls = []

    def slow_scorer(video, detector, out_dir, progress):
        calls.append(video)
        progress(1, 4)
        if not release.wait(30):
            raise TimeoutError("test never released the scorer")
        return brightness_scorer(video, detector, out_dir, progress)

    app = create_app(tmp_path / "runs", scorer=slow_scorer)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        first = c.post("/api/upload", files={"file": ("a.mp4", mp4_bytes(tmp_path, name="a.mp4"), "video/mp4")}).json()
        second = c.post("/api/upload", files={"file": ("b.mp4", mp4_bytes(tmp_path, name="b.mp4"), "video/mp4")}).json()
        deadline = time.monotonic() + 20
        while c.get(f"/api/jobs/{first['job']['id']}").json()["progress"] != 0.25:
            assert time.monotonic() < deadline, "first job never reported progress"
            time.sleep(0.02)
        assert c.get(f"/api/jobs/{first['job']['id']}").json()["state"] == "running"
        assert c.get(f"/api/jobs/{second['job']['id']}").json()["state"] == "queued"
        assert len(calls) == 1
        assert [j["id"] for j in c.get("/api/jobs").json()] == [second["job"]["id"], first["job"]["id"]]
        release.set()
        assert app.state.jobs.wait(first["job"]["id"])["state"] == "done"
        assert app.state.jobs.wait(second["job"]["id"])["state"] == "done"


def test_failing_scorer_reports_an_error_and_the_worker_goes_on(tmp_path):
    def broken(video, detector, out_dir, progress):
        if video.name.startswith("bad"):
            raise ValueError("model checkpoint missing")
        return brightness_scorer(video, detector, out_dir, progress)

    app = create_app(tmp_path / "runs", scorer=broken)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        bad = c.post("/api/upload", files={"file": ("bad.mp4", mp4_bytes(tmp_path), "video/mp4")}).json()["job"]
        good = c.post("/api/upload", files={"file": ("good.mp4", mp4_bytes(tmp_path), "video/mp4")}).json()["job"]
        failed = app.state.jobs.wait(bad["id"])
        assert failed["state"] == "error" and "model checkpoint missing" in failed["error"]
        assert app.state.jobs.wait(good["id"])["state"] == "done"


def test_the_job_list_forgets_the_oldest_finished_jobs_beyond_its_bound(tmp_path):
    from vadkit.viewer.jobs import JobQueue

    def instant(video, detector, out_dir, progress):
        folder = Path(out_dir) / video.stem
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text("{}")
        return folder

    jobs = JobQueue(instant, None, tmp_path, ref_of=lambda folder: folder.name, max_finished=3)
    ids = []
    for i in range(6):
        ids.append(jobs.submit(tmp_path / f"v{i}.mp4", f"v{i}").id)
        assert jobs.wait(ids[-1])["state"] == "done"
    jobs.close()
    assert [job["id"] for job in jobs.list()] == ids[:2:-1]  # the three newest; the first three forgotten
    assert jobs.get(ids[0]) is None


def test_upload_over_the_size_limit_is_413_and_leaves_nothing(tmp_path):
    data = mp4_bytes(tmp_path, num_frames=40)
    limit = len(data) // 2
    app = create_app(tmp_path / "runs", scorer=brightness_scorer, max_upload_bytes=limit)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        response = c.post("/api/upload", files={"file": ("big.mp4", data, "video/mp4")})
        assert response.status_code == 413 and "limit" in response.json()["detail"]
        # without Content-Length (chunked), the stream is cut off as it passes the limit
        boundary = "vadkitboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        chunks = iter([body[i:i + 4096] for i in range(0, len(body), 4096)])
        response = c.post("/api/upload", content=chunks,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413
        assert c.get("/api/jobs").json() == []
    assert upload_files(tmp_path) == []


@pytest.mark.parametrize("kind", ["text", "image", "random", "empty", "truncated"])
def test_upload_that_is_not_a_video_is_415_whatever_its_name(tmp_path, kind):
    if kind == "text":
        data = b"hello, this is not a video\n" * 50
    elif kind == "image":
        data = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    elif kind == "random":
        data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    elif kind == "empty":
        data = b""
    else:
        data = mp4_bytes(tmp_path)[:300]
    with TestClient(create_app(tmp_path / "runs", scorer=brightness_scorer), base_url="http://127.0.0.1") as c:
        response = c.post("/api/upload", files={"file": ("clip.mp4", data, "video/mp4")})
        assert response.status_code == 415, response.text
        assert str(tmp_path) not in response.text  # no server paths in the message
        assert c.get("/api/jobs").json() == []
    assert upload_files(tmp_path) == []


def test_upload_needs_a_multipart_file_field_and_the_same_origin(tmp_path):
    with TestClient(create_app(tmp_path / "runs", scorer=brightness_scorer), base_url="http://127.0.0.1") as c:
        assert c.post("/api/upload", content=b"raw", headers={"Content-Type": "video/mp4"}).status_code == 400
        assert c.post("/api/upload", data={"other": "x"}, files={"other_file": ("a.mp4", b"x")}).status_code == 400
        evil = c.post("/api/upload", files={"file": ("a.mp4", mp4_bytes(tmp_path), "video/mp4")},
                      headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403
        same = c.post("/api/upload", files={"file": ("a.mp4", mp4_bytes(tmp_path), "video/mp4")},
                      headers={"Origin": "http://127.0.0.1"})
        assert same.status_code == 202


# ---------------------------------------------------------------------------------------------------------------
# command
# ---------------------------------------------------------------------------------------------------------------
def test_serve_command_defaults_to_loopback_and_port_8000():
    from vadkit.viewer.cli import is_loopback, serve_command

    params = inspect.signature(serve_command).parameters
    assert params["host"].default.default == "127.0.0.1"
    assert params["port"].default.default == 8000
    assert params["runs"].default.default == Path("runs")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_serve_command_runs_under_typer(tmp_path, monkeypatch):
    import typer
    import uvicorn
    from typer.testing import CliRunner

    from vadkit.viewer.cli import serve_command

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(app=app, host=host, port=port))
    cli = typer.Typer()
    cli.command("serve")(serve_command)
    cli.command("other")(lambda: None)  # two commands, so "serve" is a sub-command as in vadkit.cli
    result = CliRunner().invoke(cli, ["serve", "--runs", str(tmp_path), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    with TestClient(seen["app"], base_url="http://127.0.0.1") as c:
        assert c.get("/api/videos").json() == []
    assert not os.path.exists(tmp_path / "uploads")  # nothing is created until something is uploaded
    missing = CliRunner().invoke(cli, ["serve", "--runs", str(tmp_path), "--detector", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "--detector" in missing.output
