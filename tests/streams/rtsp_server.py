#!/usr/bin/python3
"""A small RTSP server for the stream tests: serves one H.264 video file at rtsp://HOST:PORT/PATH.

Run it with the *system* Python (it needs GStreamer's RTSP server through GObject introspection, which Debian ships
as python3-gi + gir1.2-gst-rtsp-server-1.0; `make streams` installs them), not with the project's venv:

    /usr/bin/python3 tests/streams/rtsp_server.py --port 8554 --path live src/vadkit/assets/demo/ped2_test004.mp4

How it serves:

* the file's H.264 access units are read once, at start-up, into memory, without re-encoding: the file (MP4, MOV
  or Matroska) must hold H.264; re-encode anything else first, e.g. with PyAV from the venv;
* every client gets its own stream, which starts at the file's first frame (a key frame), so what a client decodes
  does not depend on when it connects;
* with --loop (the default) the file is played again and again, each pass shifted by the file's duration, so the
  client sees one endless stream with increasing timestamps; with --no-loop the stream ends after one pass;
* the pipeline's sinks synchronise on the buffer timestamps, so frames go out in real time (the file's frame rate);
* --stall-after N: each client gets N frames and then nothing more, its connection and RTSP session staying up
  (a frozen camera; FFmpeg's socket timeout notices it, as it does a stopped server).

Prints "ready" on stdout once the server listens; exits with status 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as err:  # ValueError: the typelib is missing
    sys.stderr.write(f"rtsp_server: GStreamer RTSP server not available ({err}); run `make streams`\n")
    sys.exit(3)


def log(msg: str) -> None:
    sys.stderr.write(f"rtsp_server: {msg}\n")
    sys.stderr.flush()


class Clip:
    """The file's encoded frames, in decoding order, with their timestamps (ns) and key-frame flags."""

    def __init__(self, path: Path):
        self.caps: Gst.Caps | None = None
        self.frames: list[tuple[bytes, int, int, int, bool]] = []  # data, pts, dts, duration, delta unit
        self._read(path)
        if not self.frames:
            raise RuntimeError(f"no video frames in {path}")
        durations = [f[3] for f in self.frames]
        if all(d > 0 for d in durations):
            self.duration = sum(durations)
        else:  # no per-frame durations: use the frame rate of the caps
            ok, num, den = self.caps.get_structure(0).get_fraction("framerate")
            if not ok or num <= 0:
                num, den = 10, 1
            self.duration = len(self.frames) * Gst.util_uint64_scale(Gst.SECOND, den, num)
        pts = [f[1] for f in self.frames]
        dts = [f[2] for f in self.frames]
        if any(t < 0 for t in pts):
            # e.g. AVI: decoding times only, which give the presentation times only without B-frames
            raise RuntimeError(f"{path}: frames without presentation timestamps (an AVI?); remux or re-encode "
                               "the video into MP4")
        if any(t < 0 for t in dts):
            # e.g. Matroska: no decoding times; the k-th decoding time is the k-th presentation time in display
            # order, moved back by the largest reordering so that no frame is decoded after it is shown
            ordered = sorted(pts)
            delay = max(o - p for o, p in zip(ordered, pts))
            dts = [o - delay for o in ordered]
        # timestamps of the first pass, moved so that the smallest of them is 0
        first = min(min(pts), min(dts))
        self.frames = [(f[0], p - first, t - first, f[3], f[4]) for f, p, t in zip(self.frames, pts, dts)]

    def _read(self, path: Path, timeout: float = 60.0) -> None:
        if not path.is_file():
            raise RuntimeError(f"no such file: {path}")
        pipeline = Gst.Pipeline.new("reader")
        src = Gst.ElementFactory.make("filesrc")
        parse = Gst.ElementFactory.make("parsebin")  # finds and plugs the container's demuxer
        sink = Gst.ElementFactory.make("appsink")
        if parse is None or sink is None:
            raise RuntimeError("GStreamer plugins missing (parsebin, appsink: gstreamer1.0-plugins-base)")
        src.set_property("location", str(path))
        sink.set_property("sync", False)
        sink.set_property("caps", Gst.Caps.from_string("video/x-h264, stream-format=avc, alignment=au"))
        for e in (src, parse, sink):
            pipeline.add(e)
        src.link(parse)
        other: list[str] = []

        def on_pad(_parse, pad):
            caps = pad.get_current_caps() or pad.query_caps(None)
            name = caps.get_structure(0).get_name() if caps.get_size() else "?"
            if name == "video/x-h264" and not sink.get_static_pad("sink").is_linked():
                pad.link(sink.get_static_pad("sink"))
            else:
                other.append(name)

        def keep_plugging(_parse, _pad, caps):
            # stop at the demuxer's H.264 output: a parser here would rewrite the access units
            return not (caps.get_size() and caps.get_structure(0).get_name() == "video/x-h264")

        parse.connect("autoplug-continue", keep_plugging)
        parse.connect("pad-added", on_pad)
        bus = pipeline.get_bus()
        pipeline.set_state(Gst.State.PLAYING)
        deadline = time.monotonic() + timeout
        try:
            while True:
                msg = bus.pop_filtered(Gst.MessageType.ERROR)
                if msg is not None:
                    err, _debug = msg.parse_error()
                    kinds = f" (streams: {', '.join(other)})" if other else ""
                    raise RuntimeError(f"cannot read H.264 video from {path}{kinds}: {err.message}"
                                       + ("; re-encode the file to H.264 first" if other else ""))
                if time.monotonic() > deadline:
                    raise RuntimeError(f"reading {path} took over {timeout:.0f} s")
                sample = sink.emit("try-pull-sample", 100 * Gst.MSECOND)
                if sample is None:
                    if sink.get_property("eos"):
                        break
                    continue
                if self.caps is None:
                    self.caps = sample.get_caps()
                buf = sample.get_buffer()
                ok, info = buf.map(Gst.MapFlags.READ)
                data = bytes(info.data)
                buf.unmap(info)
                none = Gst.CLOCK_TIME_NONE
                self.frames.append((data, -1 if buf.pts == none else buf.pts, -1 if buf.dts == none else buf.dts,
                                    0 if buf.duration == none else buf.duration,
                                    buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
        finally:
            pipeline.set_state(Gst.State.NULL)
        if self.caps is None:
            kinds = f" (it has {', '.join(other)})" if other else ""
            raise RuntimeError(f"{path}: no H.264 video stream{kinds}; re-encode the file to H.264 first")


class Feeder:
    """Pushes the clip into one client's appsrc, pass after pass, when the appsrc asks for data."""

    def __init__(self, clip: Clip, loop: bool, stall_after: int | None = None):
        self.clip, self.loop, self.stall_after = clip, loop, stall_after
        self.index, self.passes, self.sent = 0, 0, 0

    def need_data(self, appsrc, _length):
        if self.stall_after is not None and self.sent >= self.stall_after:
            return  # a frozen camera: the session stays up (RTCP included), no more frames
        self.sent += 1
        frames = self.clip.frames
        if self.index >= len(frames):
            if not self.loop:
                appsrc.emit("end-of-stream")
                return
            self.index, self.passes = 0, self.passes + 1
        data, pts, dts, duration, delta = frames[self.index]
        self.index += 1
        shift = self.passes * self.clip.duration
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = pts + shift
        buf.dts = dts + shift
        buf.duration = duration if duration > 0 else Gst.CLOCK_TIME_NONE
        if delta:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        appsrc.emit("push-buffer", buf)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video", type=Path, help="a video file (MP4, MOV or Matroska) with H.264 video")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554, help="TCP port of the RTSP server (0: any free port)")
    ap.add_argument("--path", default="live", help="mount point: rtsp://HOST:PORT/PATH")
    ap.add_argument("--loop", action=argparse.BooleanOptionalAction, default=True,
                    help="play the file again and again (default) or once")
    ap.add_argument("--stall-after", type=int, default=None, metavar="N",
                    help="send only the first N frames to each client, then nothing, keeping the session open")
    args = ap.parse_args(argv)

    Gst.init(None)
    try:
        clip = Clip(args.video)
    except RuntimeError as err:
        log(str(err))
        return 2

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( appsrc name=src is-live=false format=time max-buffers=30 "
                       "! rtph264pay name=pay0 pt=96 config-interval=0 )")
    factory.set_shared(False)  # one media (and one appsrc) per client: each client starts at frame 0

    def on_media_configure(_factory, media):
        appsrc = media.get_element().get_by_name_recurse_up("src")
        appsrc.set_property("caps", clip.caps)
        feeder = Feeder(clip, args.loop, args.stall_after)
        appsrc.connect("need-data", feeder.need_data)

    factory.connect("media-configure", on_media_configure)
    server.get_mount_points().add_factory("/" + args.path.strip("/"), factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        log(f"cannot listen on {args.host}:{args.port}")
        return 1

    def stop(*_):
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
    parent = os.getppid()

    def orphaned():  # the test process died without stopping us (SIGKILL, a crash): stop too
        if os.getppid() != parent:
            log("parent process gone")
            return stop()
        return GLib.SOURCE_CONTINUE

    GLib.timeout_add_seconds(1, orphaned)

    fps = len(clip.frames) * Gst.SECOND / clip.duration
    log(f"serving {args.video.name} ({len(clip.frames)} frames, {fps:.3g} fps, "
        f"{'looped' if args.loop else 'once'}) at rtsp://{args.host}:{server.get_bound_port()}/{args.path.strip('/')}")
    print("ready", flush=True)
    loop.run()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
