"""The object-attribute detector: each attribute on synthetic moving squares, calibration from training data only,
the threshold's false-alarm rate on held-out clips (the contract itself: tests/detectors/test_contract.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vadkit.detectors import VideoItem, build_detector, load_detector
from vadkit.features.attributes import velocity_features
from vadkit.io import write_video

SIZE = 96
FRAMES = 32


def test_velocity_is_speed_in_box_heights_with_a_direction_histogram():
    flow = np.zeros((40, 40, 2), np.float32)
    flow[0:10, 0:10] = (5.0, 0.0)  # moving right, 5 px per frame
    flow[20:40, 20:40] = (0.0, -1.0)  # moving up, 1 px per frame
    fast, slow = velocity_features(flow, np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32), bins=4)
    assert fast[-1] == pytest.approx(5.0 / 10) and slow[-1] == pytest.approx(1.0 / 20)  # speed / box height
    assert np.argmax(fast[:4]) != np.argmax(slow[:4])  # two directions, two bins
    assert fast[:4].sum() == pytest.approx(fast[-1])


def scene(seed: int, speed: int = 3, fast: bool = False, shape: str = "square") -> list[np.ndarray]:
    """Two objects walking right; with ``fast`` the second moves 5x faster; ``shape="bar"`` makes it a long bar."""
    rng = np.random.default_rng(seed)
    rows = (int(rng.integers(8, 30)), int(rng.integers(56, 74)))
    cols = [int(rng.integers(0, 20)), int(rng.integers(0, 20))]
    frames = []
    for t in range(FRAMES):
        frame = np.full((SIZE, SIZE, 3), 25, np.uint8)
        for k, row in enumerate(rows):
            step = speed * (5 if fast and k == 1 else 1)
            x = (cols[k] + step * t) % (SIZE - 16)
            if shape == "bar" and k == 1:
                frame[row:row + 6, max(0, x - 10):x + 26] = (60, 230, 60)
            else:
                frame[row:row + 16, x:x + 16] = (230, 200, 180)
        frames.append(frame)
    return frames


def item(path, name):
    return VideoItem(id=name, num_frames=FRAMES, label=0, path=path)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")
    root = tmp_path_factory.mktemp("objects")
    train = [item(write_video(root / f"n{i}.mp4", scene(i), fps=25), f"n{i}") for i in range(4)]
    detector = build_detector("objects", boxes="motion", cache_dir=str(root / "cache"), components=2, threads=1)
    return detector.fit(train, progress=False), root


def test_a_square_five_times_faster_is_the_most_abnormal_object(fitted):
    detector, root = fitted
    fast = item(write_video(root / "fast.mp4", scene(50, fast=True), fps=25), "fast")
    objs = detector.object_attributes(fast)
    assert len(objs["frame"]) > 0
    top = np.argmax(objs["velocity"])
    rows = objs["xyxy"][:, 1]
    assert rows[top] > SIZE / 2  # the fast square runs in the lower half
    normal = detector.object_attributes(item(write_video(root / "calm.mp4", scene(51), fps=25), "calm"))
    assert objs["velocity"].max() > 2 * normal["velocity"].max()


def test_a_new_shape_scores_higher_on_appearance(fitted):
    detector, root = fitted
    odd = detector.object_attributes(item(write_video(root / "bar.mp4", scene(60, shape="bar"), fps=25), "bar"))
    calm = detector.object_attributes(item(write_video(root / "calm2.mp4", scene(61), fps=25), "calm2"))
    assert np.median(odd["appearance"]) > np.median(calm["appearance"])


def test_scores_do_not_depend_on_test_labels(fitted):
    detector, root = fitted
    path = write_video(root / "probe.mp4", scene(70, fast=True), fps=25)
    unlabelled = detector.score(VideoItem(id="probe", num_frames=FRAMES, path=path)).values
    labels = np.zeros(FRAMES, np.uint8)
    labels[5:20] = 1
    labelled = detector.score(VideoItem(id="probe", num_frames=FRAMES, path=path, label=1, frame_labels=labels)).values
    np.testing.assert_array_equal(unlabelled, labelled)


def test_the_threshold_realises_the_false_alarm_rate_on_held_out_training_clips(fitted):
    detector, root = fitted
    assert 0.0 < detector.calibration_["held_out_far"] <= 2 * detector.args["false_alarm_rate"]
    fresh = [item(write_video(root / f"h{i}.mp4", scene(100 + i), fps=25), f"h{i}") for i in range(3)]
    alarms = np.concatenate([detector.score(v).abnormal() for v in fresh])
    assert alarms.mean() <= 0.1  # new normal clips of the same scene: few alarms (requested 0.01)


def test_explain_gives_each_frames_top_object_and_names_its_highest_attribute(fitted):
    detector, root = fitted
    path = write_video(root / "fast_explain.mp4", scene(80, fast=True), fps=25)
    probe = item(path, "fast_explain")
    objects = detector.explain(probe)
    assert len(objects) == FRAMES and objects.size == (SIZE, SIZE)
    frame = int(np.nanargmax(objects.attributes["velocity"] + objects.attributes["appearance"]))  # the top frame
    x1, y1, x2, y2 = objects.box(frame)
    assert y1 > SIZE / 2 - 8  # the box of the frame's top object is the fast square (lower half)
    every = detector.object_attributes(probe)  # the same object as the per-object listing's best of that frame
    mine = every["frame"] == frame
    assert np.allclose(every["xyxy"][mine][np.argmax(every["score"][mine])], (x1, y1, x2, y2))
    scores = objects.scores(frame)
    top = max(scores, key=scores.get)
    assert objects.reason(frame).startswith(f"{top} {scores[top]:.1f} times the 99.9th percentile of held-out training")
    assert objects.box(frame, (2 * SIZE, 2 * SIZE)) == [round(2 * v, 1) for v in (x1, y1, x2, y2)]


def test_vadkit_score_draws_and_names_the_abnormal_object(fitted, tmp_path):
    import json

    import cv2

    from vadkit.inference import score_video
    from vadkit.io import open_video

    detector, root = fitted
    path = write_video(root / "fast_score.mp4", scene(81, fast=True), fps=25)
    result = score_video(path, detector, tmp_path / "out", smoothing_sigma=0, min_event_frames=1)
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(saved["objects"]["boxes"]) == FRAMES and set(saved["objects"]["attributes"]) == {"velocity",
                                                                                               "appearance"}
    assert result["events"], "the fast square raised no event"
    event = max(result["events"], key=lambda e: e["peak_score"])
    top = max(event["attributes"], key=event["attributes"].get)
    assert event["reason"].startswith(f"{top} ")
    assert event["start_frame"] <= event["object_frame"] <= event["end_frame"]
    assert saved["objects"]["boxes"][event["object_frame"]] == event["box"]
    assert f"yellow box: {top} " in (tmp_path / "out" / "report.html").read_text()
    with open_video(tmp_path / "out" / "annotated.mp4") as video:  # the box is drawn on the event's frames
        frame = next(f for i, f in enumerate(video.frames()) if i == event["object_frame"])
    x1, y1, x2, y2 = (int(round(v)) for v in event["box"])
    edge = frame[max(0, y1 - 1):y1 + 3, x1:x2 + 1].reshape(-1, 3).astype(int)
    yellow = (edge[:, 0] > 180) & (edge[:, 1] > 150) & (edge[:, 2] < 120)
    assert yellow.mean() > 0.5, "no yellow box edge where the event's object is"
    thumb = cv2.imread(str(tmp_path / "out" / event["thumbnail"]))
    assert thumb is not None


def test_fit_normal_objects_makes_a_model_vadkit_score_uses(fitted, tmp_path):
    """`vadkit fit-normal VIDEOS` (objects, the default method, in the declared YOLOX configuration) on a user's
    footage, then `vadkit score --model RUN`."""
    import json

    from typer.testing import CliRunner

    from vadkit.cli import app

    _, root = fitted
    footage = tmp_path / "normal"
    footage.mkdir()
    for i in range(3):
        write_video(footage / f"cam{i}.mp4", scene(200 + i), fps=25)
    runner = CliRunner()
    fitted_run = runner.invoke(app, ["fit-normal", str(footage), "--out", str(tmp_path / "run"), "--json"])
    assert fitted_run.exit_code == 0, fitted_run.output
    calibration = json.loads(fitted_run.output.strip().splitlines()[-1])
    assert calibration["training_objects"] > 0 and 0 < calibration["achieved_far"] <= 0.1
    card = json.loads((tmp_path / "run" / "protocol.json").read_text())
    assert card["method"].startswith("objects: boxes=yolox, thresholds=ped2") and card["split"].startswith("one-class, fit-normal")
    from vadkit.detectors import load_detector
    from vadkit.detectors.objects import DECLARED_YOLOX

    fitted_args = load_detector(tmp_path / "run").args
    assert {k: fitted_args[k] for k in DECLARED_YOLOX} == DECLARED_YOLOX
    probe = write_video(tmp_path / "probe.mp4", scene(210, fast=True), fps=25)
    scored = runner.invoke(app, ["score", str(probe), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "out"),
                                 "--no-video", "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads((tmp_path / "out" / "probe" / "result.json").read_text())
    assert result["model"]["name"] == "objects" and len(result["objects"]["boxes"]) == FRAMES
    assert all(e.get("reason") for e in result["events"])
    one = runner.invoke(app, ["fit-normal", str(footage / "cam0.mp4"), "--out", str(tmp_path / "run1"),
                              "--method", "objects"])
    assert one.exit_code == 1 and "at least two training videos" in one.output


def test_calibration_rules_map_held_out_training_scores_to_one_scale():
    from vadkit.detectors.objects import calibration_points

    held_out = np.random.default_rng(0).gamma(2.0, 3.0, size=5000)
    z = calibration_points(held_out, "zscore", 0.999)
    calibrated = (held_out - z["low"]) / (z["high"] - z["low"])
    assert abs(calibrated.mean()) < 1e-9 and abs(calibrated.std() - 1) < 1e-9
    r = calibration_points(held_out, "range", 0.99)
    assert r["low"] == held_out.min() and r["high"] == np.quantile(held_out, 0.99)
    with pytest.raises(ValueError, match="calibration must be one of"):
        build_detector("objects", calibration="percentile")


def test_balanced_calibration_lets_each_attribute_cause_its_share_of_the_top_scores():
    from vadkit.detectors.objects import BALANCED_CANDIDATES, alarm_imbalance, balanced_calibration

    rng = np.random.default_rng(1)
    held_out = {"velocity": np.exp(rng.normal(0, 2.0, 20000)) - 60.0,  # heavy-tailed, like a mixture's NLL
                "appearance": rng.normal(8.0, 1.5, 20000)}
    points, tried = balanced_calibration(held_out)
    imbalances = [t["imbalance"] for t in tried[:-1]]
    assert len(imbalances) == len(BALANCED_CANDIDATES)
    calibrated = {n: (x - points[n]["low"]) / (points[n]["high"] - points[n]["low"]) for n, x in held_out.items()}
    assert alarm_imbalance(calibrated) == pytest.approx(min(imbalances), abs=1e-4)
    rule, quantile = BALANCED_CANDIDATES[imbalances.index(min(imbalances))]
    assert tried[-1]["chosen"] == (rule if rule == "zscore" else f"{rule}-{quantile:g}")


def test_hog_appearance_describes_the_box_crop_and_finds_a_new_shape(tmp_path):
    from vadkit.features.attributes import HOG_DIM, hog_appearance

    frame = np.full((96, 96, 3), 25, np.uint8)
    frame[10:26, 10:26] = 230  # a square
    frame[60:66, 20:56] = 230  # a bar
    square, bar, empty = hog_appearance(frame, np.array([[8, 8, 28, 28], [18, 58, 58, 68], [70, 70, 90, 90]]))
    assert square.shape == (HOG_DIM,) and abs(np.linalg.norm(square) - 1) < 1e-5
    assert np.linalg.norm(square - bar) > 0.3 and not empty.any()  # a flat crop has no gradients
    root = tmp_path
    train = [item(write_video(root / f"n{i}.mp4", scene(i), fps=25), f"n{i}") for i in range(3)]
    detector = build_detector("objects", boxes="motion", cache_dir=str(root / "cache"), components=2, threads=1,
                              appearance="hog", calibration="balanced").fit(train, progress=False)
    odd = detector.object_attributes(item(write_video(root / "bar.mp4", scene(60, shape="bar"), fps=25), "bar"))
    calm = detector.object_attributes(item(write_video(root / "calm.mp4", scene(61), fps=25), "calm"))

    def lower(objs):  # the second object (the bar, or a square in the calm clip) runs in the lower half
        return objs["appearance"][objs["xyxy"][:, 1] > SIZE / 2 - 10]

    assert np.median(lower(odd)) > 2 * np.median(lower(calm))
    assert detector.calibration_["rule"] in ("range-0.999", "range-0.99", "median-0.999", "median-0.99", "zscore")


def test_a_users_onnx_detector_gives_the_boxes(tmp_path):
    """boxes='onnx': a real ONNX model run by onnxruntime (here one that always reports the same two boxes, one of
    them below the score threshold) supplies the object boxes; motion boxes cover what it misses."""
    pytest.importorskip("onnxruntime", reason="the ONNX box source needs onnxruntime (pip install 'vadkit[onnx]')")
    import torch

    class Fixed(torch.nn.Module):
        def forward(self, image):  # (1, 3, H, W) -> boxes (2, 4), scores (2,)
            zero = image.mean() * 0
            return torch.tensor([[10.0, 60.0, 40.0, 90.0], [50.0, 5.0, 70.0, 40.0]]) + zero, \
                torch.tensor([0.9, 0.3]) + zero

    model = tmp_path / "fixed.onnx"
    torch.onnx.export(Fixed().eval(), (torch.zeros(1, 3, SIZE, SIZE),), str(model), input_names=["image"],
                      output_names=["boxes", "scores"], dynamo=True)
    with pytest.raises(ValueError, match="detector_file"):
        build_detector("objects", boxes="onnx")
    train = [item(write_video(tmp_path / f"n{i}.mp4", scene(i), fps=25), f"n{i}") for i in range(3)]
    detector = build_detector("objects", boxes="onnx", detector_file=str(model), cache_dir=str(tmp_path / "cache"),
                              components=2, threads=1, appearance="hog").fit(train, progress=False)
    objs = detector.object_attributes(item(write_video(tmp_path / "probe.mp4", scene(90), fps=25), "probe"))
    first = objs["xyxy"][objs["frame"] == 5]
    assert [10.0, 60.0, 40.0, 90.0] in first.tolist()  # the detection above the score threshold, in every frame
    assert [50.0, 5.0, 70.0, 40.0] not in first.tolist()  # the one below it is dropped
    assert (objs["frame"] == 5).sum() >= 1 and detector.score(item(tmp_path / "probe.mp4", "probe")).values.size


def test_scene_scale_measures_speed_in_the_height_objects_have_where_they_stand():
    """``velocity_scale: scene``: a line of height by foot row fitted on training boxes; a fragment of an object (a
    short box) moving as fast as whole objects at its row is as fast as they are, where box heights call it faster."""
    from vadkit.detectors.objects import fit_perspective, perspective_heights

    rng = np.random.default_rng(0)
    foot = rng.uniform(60, 220, 400)
    height = 0.25 * foot + 5  # perspective: objects lower in the frame are taller
    tops = foot - height
    boxes = np.stack([np.full(400, 10.0), tops, np.full(400, 20.0), foot], axis=1).astype(np.float32)
    fragments = boxes[:40].copy()
    fragments[:, 1] = fragments[:, 3] - 6  # 40 leg-sized fragments must not bend the line
    fitted_line = fit_perspective(np.concatenate([boxes, fragments]), [(240, 240)] * 2)
    assert fitted_line["slope"] == pytest.approx(0.25, abs=0.02) and fitted_line["intercept"] == pytest.approx(5, abs=3)
    assert perspective_heights(fitted_line, np.array([100.0, 200.0])) == pytest.approx([30, 55], abs=2)

    detector = build_detector("objects", velocity_scale="scene")
    detector.calibration_ = {"perspective": fitted_line}
    flow = np.zeros((240, 240, 2), np.float32)
    flow[150:200, 0:40] = (4.0, 0.0)  # everything at rows 150-200 moves 4 px per frame
    whole, fragment = np.array([[0, 150, 20, 200], [20, 190, 40, 200]], np.float32)  # 50 px and a 10 px fragment
    box_scale = velocity_features(flow, np.stack([whole, fragment]))
    assert box_scale[1, -1] == pytest.approx(5 * box_scale[0, -1])  # in box heights the fragment is 5x as fast
    objs = {"velocity": box_scale, "xyxy": np.stack([whole, fragment]), "size": np.array([240, 240])}
    scene_scale = detector._velocity(objs)
    assert scene_scale[1, -1] == pytest.approx(scene_scale[0, -1])  # in the scene's heights, as fast as each other
    with pytest.raises(ValueError, match="velocity_scale must be one of"):
        build_detector("objects", velocity_scale="pixels")
    with pytest.raises(ValueError, match="one camera view"):
        fit_perspective(boxes, [(240, 240), (320, 240)])
    level = fit_perspective(np.tile([[10, 80, 20, 120]], (30, 1)).astype(np.float32), [(240, 240)])
    assert level["slope"] == 0 and level["intercept"] == 40  # every box on one row: one height
    with pytest.raises(ValueError, match="fitted on frames 240 pixels high, this video's are 120"):
        detector._velocity({**objs, "size": np.array([240, 120])})


def test_scene_scaled_detector_finds_the_fast_square_and_keeps_its_perspective(fitted, tmp_path):
    detector, root = fitted
    train = [item(root / f"n{i}.mp4", f"n{i}") for i in range(4)]
    scene_detector = build_detector("objects", **{**detector.args, "velocity_scale": "scene"})
    scene_detector.fit(train, progress=False)
    probe = item(write_video(tmp_path / "fast.mp4", scene(99, fast=True), fps=25), "fast")
    objects = scene_detector.object_attributes(probe)
    top = objects["velocity"].argmax()
    assert objects["xyxy"][top][1] > SIZE / 2  # the fast square is the lower one
    scene_detector.save(tmp_path / "scene.pt")
    loaded = load_detector(tmp_path / "scene.pt")
    assert loaded.calibration_["perspective"] == scene_detector.calibration_["perspective"]
    np.testing.assert_allclose(loaded.score(probe).values, scene_detector.score(probe).values)


def test_moving_pixels_keep_a_loose_boxs_speed_from_being_diluted_by_still_background():
    flow = np.zeros((40, 40, 2), np.float32)
    flow[10:20, 10:20] = (3.0, 0.0)
    flow[0:40, 30:40] = (0.05, 0.02)  # DIS's noise on the still background
    tight, loose = np.array([[10, 10, 20, 20], [0, 0, 40, 40]], np.float32)
    box = velocity_features(flow, np.stack([tight, loose]), bins=4)
    moving = velocity_features(flow, np.stack([tight, loose]), bins=4, pixels="moving")
    assert box[1, -1] < box[0, -1] / 4  # the loose box's mean speed is diluted (per box height too)
    assert moving[0, -1] * 10 == pytest.approx(3.0) and moving[1, -1] * 40 == pytest.approx(3.0)  # px per frame
    assert velocity_features(np.zeros((8, 8, 2), np.float32), tight[None] / 4, pixels="moving").sum() == 0
    with pytest.raises(ValueError, match="'box' or 'moving'"):
        velocity_features(flow, tight[None], pixels="all")


def test_fit_normal_objects_with_opencvs_people_detector(fitted, tmp_path):
    """`--box-detector hog`: OpenCV's built-in HOG people detector first (it finds no person in squares), motion
    boxes for the rest; every N-th frame with ``detect_every``."""
    import json

    from typer.testing import CliRunner

    from vadkit.cli import app

    footage = tmp_path / "normal"
    footage.mkdir()
    for i in range(2):
        write_video(footage / f"cam{i}.mp4", scene(300 + i), fps=25)
    result = CliRunner().invoke(app, ["fit-normal", str(footage), "--out", str(tmp_path / "run"), "--method",
                                      "objects", "--box-detector", "hog", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "run" / "protocol.json").read_text())
    assert card["method"].startswith("objects: boxes=hog, thresholds=ped2")
    assert json.loads(result.output.strip().splitlines()[-1])["training_objects"] > 0
    detector = build_detector("objects", boxes="hog", detector_options={"upscale": 1.0}, detect_every=5,
                              cache_dir=str(tmp_path / "cache"))
    objs = detector.objects(item(footage / "cam0.mp4", "cam0"))
    assert len(objs["frame"]) > 0 and detector._detector().identity.startswith("opencv-hog-people")
    for wrong in (0, 1.5):
        with pytest.raises(ValueError, match="detect_every must be a whole number >= 1"):
            build_detector("objects", boxes="hog", detect_every=wrong)


def walking_person_frames(num_frames: int = 12, square: bool = False) -> list[np.ndarray]:
    """A drawn person-like shape (head, torso, legs; 60 px) walking right over a grey 360x240 frame; with ``square``
    a small bright square also moves across the top (something YOLOX does not call a person)."""
    import cv2

    frames = []
    for t in range(num_frames):
        frame = np.full((240, 360, 3), 150, np.uint8)
        x, y, u = 80 + 4 * t, 100, 60 / 8
        cv2.circle(frame, (int(x), int(y + u)), int(u * 0.8), (200, 170, 140), -1)
        cv2.rectangle(frame, (int(x - 1.1 * u), int(y + 2 * u)), (int(x + 1.1 * u), int(y + 4.8 * u)), (40, 40, 90), -1)
        for side in (-1, 1):
            cv2.line(frame, (int(x + side * u), int(y + 2.2 * u)), (int(x + side * 1.6 * u), int(y + 4.5 * u)),
                     (40, 40, 90), int(u * 0.6))
            cv2.line(frame, (int(x + side * 0.5 * u), int(y + 4.8 * u)), (int(x + side * 0.9 * u), int(y + 8 * u)),
                     (30, 30, 30), int(u * 0.7))
        if square:
            frame[10:30, 200 + 6 * t:220 + 6 * t] = 250
        frames.append(frame)
    return frames


def test_yolox_boxes_with_and_without_motion_fallback(tmp_path):
    """boxes='yolox': the shipped YOLOX-Nano boxes the drawn person in every frame; fallback 'motion' adds a box for
    the moving square it does not detect, fallback 'none' does not."""
    pytest.importorskip("onnxruntime", reason="the YOLOX box source needs onnxruntime (pip install 'vadkit[onnx]')")
    from vadkit.io import open_video_frames

    frames = walking_person_frames(square=True)
    folder = tmp_path / "clip"
    folder.mkdir()
    import cv2

    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame[..., ::-1])
    clip = VideoItem(id="clip", num_frames=len(frames), label=0, path=folder)
    found = {}
    for fallback in ("motion", "none"):
        detector = build_detector("objects", boxes="yolox", fallback=fallback, cache_dir=str(tmp_path / "cache"),
                                  detector_options={"scale": 1.0, "batch": 5}, detect_every=2, threads=1,
                                  appearance="hog")
        with open_video_frames(folder, len(frames), "clip") as video:
            source, found[fallback] = detector._boxes(clip, video)
        assert source.kind == "yolox"
    for t in range(len(frames)):
        person = [b for b in found["none"][t] if b[1] > 80 and b[3] - b[1] > 40]
        assert len(found["none"][t]) == 1 and len(person) == 1, found["none"][t]
        assert abs((person[0][0] + person[0][2]) / 2 - (80 + 4 * (t - t % 2))) < 8  # detect_every 2: held boxes
    assert all(any(b[3] <= 40 for b in boxes) for boxes in found["motion"][1:-1])  # the square's motion box
    with pytest.raises(ValueError, match="fallback must be one of"):
        build_detector("objects", boxes="yolox", fallback="edges")


def test_fit_normal_objects_with_the_shipped_yolox(tmp_path):
    """`--box-detector yolox`: the YOLOX-Nano shipped with vadkit boxes the walking person; nothing is fetched."""
    pytest.importorskip("onnxruntime", reason="the YOLOX box source needs onnxruntime (pip install 'vadkit[onnx]')")
    import json

    from typer.testing import CliRunner

    from vadkit.cli import app

    footage = tmp_path / "normal"
    footage.mkdir()
    for i in range(2):
        write_video(footage / f"cam{i}.mp4", walking_person_frames(16 + 4 * i), fps=25)
    result = CliRunner().invoke(app, ["fit-normal", str(footage), "--out", str(tmp_path / "run"), "--method",
                                      "objects", "--box-detector", "yolox", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "run" / "protocol.json").read_text())
    assert card["method"].startswith("objects: boxes=yolox, thresholds=ped2")
    assert json.loads(result.output.strip().splitlines()[-1])["training_objects"] >= 36  # a person in every frame


def test_yolox_runs_where_backend_and_device_say():
    """`use_backend('openvino')` (what `--backend openvino` does) moves YOLOX to OpenVINO; torch and auto keep ONNX
    Runtime; a CUDA device without ONNX Runtime's CUDA provider is refused by name."""
    ort = pytest.importorskip("onnxruntime", reason="the YOLOX box source needs onnxruntime")
    pytest.importorskip("openvino", reason="the openvino runtime is not installed")
    detector = build_detector("objects", boxes="yolox", threads=1)
    assert detector.use_backend("auto")._detector().runtime == "onnxruntime"
    assert detector.use_backend("openvino")._detector().runtime == "openvino"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        from vadkit.device import DeviceError

        with pytest.raises((ValueError, DeviceError), match="CUDAExecutionProvider|cannot run on CUDA"):
            build_detector("objects", boxes="yolox").to_device("cuda")._detector()


def test_the_declared_yolox_config_file_and_fit_normals_defaults_agree():
    """configs/objects_ped2_yolox.yaml (what was measured) and DECLARED_YOLOX (what `fit-normal` fits) are one
    configuration: a change to one without the other fails here."""
    import yaml

    from vadkit.detectors.objects import DECLARED_YOLOX, ObjectsDetector

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "objects_ped2_yolox.yaml").read_text())
    args = {k: v for k, v in config["detector_args"].items() if k not in ("cache_dir", "threads", "false_alarm_rate")}
    assert args == DECLARED_YOLOX
    assert ObjectsDetector.fit_normal_args is DECLARED_YOLOX
