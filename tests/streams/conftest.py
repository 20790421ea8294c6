"""A real RTSP server on 127.0.0.1 for the stream tests.

The server is tests/streams/rtsp_server.py, run by the *system* Python (GStreamer's RTSP server through GObject
introspection, from Debian packages; `make streams` installs them). Tests that use the `rtsp_server` fixture are
skipped, with the install command in the reason, where it is missing.

    def test_something(rtsp_server):
        server = rtsp_server(DEMO)            # started, listening, serving DEMO looped in real time
        av.open(server.url, options=RTSP_OPTIONS)
        server.kill()                          # SIGKILL: clients see the end of the stream at once
        server.start()                         # again, on the same port and path
        server.pause(); server.resume()        # SIGSTOP / SIGCONT: a server that stalls without closing
        rtsp_server(DEMO, stall_after=30)      # 30 frames, then nothing while the connection stays up

Every server a test starts is stopped when the test ends.
"""

from __future__ import annotations

import functools
import os
import selectors
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SERVER_SCRIPT = Path(__file__).resolve().with_name("rtsp_server.py")
#: the interpreter that runs the server: one that can import gi (Debian's python3-gi), not the venv
SYSTEM_PYTHON = os.environ.get("VADKIT_RTSP_PYTHON", "/usr/bin/python3")
APT_PACKAGES = ("python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
                "gstreamer1.0-plugins-bad")
INSTALL_HINT = f"run `make streams` (apt-get install --no-install-recommends {APT_PACKAGES})"

#: what PyAV (FFmpeg >= 5) needs for an RTSP source: interleaved TCP and a socket timeout in microseconds
#: ("stimeout" is the old name: current FFmpeg ignores it, and a stalled read then blocks for ever)
RTSP_OPTIONS = {"rtsp_transport": "tcp", "timeout": "5000000"}

_CHECK = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
needed = ("filesrc", "parsebin", "qtdemux", "appsrc", "appsink", "rtph264pay")
print(" ".join(e for e in needed if Gst.ElementFactory.find(e) is None))
"""


@functools.lru_cache(maxsize=None)
def rtsp_server_available() -> str | None:
    """None when the RTSP server can run here, else why not (a skip reason)."""
    if not SERVER_SCRIPT.is_file():
        return f"RTSP server script missing: {SERVER_SCRIPT}"
    if not (os.path.isfile(SYSTEM_PYTHON) and os.access(SYSTEM_PYTHON, os.X_OK)):
        return f"RTSP server not installed: no system Python at {SYSTEM_PYTHON}; {INSTALL_HINT}"
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"RTSP server not usable: {SYSTEM_PYTHON} failed ({err}); {INSTALL_HINT}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return f"RTSP server not installed ({SYSTEM_PYTHON} cannot import gi/GstRtspServer: {last}); {INSTALL_HINT}"
    if out.stdout.strip():
        return f"RTSP server not installed: GStreamer elements missing: {out.stdout.strip()}; {INSTALL_HINT}"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class RTSPServer:
    """One server process: tests/streams/rtsp_server.py serving `video` at `url`."""

    host = "127.0.0.1"

    def __init__(self, video: Path | str, port: int | None = None, path: str = "live", loop: bool = True,
                 stall_after: int | None = None, ready_timeout: float = 20.0, log_dir: Path | None = None):
        self.video = Path(video)
        self.port = port or free_port(self.host)
        self.path = path.strip("/")
        self.loop = loop
        self.stall_after = stall_after
        self.ready_timeout = ready_timeout
        self.log = Path(log_dir or tempfile.mkdtemp(prefix="rtsp-server-")) / f"rtsp_server_{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self._paused = False

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}/{self.path}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def start(self) -> "RTSPServer":
        """Start the server (on the same port and path as before, after stop() or kill()) and wait for "ready"."""
        if self.running:
            raise RuntimeError(f"RTSP server already running (pid {self.proc.pid})")
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self._launch(deadline):
                return self
            # "cannot listen" (exit status 1): the port may still be held for a moment; retry until the deadline
            if self.proc.returncode != 1 or time.monotonic() + 0.2 > deadline:
                raise RuntimeError(f"RTSP server did not start (exit status {self.proc.returncode}):\n"
                                   f"{self.log_tail()}")
            time.sleep(0.2)

    def _launch(self, deadline: float) -> bool:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path,
               "--loop" if self.loop else "--no-loop", str(self.video)]
        if self.stall_after is not None:
            cmd[-1:-1] = ["--stall-after", str(self.stall_after)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self._paused = False
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        out = b""
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                    if self.proc.poll() is not None:
                        return False
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:  # stdout closed: the server exited
                    return False
                out += chunk
                if b"ready" in out.splitlines():
                    return True
        finally:
            sel.close()
            if not self.running:
                self.proc.wait(timeout=10)
                self.proc.stdout.close()
        self._terminate(signal.SIGKILL)
        raise TimeoutError(f"RTSP server not ready after {self.ready_timeout:.0f} s:\n{self.log_tail()}")

    def _terminate(self, sig: int, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self._paused and sig != signal.SIGKILL:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._paused = False
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); the exit status (0 for a clean stop)."""
        return self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the server dies at once (the kernel closes its sockets)."""
        return self._terminate(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open but sends nothing (a stalled camera)."""
        if self.running:
            self.proc.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """SIGCONT after pause()."""
        if self.running and self._paused:
            self.proc.send_signal(signal.SIGCONT)
            self._paused = False

    def __repr__(self) -> str:
        return f"RTSPServer({self.url}, video={self.video.name}, pid={self.pid}, running={self.running})"


@pytest.fixture
def rtsp_server(tmp_path_factory):
    """A factory: ``rtsp_server(video, port=None, path="live", loop=True, stall_after=None)`` starts a server (on a
    free port when none is given), waits until it serves and returns its `RTSPServer`. All of them are stopped at the
    end of the test. Skips the test, saying how to install it, where the server cannot run."""
    reason = rtsp_server_available()
    if reason:
        pytest.skip(reason)
    servers: list[RTSPServer] = []
    log_dir = tmp_path_factory.mktemp("rtsp")

    def start(video, port: int | None = None, path: str = "live", loop: bool = True, stall_after: int | None = None,
              ready_timeout: float = 20.0) -> RTSPServer:
        server = RTSPServer(video, port=port, path=path, loop=loop, stall_after=stall_after,
                            ready_timeout=ready_timeout, log_dir=log_dir)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop(timeout=5)
