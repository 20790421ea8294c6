"""What `make demo` does: the bundled models score the bundled Ped2 clip and find its annotated anomaly; the objects
model (the demo's) names the object and the reason."""

from pathlib import Path

import vadkit
from vadkit.inference import list_bundled_models, resolve_model, score_video

ASSETS = Path(vadkit.__file__).parent / "assets"
DEMO_CLIP = ASSETS / "demo" / "ped2_test004.mp4"
ANOMALY = (30, 179)  # 0-based frames of the official ground truth gt_frame = [31:180]


def test_bundled_model_finds_the_demo_clips_anomaly(tmp_path):
    assert "ped2-knn" in list_bundled_models()
    result = score_video(DEMO_CLIP, resolve_model("ped2-knn"), tmp_path / "demo", write_annotated=False)
    assert result["num_frames"] == 180 and len(result["scores"]) == 180
    overlapping = [e for e in result["events"] if e["start_frame"] <= ANOMALY[1] and e["end_frame"] >= ANOMALY[0]]
    assert overlapping, f"no event overlaps frames {ANOMALY}: {result['events']}"
    # and the clip's normal start is not one big false alarm
    assert all(e["start_frame"] >= 20 for e in result["events"])
    assert (tmp_path / "demo" / "report.html").is_file()


def test_bundled_objects_model_finds_the_anomaly_and_says_which_object_and_why(tmp_path):
    """`make demo`: ped2-objects (YOLOX-Nano boxes, shipped) on the demo clip: one event over the annotated anomaly
    (frames 26-179 measured on 2026-12-06), with the box of its most abnormal object and the reason in words."""
    assert "ped2-objects" in list_bundled_models()
    model = resolve_model("ped2-objects")
    assert model.detector.args["boxes"] == "yolox" and model.detector.args["cache_dir"] is model.detector.args["threads"] is None
    result = score_video(DEMO_CLIP, model, tmp_path / "demo", write_annotated=False)
    # (ONNX Runtime's arithmetic differs a little between CPUs: bounds, not the exact frames measured here)
    overlapping = [e for e in result["events"] if e["start_frame"] <= ANOMALY[1] and e["end_frame"] >= ANOMALY[0]]
    assert overlapping and sum(e["end_frame"] - e["start_frame"] + 1 for e in overlapping) >= 120, result["events"]
    assert all(e["start_frame"] >= 15 for e in result["events"])  # the clip's normal start is no false alarm
    for event in result["events"]:
        x0, y0, x1, y1 = event["box"]
        assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 240
        assert event["start_frame"] <= event["object_frame"] <= event["end_frame"]
        assert event["reason"].startswith(("velocity", "appearance")), event["reason"]
