"""``vadkit serve``: the web viewer's command, registered by ``vadkit.cli``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import List, Optional

import typer

from vadkit.cli_output import DEVICE_OPTION, USER_ERRORS, fail, resolve_device_option

LOOPBACK_NAMES = ("localhost",)


def serve_command(
    runs: Path = typer.Option(Path("runs"), "--runs", help="folder of evaluation runs and scored videos "
                              "(searched two levels deep); uploads are saved under RUNS/uploads"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (anything but loopback exposes "
                             "your videos to the network)"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port to listen on"),
    scores: Optional[Path] = typer.Option(None, "--scores", help="a second folder of scored videos "
                                          "(`vadkit score --out`)"),
    detector: Optional[str] = typer.Option(None, "--detector", help="run folder, model.pt or bundled model name "
                                           "uploads are scored with (default: vadkit score's default model)"),
    max_upload_mb: float = typer.Option(500.0, "--max-upload-mb", min=0.001, help="largest upload accepted, MB"),
    allow_host: Optional[List[str]] = typer.Option(None, "--allow-host", help="a host name browsers may use to reach "
                                                   "the viewer besides localhost and --host (repeatable)"),
    max_pending: int = typer.Option(8, "--max-pending", min=1, help="uploads waiting to be scored at most (and "
                                    "uploads being received at once)"),
    max_incoming_mb: Optional[float] = typer.Option(None, "--max-incoming-mb", min=0.001,
                                                    help="MB the uploads being received may hold on disk together "
                                                    "(default: 2 x --max-upload-mb)"),
    keep_uploads_hours: float = typer.Option(24.0, "--keep-uploads-hours", min=0.001,
                                             help="uploads and their results are deleted this long after upload"),
    watch_dir: Optional[Path] = typer.Option(None, "--watch-dir", help="a `vadkit watch --out` folder: a live page "
                                             "per stream (frame, scrolling scores, open and recent events)"),
    device: str = DEVICE_OPTION,
) -> None:
    """Start the web viewer: scored videos with their score timeline, evaluation runs, uploads to score."""
    try:
        import uvicorn

        from vadkit.viewer.app import create_app
    except ImportError as err:
        fail(f"the viewer needs fastapi, uvicorn and python-multipart ({err.name} is missing): "
             f"pip install fastapi uvicorn python-multipart")
    if scores is not None and not scores.is_dir():
        fail(f"--scores {scores} is not a folder")
    if watch_dir is not None and watch_dir.exists() and not watch_dir.is_dir():
        fail(f"--watch-dir {watch_dir} is a file, expected a folder (the --out folder of `vadkit watch`)")
    if watch_dir is not None and not watch_dir.exists():  # the viewer may well start before the watcher
        try:
            watch_dir.mkdir(parents=True)
        except OSError as err:
            fail(f"--watch-dir {watch_dir} does not exist and cannot be created: {err}")
        typer.echo(f"created {watch_dir}: a live page appears for each stream `vadkit watch --out {watch_dir}` "
                   f"starts writing there", err=True)
    device = resolve_device_option(device)
    model = None
    if detector is not None or device != "cpu":
        from vadkit.inference import DEFAULT_MODEL, resolve_model

        try:  # fail now on a typo, not at the first upload
            model = resolve_model(detector or DEFAULT_MODEL, device=device)
        except USER_ERRORS as err:
            fail(f"--detector: {err}")
    if not is_loopback(host):
        typer.echo(f"warning: listening on {host}: anyone who can reach this address can see your videos "
                   f"and upload files", err=True)
    hosts = [*(allow_host or []), *([] if host in ("0.0.0.0", "::", "") else [host])]
    app = create_app(runs, scores=scores, detector=model, max_upload_bytes=int(max_upload_mb * 1e6),
                     allowed_hosts=hosts, max_pending=max_pending, keep_uploads_hours=keep_uploads_hours,
                     watch_dir=watch_dir,
                     max_incoming_bytes=int(max_incoming_mb * 1e6) if max_incoming_mb is not None else None)
    read = [str(p) for p in (runs, scores, watch_dir) if p is not None]
    typer.echo(f"vadkit viewer on http://{host}:{port}/ reading {' and '.join(read)}")
    # live pages hold an event stream open: on Ctrl-C, wait for them 2 s at most
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
