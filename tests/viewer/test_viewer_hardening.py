"""The viewer against a real server on 127.0.0.1: DNS rebinding (a foreign Host header) is refused, the upload queue
is bounded, and uploads expire."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from vadkit.io import write_video  # noqa: E402
from vadkit.viewer.app import create_app, expire_uploads, host_name  # noqa: E402
from viewer_builders import LiveServer, brightness_scorer, make_frames  # noqa: E402


def request(url: str, method: str, path: str, host: str | None = None, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, dict]:
    """One raw HTTP request with a chosen ``Host`` header: ``(status, headers, JSON body)``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = {"Host": host or parts.netloc, **(headers or {})}
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), (json.loads(data) if data else {})


def multipart(path: Path) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.mp4", make_frames(12, size=(64, 48)), fps=25.0)


def test_host_names():
    assert host_name("127.0.0.1:8000") == "127.0.0.1" and host_name("LOCALHOST") == "localhost"
    assert host_name("[::1]:9") == "::1" and host_name("evil.example:8000") == "evil.example"


def test_a_foreign_host_is_refused_even_with_a_matching_origin(tmp_path, video):
    app = create_app(tmp_path / "runs", scorer=brightness_scorer, allowed_hosts=["cam-box.lan"])
    with LiveServer(app) as url:
        port = urlsplit(url).port
        status, _, body = request(url, "GET", "/api/info", host=f"evil.example:{port}")
        assert status == 421 and "evil.example" in body["detail"] and "--allow-host" in body["detail"]
        upload, headers = multipart(video)
        status, _, _ = request(url, "POST", "/api/upload", host=f"evil.example:{port}", body=upload,
                               headers={**headers, "Origin": f"http://evil.example:{port}"})
        assert status == 421
        assert not (tmp_path / "runs" / "uploads").exists() or not any((tmp_path / "runs" / "uploads").glob("*.mp4"))
        for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"cam-box.lan:{port}"):
            assert request(url, "GET", "/api/info", host=name)[0] == 200, name
        status, _, _ = request(url, "POST", "/api/upload", body=upload,
                               headers={**headers, "Origin": f"http://evil.example:{port}"})
        assert status == 403  # the right host, but a write from another origin


def test_the_upload_queue_is_bounded(tmp_path, video):
    release = threading.Event()

    def slow_scorer(path, detector, out_dir, progress):
        release.wait(30)
        return brightness_scorer(path, detector, out_dir, progress)

    app = create_app(tmp_path / "runs", scorer=slow_scorer, max_pending=2)
    with LiveServer(app) as url:
        body, headers = multipart(video)
        accepted = [request(url, "POST", "/api/upload", body=body, headers=headers) for _ in range(2)]
        assert [status for status, _, _ in accepted] == [202, 202]
        status, response_headers, refused = request(url, "POST", "/api/upload", body=body, headers=headers)
        assert status == 503 and response_headers.get("retry-after") == "30" and "2 uploads" in refused["detail"]
        assert len(list((tmp_path / "runs" / "uploads").glob("*.mp4"))) == 2  # the refused upload was not kept
        release.set()
        for _, _, job in accepted:
            assert app.state.jobs.wait(job["job"]["id"], timeout=60)["state"] == "done"
        assert request(url, "POST", "/api/upload", body=body, headers=headers)[0] == 202


def test_uploads_expire_after_the_documented_time(tmp_path, video):
    uploads = tmp_path / "runs" / "uploads"
    (uploads / "old-clip").mkdir(parents=True)
    (uploads / "old-clip" / "result.json").write_text("{}")
    old_video = uploads / "old-clip.mp4"
    old_video.write_bytes(video.read_bytes())
    fresh = uploads / "fresh.mp4"
    fresh.write_bytes(video.read_bytes())
    two_days_ago = time.time() - 48 * 3600
    for path in (old_video, uploads / "old-clip", uploads / "old-clip" / "result.json"):
        os.utime(path, (two_days_ago, two_days_ago))
    busy = uploads / "busy.mp4"
    busy.write_bytes(b"x")
    os.utime(busy, (two_days_ago, two_days_ago))
    removed = expire_uploads(uploads, 24 * 3600, keep=[busy])
    assert sorted(p.name for p in removed) == ["old-clip", "old-clip.mp4"]
    assert fresh.exists() and busy.exists() and not (uploads / "old-clip").exists()
    os.utime(fresh, (two_days_ago, two_days_ago))
    app = create_app(tmp_path / "runs", scorer=brightness_scorer, keep_uploads_hours=24)
    with LiveServer(app) as url:  # the server expires at start
        assert request(url, "GET", "/api/info")[2]["keep_uploads_hours"] == 24
        assert not fresh.exists()


def test_an_upload_with_huge_frames_is_refused_naming_the_limit(tmp_path):
    import numpy as np

    huge = write_video(tmp_path / "huge.mp4", [np.zeros((4096, 4096, 3), np.uint8)] * 2, fps=25.0)
    app = create_app(tmp_path / "runs", scorer=brightness_scorer)
    with LiveServer(app) as url:
        body, headers = multipart(huge)
        status, _, refused = request(url, "POST", "/api/upload", body=body, headers=headers)
    assert status == 413 and "4096x4096" in refused["detail"] and "8.3 megapixels" in refused["detail"]
    assert not list((tmp_path / "runs" / "uploads").glob("*.mp4"))
