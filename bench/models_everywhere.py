"""Every fitted model works everywhere: for each run folder given, score a video with `vadkit score --model RUN`
(no --threshold), score it again through the web viewer's upload (a real FastAPI app, the real scoring worker),
and run `vadkit evaluate RUN`; print one JSON line per run.

    python bench/models_everywhere.py runs/accept/state runs/accept/sendec runs/accept/aed runs/accept/fit-normal \
        [--video src/vadkit/assets/demo/ped2_test004.mp4]

For a fit-normal run, `vadkit evaluate` is given the video (`--videos`) and, with ``--labels``, its labels.
Each line: ``run``, ``detector``, ``threshold`` (the model file's), ``threshold_rule``, ``score_cli`` (exit code,
threshold used, events, frames/s), ``viewer_upload`` (job state, threshold, events), ``evaluate`` (exit code and
its headline numbers), ``same_scores`` (CLI and viewer scores equal).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def score_cli(run: Path, video: Path, out: Path) -> dict:
    from typer.testing import CliRunner

    from vadkit.cli import app

    start = time.perf_counter()
    done = CliRunner().invoke(app, ["score", str(video), "--model", str(run), "--out", str(out), "--json"])
    result = {"exit_code": done.exit_code, "seconds": round(time.perf_counter() - start, 1)}
    if done.exit_code != 0:
        return {**result, "output": done.output[-400:]}
    written = json.loads((out / video.stem / "result.json").read_text())
    return {**result, "threshold": written["threshold"], "events": [[e["start_frame"], e["end_frame"]]
                                                                    for e in written["events"]],
            "frames_per_s": written["frames_per_s"], "scores": written["scores"]}


def viewer_upload(run: Path, video: Path, root: Path) -> dict:
    from fastapi.testclient import TestClient

    from vadkit.inference import resolve_model
    from vadkit.viewer.app import create_app

    app = create_app(root / "runs", detector=resolve_model(run))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        job = client.post("/api/upload", files={"file": (video.name, video.read_bytes(), "video/mp4")}).json()["job"]
        done = app.state.jobs.wait(job["id"], timeout=3600)
        if done["state"] != "done":
            return {"state": done["state"], "error": done.get("error")}
        detail = client.get(f"/api/videos/{done['result']}").json()
    return {"state": done["state"], "threshold": detail["threshold"], "scores": detail["scores"],
            "events": [[e["start_frame"], e["end_frame"]] for e in detail["events"]]}


def evaluate(run: Path, video: Path, labels: Path | None) -> dict:
    from typer.testing import CliRunner

    from vadkit.cli import app

    config = (run / "config.yaml").read_text()
    extra = []
    if "split: fit-normal" in config:
        extra = ["--videos", str(video)] + (["--labels", str(labels)] if labels else [])
    start = time.perf_counter()
    done = CliRunner().invoke(app, ["evaluate", str(run), "--json", *extra])
    result = {"exit_code": done.exit_code, "seconds": round(time.perf_counter() - start, 1)}
    if done.exit_code != 0:
        return {**result, "output": done.output[-400:]}
    metrics = json.loads(done.output.strip().splitlines()[-1])
    keys = ("micro_auc", "macro_auc", "far_all", "threshold", "num_frames", "frames_at_or_above_threshold")
    return {**result, **{k: metrics[k] for k in keys if k in metrics}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--video", type=Path, default=REPO / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4")
    parser.add_argument("--labels", type=Path, default=None, help="labels of --video for fit-normal runs")
    args = parser.parse_args()

    from vadkit.detectors import read_model_file

    for run in args.runs:
        saved = read_model_file(run)
        with tempfile.TemporaryDirectory() as tmp:
            cli = score_cli(run, args.video, Path(tmp) / "cli")
            viewer = viewer_upload(run, args.video, Path(tmp))
        same = "scores" in cli and "scores" in viewer and cli.pop("scores") == viewer.pop("scores")
        cli.pop("scores", None)
        viewer.pop("scores", None)
        line = {"run": str(run), "detector": saved["detector"], "threshold": saved["threshold"],
                "threshold_rule": saved["threshold_rule"], "score_cli": cli, "viewer_upload": viewer,
                "same_scores": same, "evaluate": evaluate(run, args.video, args.labels)}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
