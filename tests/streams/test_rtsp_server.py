"""The RTSP test server works with the venv's PyAV: it serves the demo clip over TCP in real time, frame for frame,
loops it seamlessly, and its death or stall reaches a reader within the socket timeout; a restart on the same port
is reachable again. (The server and its fixture: tests/streams/rtsp_server.py and conftest.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

DEMO = Path(__file__).resolve().parents[2] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"
FRAMES, FPS = 180, 10  # the demo clip: 180 frames of 360x240 at 10 fps


def rtsp_options(timeout_s: float = 5.0) -> dict[str, str]:
    # FFmpeg >= 5: "timeout" is the socket timeout in microseconds ("stimeout" is ignored)
    return {"rtsp_transport": "tcp", "timeout": str(int(timeout_s * 1e6))}


@pytest.fixture(scope="module")
def reference() -> list[np.ndarray]:
    """The demo clip's frames, decoded from the file."""
    with av.open(str(DEMO)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


@pytest.mark.timeout(60)
def test_the_stream_opens_over_tcp_and_decodes_the_clip_frame_for_frame(rtsp_server, reference):
    server = rtsp_server(DEMO)
    assert server.url.startswith("rtsp://127.0.0.1:") and server.url.endswith("/live")
    with av.open(server.url, options=rtsp_options()) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = []
        for frame in c.decode(stream):
            assert (frame.width, frame.height) == (360, 240)
            frames.append(frame.to_ndarray(format="gray"))
            if len(frames) == 50:
                break
    assert len(frames) == 50
    # each client starts at the clip's first frame, and nothing is lost or re-encoded
    for i, f in enumerate(frames):
        assert np.array_equal(f, reference[i]), f"frame {i} differs from the file's"


@pytest.mark.timeout(60)
def test_the_stream_loops_with_increasing_timestamps_in_real_time(rtsp_server, reference):
    server = rtsp_server(DEMO)
    n_frames = FRAMES + 25
    with av.open(server.url, options=rtsp_options()) as c:
        stream = c.streams.video[0]
        pts, arrival = [], []
        for i, frame in enumerate(c.decode(stream)):
            arrival.append(time.monotonic())
            pts.append(frame.pts)
            assert np.array_equal(frame.to_ndarray(format="gray"), reference[i % FRAMES]), f"frame {i}"
            if i + 1 == n_frames:
                break
    assert len(pts) == n_frames
    # one endless stream: timestamps keep increasing across the loop (FFmpeg gives the very first frame no pts)
    known = [p for p in pts if p is not None]
    assert len(known) >= n_frames - 1 and all(b > a for a, b in zip(known, known[1:]))
    # paced by the clip's frame rate (the first ~2 s come in a burst: FFmpeg buffers them while probing)
    span = arrival[-1] - arrival[60]
    expected = (n_frames - 1 - 60) / FPS
    assert 0.8 * expected < span < 1.3 * expected, (span, expected)


@pytest.mark.timeout(60)
def test_a_killed_server_ends_the_read_at_once_and_a_restart_on_the_same_port_serves_again(rtsp_server):
    server = rtsp_server(DEMO)
    url, port = server.url, server.port
    c = av.open(url, options=rtsp_options(2.0))
    got, ended, killed = 0, None, None
    try:
        for _ in c.decode(video=0):
            got += 1
            if got == 30:
                server.kill()
                killed = time.monotonic()
        ended = "eof"
    except (av.error.FFmpegError, OSError) as err:
        ended = type(err).__name__
    finally:
        c.close()
    assert got >= 30 and killed is not None
    blocked = time.monotonic() - killed
    assert ended is not None and blocked < 5.0, (ended, blocked)  # the kernel closes the socket: EOF, no wait

    server.start()
    assert server.url == url and server.port == port
    with av.open(url, options=rtsp_options(2.0)) as c:
        frames = 0
        for frame in c.decode(video=0):
            assert (frame.width, frame.height) == (360, 240)
            frames += 1
            if frames == 5:
                break
    assert frames == 5
    assert server.stop() == 0  # SIGTERM: a clean exit


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["stopped process", "frozen stream"])
def test_a_stalled_server_makes_the_read_fail_after_the_socket_timeout(rtsp_server, how):
    # "stopped process": SIGSTOP, nothing at all arrives; "frozen stream": the server stops sending frames after 30
    # but stays up, connection and session included
    server = rtsp_server(DEMO, stall_after=30 if how == "frozen stream" else None)
    c = av.open(server.url, options=rtsp_options(1.0))
    got, error, last = 0, None, None
    try:
        for _ in c.decode(video=0):
            got += 1
            last = time.monotonic()
            if got == 25 and how == "stopped process":
                server.pause()
    except (av.error.FFmpegError, OSError) as err:
        error = err
    finally:
        blocked = time.monotonic() - (last or 0.0)
        server.resume()
        c.close()
    assert got >= 25
    # FFmpeg's RTSP-over-TCP read gives up after about twice the socket timeout (measured: 2.2 s for 1 s)
    assert isinstance(error, TimeoutError), error
    assert 0.8 < blocked < 6.0, blocked
