"""`vadkit export`: the exported folder scores the demo clip with ONNX Runtime alone (no torch, no vadkit imported),
giving `vadkit score`'s frame scores and events; OpenVINO files pass their parity check; frame detectors export
their networks too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vadkit.cli import app
from vadkit.features.backends import installed_backends

DEMO = Path(__file__).resolve().parents[1] / "src" / "vadkit" / "assets" / "demo" / "ped2_test004.mp4"

# run score.py in a Python where importing torch or vadkit fails
ISOLATED = ("import sys, runpy; sys.modules['torch'] = None; sys.modules['vadkit'] = None; "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VADKIT_CACHE", str(tmp_path_factory.getbasetemp() / "vadkit-cache"))


def _need(*names):
    missing = [n for n in names if n not in installed_backends()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install 'vadkit[onnx]')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    _need("onnxruntime", "openvino")
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")
    out = tmp_path_factory.mktemp("export") / "ped2-knn"
    result = CliRunner().invoke(app, ["export", "ped2-knn", "--format", "openvino", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output.strip().splitlines()[-1])


def test_the_export_folder_describes_everything(exported):
    out, spec = exported
    assert spec["format"] == "vadkit-export" and spec["detector"] == "knn"
    assert spec["threshold"] == pytest.approx(0.0393457, rel=1e-5) and spec["protocol"]
    assert spec["preprocessing"]["snippet_len"] == 16 and spec["preprocessing"]["input_range"] == "unit"
    for name in ("features", "detector"):
        entry = spec["networks"][name]
        assert (out / entry["onnx"]).is_file() and (out / entry["openvino"]).is_file()
        for backend, parity in entry["parity"].items():
            assert parity["relative_error"] < parity["bound"], (name, backend)
    assert (out / "score.py").is_file() and (out / "detector-arrays.npz").is_file()
    arrays = np.load(out / "detector-arrays.npz")
    assert arrays["bank"].shape[1] == 1024 and set(spec["arrays"]["names"]) >= {"bank"}


def test_onnxruntime_alone_scores_the_demo_clip_as_vadkit_does(exported, tmp_path):
    out, _ = exported
    run = subprocess.run([sys.executable, "-c", ISOLATED, str(out / "score.py"), str(DEMO), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    alone = json.loads(run.stdout.strip().splitlines()[-1])

    from vadkit.inference import score_videos

    reference = score_videos([DEMO], "ped2-knn", tmp_path / "scored", progress=False, backend="torch",
                             write_annotated=False)[0]
    ours, theirs = np.array(alone["scores"]), np.array(reference["scores"], dtype=float)
    # result.json rounds to 6 significant digits: compare at that precision
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max() + 5e-7
    assert [(e["start_frame"], e["end_frame"]) for e in alone["events"]] == \
           [(e["start_frame"], e["end_frame"]) for e in reference["events"]]
    assert alone["threshold"] == reference["threshold"]


def test_the_isolation_is_real(exported):
    """The same isolated interpreter cannot import torch: the scorer above really ran without it."""
    out, _ = exported
    probe = out.parent / "probe.py"
    probe.write_text("import torch\n")
    run = subprocess.run([sys.executable, "-c", ISOLATED, str(probe)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "torch" in run.stderr


def test_a_frame_detector_exports_its_network(tmp_path):
    """sEnDec (tiny) exports its auto-encoder with parity recorded; its scoring kind says it needs vadkit."""
    _need("onnxruntime")
    from vadkit.detectors import VideoItem, build_detector
    from vadkit.inference.export import export_model
    from vadkit.io import write_video

    rng = np.random.default_rng(0)
    items = []
    for i in range(2):
        frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(12)]
        path = write_video(tmp_path / f"v{i}.mp4", frames, fps=25)
        items.append(VideoItem(id=f"v{i}", num_frames=12, label=0, path=path))
    detector = build_detector("sendec", clip_length=2, height=32, width=32, batch_size=4, epochs=1, bn_clips=4,
                              optimizer="adam", lr=1e-3, score_stride=1, threads=1, seed=0).fit(items, progress=False)
    detector.save(tmp_path / "model.pt")
    spec = export_model(tmp_path / "model.pt", tmp_path / "exported")
    entry = spec["networks"]["detector"]
    assert spec["scoring"]["kind"] == "frames" and "vadkit score" in spec["standalone"]
    assert entry["parity"]["onnxruntime"]["relative_error"] < 1e-5
    assert (tmp_path / "exported" / entry["onnx"]).is_file()


def test_export_refuses_an_existing_folder_and_a_bad_format(tmp_path):
    (tmp_path / "taken").mkdir()
    result = CliRunner().invoke(app, ["export", "ped2-knn", "--out", str(tmp_path / "taken")])
    assert result.exit_code == 1 and "exists" in result.output
    result = CliRunner().invoke(app, ["export", "ped2-knn", "--out", str(tmp_path / "x"), "--format", "tflite"])
    assert result.exit_code == 1 and "format must be one of" in result.output


def test_score_and_extract_refuse_an_unknown_backend(tmp_path):
    for command in (["score", str(DEMO), "--out", str(tmp_path / "s")],
                    ["extract", "--video", str(DEMO), "--out", str(tmp_path / "f")]):
        result = CliRunner().invoke(app, command + ["--backend", "tensorrt"])
        assert result.exit_code == 1 and "backend must be one of" in result.output, result.output
