"""``vadkit score`` and ``vadkit fit-normal``: commands as plain functions, registered in :mod:`vadkit.cli`::

    app.command("score")(score_command)
    app.command("fit-normal")(fit_normal_command)

Both are thin: :func:`vadkit.inference.score_videos` and :func:`vadkit.engine.oneclass.fit_normal` do the work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from vadkit.cli_output import (DEVICE_OPTION, FPS_OPTION, RAY_OPTION, THREADS_OPTION, USER_ERRORS, WORKERS_OPTION,
                               console, err_console, fail, resolve_device_option)
from vadkit.io.inputs import printable


def score_command(
    videos: List[Path] = typer.Argument(..., help="video files, frame folders, or folders of them"),
    model: str = typer.Option("ped2-knn", "--model", help="a run folder, a model.pt file or a bundled model name"),
    out: Path = typer.Option(Path("scored"), "--out", help="output folder: one sub-folder per video"),
    smoothing: float = typer.Option(3.0, "--smoothing", help="Gaussian sigma in frames before thresholding (0: none)"),
    min_event: int = typer.Option(8, "--min-event", help="shortest anomaly event, in frames"),
    merge_gap: int = typer.Option(5, "--merge-gap", help="events closer than this many frames are merged"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="override the threshold the model fitted on its training data"),
    no_video: bool = typer.Option(False, "--no-video", help="skip the annotated mp4 (faster)"),
    batch_size: int = typer.Option(4, "--batch-size", help="snippets per I3D forward pass"),
    backend: str = typer.Option("auto", "--backend", help="auto (fastest installed runtime that passes the parity "
                                "check here), torch, onnxruntime or openvino"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON line per video (no progress bar)"),
    device: str = DEVICE_OPTION,
    ray: Optional[str] = RAY_OPTION,
    threads: int = THREADS_OPTION,
    workers: Optional[int] = WORKERS_OPTION,
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="with --ray: GPUs each worker asks Ray for "
                                          "(e.g. 1, or 0.5 for two networks per GPU); workers then run on CUDA"),
    rescore: bool = typer.Option(False, "--rescore", help="with --ray: score again the videos an earlier run already "
                                 "scored with the same model and options (by default a rerun skips them)"),
    fps: Optional[float] = FPS_OPTION,
) -> None:
    """Score videos: per-frame scores (CSV, JSON), anomaly events, a plot, an annotated mp4 and an HTML report."""
    from vadkit.inference import resolve_model, score_videos

    errors: list = []
    if ray is None:
        device = resolve_device_option(device)
    skipped: list = []
    options = dict(smoothing_sigma=smoothing, min_event_frames=min_event, merge_gap=merge_gap, threshold=threshold,
                   write_annotated=not no_video, batch_size=batch_size, fps=fps)
    try:
        if ray is not None:
            from vadkit.inference.cluster import LOCAL, score_videos_ray

            results = score_videos_ray(videos, model, out, address=None if ray == LOCAL else ray, threads=threads,
                                       num_workers=workers, progress=not as_json, errors=errors, backend=backend,
                                       rescore=rescore, gpus_per_worker=gpus_per_worker, skipped=skipped, **options)
        else:
            loaded = resolve_model(model, backend=backend, device=device)
            _say_backend(loaded, batch_size)
            results = score_videos(videos, loaded, out, progress=not as_json, errors=errors, skipped=skipped,
                                   **options)
    except USER_ERRORS as err:
        fail(str(err))
        return
    for r in results:
        folder = out / r["name"]
        if as_json:
            summary = {k: r[k] for k in ("name", "video", "num_frames", "fps", "fps_source", "threshold", "events", "seconds",
                                         "frames_per_s", "warnings")}
            sys.stdout.write(json.dumps({**summary, "folder": str(folder)}) + "\n")
        else:
            spans = ", ".join(f"{e['start_s']:.1f}-{e['end_s']:.1f}s" for e in r["events"][:6])
            more = " …" if len(r["events"]) > 6 else ""
            console.print(f"{r['name']}: {len(r['events'])} event(s){': ' + spans + more if spans else ''} "
                          f"at {r['fps']:g} fps ({r['fps_source']}; {r['frames_per_s']:.1f} frames/s scored) → "
                          f"{folder / 'report.html'}", highlight=False)
            for line in explained_lines(r["events"][:6]):
                console.print(line, highlight=False, soft_wrap=True)
        for warning in r.get("warnings", []):
            err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for path, reason in skipped:
        err_console.print(f"[bold yellow]skipped:[/] {printable(str(path))}: {reason}", highlight=False, soft_wrap=True)
    for path, message in errors:
        err_console.print(f"[bold red]error:[/] {path}: {message}", highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(1)


def explained_lines(events: list[dict]) -> list[str]:
    """One line per event an object explains: when, which box (pixels, at which frame) and why."""
    lines = []
    for e in events:
        if e.get("reason"):
            x0, y0, x1, y1 = (int(round(v)) for v in e["box"])
            lines.append(f"  {e['start_s']:.1f}-{e['end_s']:.1f}s: {e['reason']} (box {x0},{y0}-{x1},{y1} "
                         f"at frame {e['object_frame']})")
    return lines


def watch_command(
    sources: List[str] = typer.Argument(..., help="rtsp:// rtsps:// http(s):// URLs, /dev/video devices or files"),
    model: str = typer.Option("ped2-knn", "--model", help="a run folder, a model.pt file or a bundled model name"),
    out: Path = typer.Option(Path("watch"), "--out", help="output folder: one sub-folder per stream"),
    realtime: bool = typer.Option(False, "--realtime", help="play files at their own frame rate"),
    loop: bool = typer.Option(False, "--loop", help="start files again at their end"),
    smoothing: float = typer.Option(3.0, "--smoothing", help="Gaussian sigma in frames (adds int(4 sigma + 0.5) frames of delay)"),
    min_event: int = typer.Option(8, "--min-event", help="an event opens after this many frames above the threshold"),
    merge_gap: int = typer.Option(5, "--merge-gap", help="an event closes after this many frames below the threshold"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="override the model's fitted threshold"),
    webhook: Optional[str] = typer.Option(None, "--webhook", help="POST each event as JSON to this URL (retried, never blocking)"),
    pre_roll: float = typer.Option(3.0, "--pre-roll", help="seconds of video before an event in its clip"),
    post_roll: float = typer.Option(3.0, "--post-roll", help="seconds of video after an event in its clip"),
    timeout: float = typer.Option(10.0, "--timeout", help="seconds without data before a source is reopened"),
    max_retries: Optional[int] = typer.Option(None, "--max-retries", help="give a source up after this many failed reopenings in a row (default: never)"),
    batch_size: int = typer.Option(8, "--batch-size", help="snippets per I3D forward pass, across streams"),
    queue_snippets: int = typer.Option(8, "--queue", help="snippets a stream may have waiting before new ones are skipped"),
    segment: float = typer.Option(10.0, "--segment", help="frame detectors (sendec, state, objects): seconds of frames scored together as one video (adds that much delay)"),
    backend: str = typer.Option("auto", "--backend", help="auto, torch, onnxruntime or openvino"),
    device: str = DEVICE_OPTION,
) -> None:
    """Watch live streams: print each event as a JSON line as it opens and closes, save event clips, scores and
    a status the viewer shows (`vadkit serve --watch-dir OUT`). Ctrl-C / SIGTERM close open events and exit 0."""
    import signal
    import threading

    from vadkit.inference import resolve_model
    from vadkit.inference.watch import WatchOptions, watch

    stop = threading.Event()

    def request_stop(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    options = WatchOptions(realtime=realtime, loop=loop, smoothing_sigma=smoothing, min_event_frames=min_event,
                           merge_gap=merge_gap, threshold=threshold, webhook=webhook, pre_roll_s=pre_roll,
                           post_roll_s=post_roll, timeout_s=timeout, max_retries=max_retries, batch_size=batch_size,
                           queue_snippets=queue_snippets, segment_s=segment)
    device = resolve_device_option(device)
    try:
        loaded = resolve_model(model, backend=backend, device=device)
        _say_backend(loaded, batch_size)
        summary = watch(sources, loaded, out, options, stop=stop)
    except USER_ERRORS as err:
        fail(str(err))
        return
    for row in summary.values():
        line = (f"{row['stream']}: {row['frames']} frames, {row['scored_frames']} scored, {row['skipped_frames']} "
                f"skipped, {row['gaps']} gap(s), {row['events']} event(s) → {row['folder']}")
        err_console.print(line + (f" ({row['state']}: {row['error']})" if row["error"] else ""), highlight=False,
                          soft_wrap=True)
    hook = next((row["webhook"] for row in summary.values() if row.get("webhook")), None)
    if hook and (hook["failed"] or hook["dropped"]):
        err_console.print(f"[bold yellow]webhook:[/] {hook['sent']} delivered, {hook['failed']} failed, "
                          f"{hook['dropped']} dropped (queue full) → {hook['url']}; the failures are listed in each "
                          f"stream's status.json", highlight=False, soft_wrap=True)
    if any(row["state"] == "failed" for row in summary.values()):
        raise typer.Exit(1)


def _say_backend(loaded, batch_size: int) -> None:
    """Choose the runtimes now (measured once per machine) and say which, on stderr."""
    from vadkit.features.backends import describe

    loaded.ready(batch_size)
    if loaded.detector.inputs == "features":
        extractor = loaded.extractor(batch_size)
        line = describe(extractor.backend, extractor.backend_measurement)
    else:
        line = f"backend {loaded.detector.backend_}"
    note = loaded.detector.backend_note(loaded.backend) if loaded.backend not in ("auto", "torch") else None
    err_console.print(line + (f" ({note})" if note else ""), highlight=False, soft_wrap=True)


def fit_normal_command(
    videos: List[Path] = typer.Argument(..., help="normal footage: video files, frame folders, or folders of them"),
    out: Path = typer.Option(..., "--out", help="the run folder to write"),
    k: Optional[int] = typer.Option(None, "--k", help="nearest neighbours averaged (default 1): training snippets "
                                    "(knn) or training objects for the appearance (objects)"),
    far: float = typer.Option(0.01, "--far", help="false-alarm rate on held-out normal footage that sets the threshold"),
    metric: Optional[str] = typer.Option(None, "--metric", help="with --method knn: cosine (default) or euclidean"),
    holdout: Optional[float] = typer.Option(None, "--holdout", help="with --method knn: share of the videos held out "
                                            "to calibrate the threshold (default 0.2; objects holds out each video "
                                            "in turn)"),
    seed: int = typer.Option(0, "--seed", help="seed of the holdout split"),
    dataset: str = typer.Option("user footage", "--dataset", help="what the footage is, for the protocol card"),
    features: Optional[Path] = typer.Option(None, "--features", help="feature store to reuse (default RUN_DIR/features)"),
    batch_size: int = typer.Option(4, "--batch-size", help="snippets per I3D forward pass"),
    as_json: bool = typer.Option(False, "--json", help="print the calibration as JSON"),
    method: str = typer.Option("objects", "--method", help="objects (the default: velocity and appearance of "
                               "the people and bicycles YOLOX-Nano finds, plus moving regions: a box and a reason "
                               "for every event) or knn (1-NN on I3D snippet features)"),
    box_thresholds: Optional[str] = typer.Option(None, "--box-thresholds", help="with --method objects: motion-box "
                                                 "thresholds tuned for a dataset's camera (ped2, the default, "
                                                 "avenue, shanghaitech); they differ mostly in the smallest moving "
                                                 "box kept (ped2 10x10 px, avenue 40x40, shanghaitech 8x8): for "
                                                 "another camera, take the one whose people are closest in size in "
                                                 "pixels"),
    box_detector: Optional[Path] = typer.Option(None, "--box-detector", help="with --method objects: 'yolox' "
                                                "(the default: the YOLOX-Nano shipped with vadkit), an ONNX "
                                                "object detector (boxes and scores after NMS) or 'hog' for "
                                                "OpenCV's built-in people detector; their boxes come before the "
                                                "motion boxes"),
    device: str = DEVICE_OPTION,
    fps: Optional[float] = FPS_OPTION,
) -> None:
    """Fit a one-class detector on normal footage only; the run folder works with `vadkit score --model`."""
    from vadkit.engine.oneclass import fit_normal

    device = resolve_device_option(device)
    given = dict(k=k, metric=metric, holdout=holdout, thresholds=box_thresholds)
    detector_args = {key: value for key, value in given.items() if value is not None}
    if box_detector is not None:
        from vadkit.features.boxes.sources import box_source_args

        detector_args.update(box_source_args(box_detector))
    try:
        run = fit_normal(videos, out, method=method, detector_args=detector_args, false_alarm_rate=far, seed=seed,
                         features_dir=features, batch_size=batch_size, progress=not as_json, dataset=dataset,
                         device=device, fps=fps)
    except USER_ERRORS as err:
        fail(str(err))
        return
    calibration = run.read_json("calibration.json")
    for warning in calibration.get("warnings", []):  # first: a --json line stays the last line
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps({**calibration, "run_dir": str(run.path)}) + "\n")
    else:
        achieved = calibration.get("achieved_far")
        held = (f"{achieved:.3g} on {calibration.get('held_out')} held-out {calibration.get('held_out_unit')}"
                if achieved is not None else "not measured")
        console.print(f"{method} fitted on {calibration.get('fitted_on')}; threshold {calibration['threshold']:.4g} "
                      f"(false-alarm rate {far} requested, {held}) → {run.path}", highlight=False)
    if not as_json:
        rates = "; ".join(f"{rate} ({why})" for rate, why in calibration.get("fps", {}).items())
        console.print(f"frame rate: {rates}", highlight=False, soft_wrap=True)
