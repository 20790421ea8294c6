"""An object-centric one-class detector after AI-VAD (Reiss & Hoshen, "Attribute-based representations for accurate
and interpretable video anomaly detection"): no gradient training, densities of per-object attributes.

Per video (cached under ``cache_dir``): boxes per frame (``vec``: a benchmark's precomputed per-split box files;
``motion``: vadkit's motion boxes; ``onnx``: a user's ONNX detector with motion boxes), dense flow (OpenCV DIS),
and for every box two attributes (:mod:`vadkit.features.attributes`): **velocity** (orientation histogram of the flow
in the box plus mean speed, in box heights per frame) and **appearance** (``appearance: i3d``: I3D ``Mixed_4f`` pooled
over the box; ``hog``: the HOG descriptor of the box's own crop).

``fit`` (normal training videos only):

1. velocity density: a Gaussian mixture (``components``, full covariance); raw score = negative log-likelihood;
   appearance density: distance to the ``k`` nearest training objects (L2); raw score = mean distance;
2. calibration on training data only, leave one video out: each training video's objects are scored by densities
   fitted without that video; an attribute's calibrated score is ``(raw - low) / (high - low)`` with, of those
   held-out training scores, ``low`` = the minimum and ``high`` = the ``calibration_quantile`` (``calibration:
   range``, AI-VAD's official code) or ``low`` = the mean and ``high`` = the mean plus one standard deviation
   (``calibration: zscore``), or the rule chosen on those held-out scores so that each attribute causes an equal
   share of the highest ones (``calibration: balanced``), so both attributes speak on one scale;
3. object score = the sum of its calibrated attribute scores; frame score = the max over its objects (frames
   without objects get the lowest training object score), smoothed with a Gaussian of ``sigma`` frames;
4. threshold = the ``1 - false_alarm_rate`` quantile of the held-out training frame scores; then the densities are
   refitted on all training objects.

``object_attributes(item)`` returns, per object, its frame, box, and calibrated velocity and appearance scores;
``explain(item)`` the most abnormal object of each frame (its box and attribute scores: what made the frame's score),
which ``vadkit score`` draws on the annotated video and the event thumbnails and names in the report.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from vadkit.detectors.base import (Detector, FrameObjects, VideoItem, number_arg, progress_bar, register_detector,
                                   quantile_threshold, torch_threads)
from vadkit.detectors.knn import knn_distances
from vadkit.features.attributes import MOVING, pixel_heights
from vadkit.features.boxes.sources import FALLBACKS, BoxSource, box_cache_root, make_box_source
from vadkit.features.flow import FlowSettings, flow_for_video
from vadkit.io.files import atomic_path, content_stamp, safe_name

ATTRIBUTES = ("velocity", "appearance")
CALIBRATIONS = ("range", "median", "zscore", "balanced")
APPEARANCES = ("i3d", "hog")
VELOCITY_SCALES = ("box", "scene")
VELOCITY_PIXELS = ("box", "moving")
CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------------------------
# Densities kept as plain arrays (a model file holds tensors and plain data only)
# ---------------------------------------------------------------------------------------------------------------
def calibration_points(held_out: np.ndarray, rule: str, quantile: float) -> dict:
    """The raw scores an attribute's calibrated score maps to 0 (``low``) and 1 (``high``), from held-out training
    scores: ``range`` the minimum and the ``quantile``; ``median`` the median and the ``quantile``; ``zscore`` the
    mean and the mean plus one standard deviation."""
    if rule == "zscore":
        mean, std = float(held_out.mean()), float(held_out.std())
        return {"low": mean, "high": mean + max(std, 1e-12)}
    low = float(held_out.min()) if rule == "range" else float(np.median(held_out))
    return {"low": low, "high": max(float(np.quantile(held_out, quantile)), low + 1e-12)}


def calibration_unit(rule: str, quantile: float) -> str:
    """How a calibrated score reads after its number, for a rule (``range``, ``median``, ``zscore`` or a balanced
    choice such as ``median-0.99``)."""
    name, _, chosen = rule.partition("-")
    quantile = float(chosen) if chosen else quantile
    if name == "zscore":
        return "standard deviations above the mean of held-out training objects"
    if name == "median":
        return (f"times the distance from the median to the {100 * quantile:g}th percentile of held-out training "
                f"objects")
    return f"times the {100 * quantile:g}th percentile of held-out training objects"


# the candidates of ``calibration: balanced`` (rule, quantile), in order of preference on a tie
BALANCED_CANDIDATES = (("range", 0.999), ("range", 0.99), ("median", 0.999), ("median", 0.99), ("zscore", 0.0))
BALANCE_TAIL = 0.01  # the held-out training objects whose share of alarms each attribute should carry equally


def alarm_imbalance(calibrated: dict[str, np.ndarray], tail: float = BALANCE_TAIL) -> float:
    """How unevenly the attributes cause the top ``tail`` of objects by summed score: the largest gap between an
    attribute's share of those objects (where it is the largest term) and an equal share."""
    names = list(calibrated)
    stacked = np.stack([calibrated[n] for n in names])  # (attributes, objects)
    total = stacked.sum(axis=0)
    top = total >= np.quantile(total, 1.0 - tail)
    shares = np.bincount(np.argmax(stacked[:, top], axis=0), minlength=len(names)) / max(1, int(top.sum()))
    return float(np.abs(shares - 1.0 / len(names)).max())


def balanced_calibration(held_out: dict[str, np.ndarray]) -> tuple[dict, list]:
    """``calibration: balanced``: of :data:`BALANCED_CANDIDATES`, the rule under which the held-out training objects
    with the highest summed scores (the top :data:`BALANCE_TAIL`: the ones that become false alarms) are made
    abnormal by each attribute equally often, so that no attribute is drowned by another's scale. Chosen on
    held-out training scores alone. Returns the points per attribute (with ``rule``) and every candidate's
    imbalance."""
    tried = []
    for rule, quantile in BALANCED_CANDIDATES:
        points = {n: calibration_points(x, rule, quantile) for n, x in held_out.items()}
        calibrated = {n: (x - points[n]["low"]) / (points[n]["high"] - points[n]["low"]) for n, x in held_out.items()}
        tried.append({"rule": rule, "quantile": quantile, "imbalance": round(alarm_imbalance(calibrated), 4),
                      "points": points})
    best = min(tried, key=lambda t: t["imbalance"])  # the first of equals: min keeps the earliest
    return best["points"], [{k: t[k] for k in ("rule", "quantile", "imbalance")} for t in tried] + \
        [{"chosen": best["rule"] if best["rule"] == "zscore" else f"{best['rule']}-{best['quantile']:g}"}]


def object_scores(calibrated: dict[str, np.ndarray]) -> np.ndarray:
    """``(n,)`` objects' scores: the sum of their calibrated attribute scores."""
    return sum(calibrated[name] for name in ATTRIBUTES)


def fit_gmm(x: np.ndarray, components: int, seed: int) -> dict:
    """A full-covariance Gaussian mixture of ``x (n, d)`` as arrays: ``weights (K,)``, ``means (K, d)``,
    ``precisions_cholesky (K, d, d)``."""
    from sklearn.mixture import GaussianMixture

    components = max(1, min(components, len(x)))
    gmm = GaussianMixture(components, covariance_type="full", reg_covar=1e-6, random_state=seed).fit(x)
    return {"weights": gmm.weights_.astype(np.float64), "means": gmm.means_.astype(np.float64),
            "precisions_cholesky": gmm.precisions_cholesky_.astype(np.float64)}


def gmm_nll(gmm: dict, x: np.ndarray) -> np.ndarray:
    """Negative log-likelihood ``(n,)`` of ``x (n, d)`` under a mixture from :func:`fit_gmm`."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    logs = []
    for w, mu, chol in zip(gmm["weights"], gmm["means"], gmm["precisions_cholesky"]):
        y = (x - mu) @ chol  # (n, d)
        log_det = np.log(np.diag(chol)).sum()
        logs.append(np.log(w) - 0.5 * (d * np.log(2 * np.pi) + (y * y).sum(axis=1)) + log_det)
    stacked = np.stack(logs, axis=1)  # (n, K)
    top = stacked.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(stacked - top).sum(axis=1)))


def appearance_distances(queries: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    """Mean L2 distance ``(n,)`` float64 of each object's appearance ``(n, d)`` to its ``k`` nearest bank rows
    ``(B, d)``: :func:`~vadkit.detectors.knn.knn_distances` in blocks of 2048 objects."""
    queries_t = torch.from_numpy(np.ascontiguousarray(queries, np.float32))
    bank_t = torch.from_numpy(np.ascontiguousarray(bank, np.float32))
    return knn_distances(queries_t, bank_t, k, "euclidean", chunk=2048).numpy().astype(np.float64)


PERSPECTIVE_BINS = 10  # quantile bins of the boxes' foot rows for the height-by-row line


def fit_perspective(xyxy: np.ndarray, sizes: list[tuple[int, int]]) -> dict:
    """How tall an object is where it stands, from training boxes: a line ``height = slope * foot_row + intercept``
    through the median box height of each of :data:`PERSPECTIVE_BINS` quantile bins of the foot row (``y2``),
    weighted by their counts, so that fragments and merged boxes (the tails) do not bend it; heights below are
    floored at half the smallest bin median. Plain numbers, saved with the model.

    The detector fits it once on all training boxes, before leaving videos out for the calibration: it is the
    scene's geometry (like the frame size), two numbers from 10 medians, not a density of the objects."""
    if len({s for s in sizes}) > 1:
        raise ValueError(f"velocity_scale 'scene' needs one camera view: the training videos have frame sizes "
                         f"{sorted(set(sizes))} (width, height)")
    if len(xyxy) < 2 * PERSPECTIVE_BINS:
        raise ValueError(f"velocity_scale 'scene' needs at least {2 * PERSPECTIVE_BINS} training boxes to fit how "
                         f"tall objects are by row, found {len(xyxy)}")
    height = int(sizes[0][1])
    foot, tall = xyxy[:, 3].astype(np.float64), pixel_heights(xyxy, height)
    edges = np.unique(np.quantile(foot, np.linspace(0, 1, PERSPECTIVE_BINS + 1)))
    which = np.clip(np.searchsorted(edges, foot, side="right") - 1, 0, len(edges) - 2)
    rows, medians, counts = [], [], []
    for b in range(len(edges) - 1):
        inside = which == b
        if inside.any():
            rows.append(float(np.median(foot[inside])))
            medians.append(float(np.median(tall[inside])))
            counts.append(int(inside.sum()))
    if not rows:  # every box stands on one row: a single bin
        rows, medians, counts = [float(np.median(foot))], [float(np.median(tall))], [len(foot)]
    if len(rows) < 2 or np.ptp(rows) == 0:
        slope, intercept = 0.0, float(np.median(tall))
    else:
        slope, intercept = np.polyfit(rows, medians, 1, w=np.sqrt(counts))
    return {"slope": float(slope), "intercept": float(intercept), "floor": max(1.0, 0.5 * float(min(medians))),
            "bins": len(rows), "frame_height": height}


def perspective_heights(perspective: dict, foot_rows: np.ndarray) -> np.ndarray:
    """``(n,)`` expected object heights (pixels) at foot rows, from :func:`fit_perspective`."""
    rows = np.asarray(foot_rows, np.float64)
    return np.maximum(perspective["slope"] * rows + perspective["intercept"], perspective["floor"])


#: Configuration D (``configs/objects_ped2_yolox.yaml``): YOLOX-Nano boxes, motion fallback, speed in scene heights,
#: HOG appearance, balanced calibration, chosen on Ped2's training clips only and declared before its one test run
#: (docs/results.md, "Object attributes with YOLOX-Nano boxes": micro AUC 0.930 against k-NN's 0.786), so it is
#: what `vadkit fit-normal` fits on a user's footage; the config file and these values are kept equal by a test.
DECLARED_YOLOX: dict = {
    "boxes": "yolox", "detector_options": {"scale": 2.0, "confidence": 0.3, "nms_iou": 0.45, "batch": 4},
    "detect_every": 1, "fallback": "motion", "thresholds": "ped2", "flow_method": "dis", "flow_preset": "medium",
    "velocity_bins": 8, "velocity_scale": "scene", "components": 5, "appearance": "hog", "k": 1, "max_bank": 40_000,
    "calibration": "balanced", "calibration_quantile": 0.999, "sigma": 3.0,
}


@register_detector("objects")
class ObjectsDetector(Detector):
    """Object attributes (velocity, appearance) with training densities; frame score = max over objects.

    Args:
        boxes: ``vec`` (per-split box files in ``boxes_dir``; videos outside them fall back to motion boxes),
            ``motion``, ``background`` (what differs from the video's median frame: whole objects of a still
            camera, :func:`~vadkit.features.boxes.regions.background_boxes`; an object still for most of the video
            becomes background, and the video is read once for its median before its first box), or ``onnx``
            (a user's ONNX detector, ``detector_file``, plus motion boxes where it finds nothing, as VEC combines
            its detector with motion), ``hog`` (OpenCV's built-in HOG people detector,
            :class:`~vadkit.features.boxes.box_detectors.HogPeopleDetector`, plus motion boxes) or ``yolox`` (YOLOX-Nano,
            shipped with vadkit: :class:`~vadkit.features.yolox.YoloxDetector`, plus ``fallback`` boxes).
        fallback: with ``onnx``, ``hog`` or ``yolox``: what boxes the moving regions no detection covers:
            ``motion`` (frame differences, VEC), ``background`` (differences from the video's median frame) or
            ``none`` (the detector's boxes alone).
        (With ``yolox``, :meth:`to_device` puts the detector on ``cuda`` / ``cuda:N`` through ONNX Runtime's CUDA
        provider; the runtime is ONNX Runtime unless :meth:`use_backend` names ``openvino`` or ``detector_options``
        give ``runtime``. The device is not a saved argument: model files stay device-free.)
        detector_file, detector_options: with ``onnx``: the model and
            :class:`~vadkit.features.boxes.box_detectors.OnnxDetector`'s options (input size, normalisation,
            classes, ...); with ``hog``: the options of :class:`~vadkit.features.boxes.box_detectors.HogPeopleDetector`
            (``upscale``, ``hit_threshold``, ...); with ``yolox``: those of
            :class:`~vadkit.features.yolox.YoloxDetector` (``scale``, ``confidence``, ``nms_iou``, ``classes``,
            ``batch``).
        (Every box source is :mod:`vadkit.features.boxes.sources`'s, shared with STATE. In `vadkit watch`,
        ``background`` (and a ``background`` fallback) uses a running median of the stream's recent frames, carried
        from segment to segment, in place of the video's median frame.)
        detect_every: with ``onnx``, ``hog`` or ``yolox``: run the detector on every N-th frame, keeping its boxes
            between.
        boxes_dir, box_file: the per-split box files (``{split}`` in the name), as STATE reads them.
        thresholds: motion-box thresholds (dataset name).
        flow_method, flow_preset: OpenCV flow.
        velocity_bins: orientation bins of the velocity attribute.
        components: Gaussian mixture components of the velocity density.
        k: nearest training objects averaged for the appearance density.
        max_bank: most training objects kept for the appearance density (seeded subsample beyond it).
        calibration: ``range`` (held-out training minimum -> 0, ``calibration_quantile`` -> 1), ``median``
            (median -> 0, ``calibration_quantile`` -> 1), ``zscore`` (mean -> 0, one standard deviation above it
            -> 1) or ``balanced`` (the one of those that splits the top 1 % of held-out training objects evenly
            between the attributes: :func:`balanced_calibration`).
        calibration_quantile: with ``range``, the held-out training score an attribute's calibrated score maps to 1.
        sigma: Gaussian smoothing of frame scores, frames (AI-VAD: 3).
        false_alarm_rate: share of held-out training frames allowed above the threshold.
        cache_dir: boxes, flow and attributes per video.
        seed, threads: the mixture's seed and the bank subsample; torch CPU threads.
        appearance: ``i3d`` (I3D ``Mixed_4f`` pooled over the box) or ``hog`` (the HOG descriptor of the box's crop).
        velocity_scale: what speed is measured in: ``box`` (the object's own box heights per frame) or ``scene``
            (the height a training object standing at the box's foot has: :func:`fit_perspective`, fitted on the
            training boxes, so that a fragment of an object is not fast for being short).
        velocity_pixels: the box's pixels the velocity is taken over: ``box`` (all) or ``moving`` (those whose flow
            is above DIS's noise: :func:`~vadkit.features.attributes.velocity_features`).
    """

    name = "objects"
    scoring_kind = "objects"
    card_args = ("boxes", "thresholds", "appearance")
    fit_normal_args = DECLARED_YOLOX  # `vadkit fit-normal`'s default method since it beat k-NN (docs/results.md)
    inputs = "frames"
    state_types = {"gmm": ((dict,), True), "bank": ((torch.Tensor,), True), "calibration": ((dict,), True)}
    threshold_rule = ("calibrated false-alarm quantile: the (1 - false_alarm_rate) quantile of the training frames' "
                      "smoothed scores, each training video scored by densities fitted without it")

    def __init__(self, boxes: str = "motion", boxes_dir: str | None = None, box_file: str = "ped2_{split}_boxes.npz",
                 thresholds: str = "ped2", flow_method: str = "dis", flow_preset: str = "medium",
                 velocity_bins: int = 8, components: int = 5, k: int = 1, max_bank: int = 40_000,
                 calibration_quantile: float = 0.999, sigma: float = 3.0, false_alarm_rate: float = 0.01,
                 cache_dir: str | None = None, seed: int = 0, threads: int | None = None,
                 calibration: str = "range", appearance: str = "i3d", detector_file: str | None = None,
                 detector_options: dict | None = None, velocity_scale: str = "box",
                 velocity_pixels: str = "box", detect_every: int = 1, fallback: str = "motion") -> None:
        super().__init__(boxes=boxes, boxes_dir=boxes_dir, box_file=box_file, thresholds=thresholds,
                         flow_method=flow_method, flow_preset=flow_preset, velocity_bins=velocity_bins,
                         components=components, k=k, max_bank=max_bank,
                         calibration_quantile=number_arg(calibration_quantile, "calibration_quantile"),
                         sigma=number_arg(sigma, "sigma"), false_alarm_rate=number_arg(false_alarm_rate,
                                                                                        "false_alarm_rate"),
                         cache_dir=cache_dir, seed=seed, threads=threads, calibration=calibration,
                         appearance=appearance, detector_file=detector_file,
                         detector_options=dict(detector_options or {}), velocity_scale=velocity_scale,
                         velocity_pixels=velocity_pixels, detect_every=detect_every, fallback=fallback)
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if velocity_pixels not in VELOCITY_PIXELS:
            raise ValueError(f"velocity_pixels must be one of {VELOCITY_PIXELS}, got {velocity_pixels!r}")
        if velocity_scale not in VELOCITY_SCALES:
            raise ValueError(f"velocity_scale must be one of {VELOCITY_SCALES}, got {velocity_scale!r}")
        if appearance not in APPEARANCES:
            raise ValueError(f"appearance must be one of {APPEARANCES}, got {appearance!r}")
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
        for key in ("velocity_bins", "components", "k", "max_bank"):  # (detect_every: make_box_source)
            if self.args[key] < 1 or int(self.args[key]) != self.args[key]:
                raise ValueError(f"{key} must be a whole number >= 1, got {self.args[key]!r}")
        if not 0.5 < self.args["calibration_quantile"] <= 1.0 or not 0.0 < self.args["false_alarm_rate"] < 1.0:
            raise ValueError(f"calibration_quantile must be in (0.5, 1] and false_alarm_rate in (0, 1), got "
                             f"{calibration_quantile} and {false_alarm_rate}")
        self.flow_settings = FlowSettings(method=flow_method, preset=flow_preset)
        self._appearance = None
        self._runtime = None  # the YOLOX runtime named by use_backend (None: detector_options' or ONNX Runtime)
        self._box_source = self._make_box_source()  # checks the box arguments
        self.gmm_: dict | None = None
        self.bank_: np.ndarray | None = None
        self.calibration_: dict = {}  # attribute -> {"low", "high"}; "empty": score of a frame without objects

    # -- per-video objects and attributes -------------------------------------------------------------------------
    @property
    def cache_root(self) -> Path:
        return box_cache_root(self.args["cache_dir"], "objects")

    def _make_box_source(self) -> BoxSource:
        """The box source the arguments name (:func:`~vadkit.features.boxes.sources.make_box_source`), its detector
        (if any) on this detector's device and runtime."""
        a = self.args
        return make_box_source(a["boxes"], thresholds=a["thresholds"], boxes_dir=a["boxes_dir"],
                               box_file=a["box_file"], detector_file=a["detector_file"],
                               detector_options=a["detector_options"], detect_every=a["detect_every"],
                               fallback=a["fallback"], threads=a["threads"], device=self._box_device,
                               runtime=self._runtime)

    def _boxes(self, item: VideoItem, video) -> tuple[BoxSource, list[np.ndarray]]:
        """``(source, boxes)``: the box source that serves this video (a box file's slice, or where the video is
        outside the box files the fallback) and its boxes of every frame."""
        source = self._box_source.for_video(item.id, item.path, item.num_frames)
        return source, source.boxes(video, self.cache_root, self._stream)

    def _detector(self):
        """The box detector of ``boxes: onnx``, ``hog`` or ``yolox``, made once."""
        return self._box_source.detector

    def use_backend(self, backend: str, threads: int | None = None) -> "ObjectsDetector":
        """The object detector has no torch network to swap; with ``boxes: yolox``, ``openvino`` runs YOLOX on
        OpenVINO and ``onnxruntime`` on ONNX Runtime (``torch`` and ``auto``: ONNX Runtime, its default)."""
        from vadkit.features.backends import check_backend_name

        check_backend_name(backend)
        if backend in ("onnxruntime", "openvino") and backend != self._runtime:
            self._runtime = backend
            self._box_source = self._make_box_source()
        configured = self.args["detector_options"].get("runtime", "onnxruntime")
        self.backend_ = (self._runtime or configured) if self.args["boxes"] == "yolox" else "torch"
        return self

    def _cache_file(self, item: VideoItem, source: BoxSource) -> Path:
        a = self.args
        record = dict(version=CACHE_VERSION, video=str(Path(item.path).resolve()), stamp=content_stamp(item.path),
                      frames=item.num_frames, boxes=source.kind, box_file=source.identity,
                      flow=[a["flow_method"], a["flow_preset"]], bins=a["velocity_bins"])
        if a["appearance"] != "i3d":  # (i3d caches keep their key)
            record["appearance"] = a["appearance"]
        if a["velocity_pixels"] != "box":  # (whole-box caches keep their key)
            record["velocity_pixels"] = [a["velocity_pixels"], MOVING]
        record.update(source.cache_options())  # detect_every, fallback: where off their defaults
        key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
        return self.cache_root / "attributes" / f"{safe_name(item.id)}-{key}.npz"

    def objects(self, item: VideoItem) -> dict[str, np.ndarray]:
        """Every object of a video: ``frame (n,)``, ``xyxy (n, 4)``, ``velocity (n, bins + 1)``,
        ``appearance (n, 832)`` (``i3d``; ``hog``: ``(n, 756)``) (cached)."""
        from vadkit.features.attributes import HOG_DIM, I3DAppearance, hog_appearance, velocity_features
        from vadkit.io import open_video_frames

        if item.path is None:
            raise ValueError(f"video {item.id}: no path (the object detector reads frames)")
        with open_video_frames(item.path, item.num_frames, item.id) as video:
            source, boxes = self._boxes(item, video)
            file = self._cache_file(item, source)
            size = np.array([video.width, video.height], np.int64)  # the frame the boxes refer to
            if file.is_file():
                with np.load(file, allow_pickle=False) as cached:
                    return {**{key: cached[key] for key in cached.files}, "size": size}
            flow = flow_for_video(video, self.cache_root / "flow", self.flow_settings)
            frames, xyxy, velocity, embedding = [], [], [], []

            def add(t: int, embed) -> None:
                if len(boxes[t]):
                    frames.append(np.full(len(boxes[t]), t, np.int32))
                    xyxy.append(boxes[t])
                    velocity.append(velocity_features(flow[t], boxes[t], self.args["velocity_bins"],
                                                       self.args["velocity_pixels"]))
                    embedding.append(embed(boxes[t]))

            if self.args["appearance"] == "hog":
                dim = HOG_DIM
                for t, frame in enumerate(video.frames()):
                    add(t, lambda b, frame=frame: hog_appearance(frame, b))
            else:
                if self._appearance is None:
                    self._appearance = I3DAppearance()
                appearance, dim = self._appearance, I3DAppearance.dim
                length = appearance.settings.snippet_len

                def pooled(map_, offset):
                    return lambda b: appearance.pool(map_, offset, length, b, video.width, video.height)

                end, last = 0, None
                for start, map_ in appearance.snippet_maps(video):
                    for t in range(max(start, end), min(start + length, item.num_frames)):
                        add(t, pooled(map_, t - start))
                    end, last = max(end, min(start + length, item.num_frames)), map_
                for t in range(end, item.num_frames):  # frames after the last full snippet: its last time step
                    add(t, pooled(last, length - 1))
        bins = self.args["velocity_bins"] + 1
        found = {"frame": np.concatenate(frames) if frames else np.zeros(0, np.int32),
                 "xyxy": np.concatenate(xyxy).astype(np.float32) if xyxy else np.zeros((0, 4), np.float32),
                 "velocity": np.concatenate(velocity) if velocity else np.zeros((0, bins), np.float32),
                 "appearance": np.concatenate(embedding) if embedding else np.zeros((0, dim), np.float32)}
        with atomic_path(file, suffix=".npz") as tmp:
            np.savez(tmp, **found)
        return {**found, "size": size}

    # -- densities and calibration --------------------------------------------------------------------------------
    def _raw(self, gmm: dict, bank: np.ndarray, objs: dict) -> dict[str, np.ndarray]:
        if len(objs["frame"]) == 0:
            return {name: np.zeros(0) for name in ATTRIBUTES}
        return {"velocity": gmm_nll(gmm, self._velocity(objs)),
                "appearance": appearance_distances(objs["appearance"], bank, self.args["k"])}

    def _velocity(self, objs: dict) -> np.ndarray:
        """The objects' velocity descriptors in the unit ``velocity_scale`` asks for (the cache holds box heights)."""
        if self.args["velocity_scale"] == "box":
            return objs["velocity"]
        perspective = self.calibration_["perspective"]
        if int(objs["size"][1]) != perspective["frame_height"]:
            raise ValueError(f"velocity_scale 'scene': the model's height-by-row line was fitted on frames "
                             f"{perspective['frame_height']} pixels high, this video's are {int(objs['size'][1])}; "
                             f"score footage of the camera view it was fitted on, at the same resolution")
        heights = pixel_heights(objs["xyxy"], int(objs["size"][1]))
        expected = perspective_heights(perspective, objs["xyxy"][:, 3])
        return objs["velocity"] * (heights / expected)[:, None]  # (n, bins + 1): box heights -> scene heights

    def _calibrated(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: (raw[name] - self.calibration_[name]["low"])
                / max(self.calibration_[name]["high"] - self.calibration_[name]["low"], 1e-12) for name in ATTRIBUTES}

    def _frame_scores(self, objs: dict, calibrated: dict[str, np.ndarray], num_frames: int) -> np.ndarray:
        scores = np.full(num_frames, -np.inf)
        if len(objs["frame"]):
            np.maximum.at(scores, objs["frame"].astype(np.int64), object_scores(calibrated))
        scores[np.isneginf(scores)] = self.calibration_["empty"]
        return gaussian_filter1d(scores, self.args["sigma"], mode="nearest") if self.args["sigma"] else scores

    def _bank(self, appearance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(appearance) > self.args["max_bank"]:
            appearance = appearance[np.sort(rng.choice(len(appearance), self.args["max_bank"], replace=False))]
        return appearance.astype(np.float16).astype(np.float32)  # the model file keeps float16

    def _fit(self, train: list[VideoItem], progress: bool) -> None:
        a = self.args
        with torch_threads(a["threads"]):
            per_video = []
            with progress_bar("object attributes", progress) as bar:
                task = bar.add_task("videos", total=len(train), info="")
                for item in train:
                    per_video.append(self.objects(item))
                    bar.advance(task)
            if sum(len(v["frame"]) > 0 for v in per_video) < 2:
                raise ValueError(f"the object detector needs objects in at least two training videos (it calibrates "
                                 f"by leaving one video out); found {[len(v['frame']) for v in per_video]} objects")
            rng = np.random.default_rng(a["seed"])
            self.calibration_ = {}
            if a["velocity_scale"] == "scene":
                sizes = [tuple(int(v) for v in o["size"]) for o in per_video]  # (width, height) per video
                boxes = np.concatenate([o["xyxy"] for o in per_video])  # (objects, 4)
                self.calibration_["perspective"] = fit_perspective(boxes, sizes)
            held_raw = []
            for v in range(len(per_video)):  # leave one video out: its objects scored by the others' densities
                rest = [o for j, o in enumerate(per_video) if j != v and len(o["frame"])]
                gmm = fit_gmm(np.concatenate([self._velocity(o) for o in rest]), a["components"], a["seed"])
                bank = self._bank(np.concatenate([o["appearance"] for o in rest]), rng)
                held_raw.append(self._raw(gmm, bank, per_video[v]))
            pooled = {name: np.concatenate([r[name] for r in held_raw]) for name in ATTRIBUTES}
            rule = a["calibration"]
            if rule == "balanced":
                points, self.calibration_["candidates"] = balanced_calibration(pooled)
                self.calibration_.update(points)
                rule = self.calibration_["candidates"][-1]["chosen"]
            else:
                self.calibration_.update({name: calibration_points(pooled[name], rule, a["calibration_quantile"])
                                          for name in ATTRIBUTES})
            self.calibration_["rule"] = rule
            held_calibrated = [self._calibrated(r) for r in held_raw]
            self.calibration_["empty"] = float(np.concatenate([object_scores(c) for c in held_calibrated]).min())
            frame_scores = np.concatenate([self._frame_scores(o, c, item.num_frames)
                                           for o, c, item in zip(per_video, held_calibrated, train)])
            self.threshold_ = quantile_threshold(frame_scores, 1.0 - a["false_alarm_rate"], "held-out frame scores")
            self.calibration_["held_out_far"] = float((frame_scores > self.threshold_).mean())
            self.calibration_["held_out_frames"] = int(frame_scores.size)
            everything = [o for o in per_video if len(o["frame"])]
            self.gmm_ = fit_gmm(np.concatenate([self._velocity(o) for o in everything]), a["components"], a["seed"])
            self.bank_ = self._bank(np.concatenate([o["appearance"] for o in everything]), rng)
            self.calibration_["training_objects"] = int(sum(len(o["frame"]) for o in per_video))

    _box_device = "cpu"  # where YOLOX runs (to_device); the densities and flow stay on the CPU

    def to_device(self, device="cpu", precision: str = "fp32") -> "ObjectsDetector":
        """YOLOX runs on ``device`` (ONNX Runtime's CUDA provider); the rest of the detector stays on the CPU."""
        from vadkit.device import resolve_device

        super().to_device(device, precision)
        self._box_device = str(resolve_device(device))
        self._box_source = self._make_box_source()  # its detector made again on the device at its next use
        return self

    def calibration_report(self) -> dict:
        c = self.calibration_
        return {"achieved_far": c.get("held_out_far"), "held_out": c.get("held_out_frames"), "held_out_unit": "frames",
                "held_out_rule": "each training video scored by densities fitted without it",
                "fitted_on": f"{c.get('training_objects')} training objects", "training_objects": c.get("training_objects"),
                "attributes": {n: c[n] for n in ATTRIBUTES if n in c}}

    # -- scoring --------------------------------------------------------------------------------------------------
    def object_attributes(self, item: VideoItem) -> dict[str, np.ndarray]:
        """Every object of a video with its calibrated attribute scores: ``frame``, ``xyxy``, ``velocity``,
        ``appearance`` (calibrated: 1 = the training objects' ``calibration_quantile``), ``score`` (their sum)."""
        self._check_fitted()
        objs, calibrated = self._scored_objects(item)
        return {"frame": objs["frame"], "xyxy": objs["xyxy"], **calibrated,
                "score": object_scores(calibrated) if len(objs["frame"]) else np.zeros(0)}

    def _scored_objects(self, item: VideoItem) -> tuple[dict, dict[str, np.ndarray]]:
        """A video's objects and their calibrated attribute scores, from the item's own data every call (nothing
        is kept between calls: the per-video caches on disk are keyed by the video's content stamp)."""
        with torch_threads(self.args["threads"]):
            objs = self.objects(item)
        return objs, self._calibrated(self._raw(self.gmm_, self.bank_, objs))

    def _score(self, item: VideoItem) -> np.ndarray:
        objs, calibrated = self._scored_objects(item)
        return self._frame_scores(objs, calibrated, item.num_frames)

    def explain(self, item: VideoItem) -> FrameObjects:
        """Each frame's most abnormal object (the one its score is the max over): box and calibrated attribute
        scores, in the unit of the fitted calibration rule (:func:`calibration_unit`)."""
        self._check_fitted()
        return self._explained(*self._scored_objects(item), item.num_frames)

    def _score_explained(self, item: VideoItem) -> tuple[np.ndarray, FrameObjects]:
        """The frame scores and their objects from one pass (the appearance distances are the costly part)."""
        objs, calibrated = self._scored_objects(item)
        return self._frame_scores(objs, calibrated, item.num_frames), self._explained(objs, calibrated, item.num_frames)

    def _explained(self, objs: dict, calibrated: dict[str, np.ndarray], n: int) -> FrameObjects:
        boxes = np.full((n, 4), np.nan, np.float32)
        attributes = {name: np.full(n, np.nan) for name in ATTRIBUTES}
        if len(objs["frame"]):
            total = object_scores(calibrated)
            order = np.lexsort((total, objs["frame"]))  # by frame, then score: each frame's last is its top object
            frames = objs["frame"][order]
            last = np.r_[frames[1:] != frames[:-1], True]
            top, at = order[last], frames[last].astype(np.int64)
            boxes[at] = objs["xyxy"][top]
            for name in ATTRIBUTES:
                attributes[name][at] = calibrated[name][top]
        unit = calibration_unit(self.calibration_.get("rule", self.args["calibration"]),
                                self.args["calibration_quantile"])
        return FrameObjects(boxes=boxes, attributes=attributes, size=tuple(int(v) for v in objs["size"]), unit=unit)

    # -- persistence ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"gmm": {k: torch.from_numpy(np.asarray(v)) for k, v in self.gmm_.items()},
                "bank": torch.from_numpy(self.bank_.astype(np.float16)), "calibration": self.calibration_}

    def load_state(self, state: dict) -> None:
        self.gmm_ = {k: v.numpy() for k, v in state["gmm"].items()}
        self.bank_ = state["bank"].numpy().astype(np.float32)
        self.calibration_ = dict(state["calibration"])
