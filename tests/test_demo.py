"""What `make demo` does: the bundled model scores the bundled Ped2 clip and finds its annotated anomaly."""

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
