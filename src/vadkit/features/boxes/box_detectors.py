"""Object detectors as box sources, ``detector(frame) -> (boxes, scores)``: a user's ONNX detector
(:class:`OnnxDetector`) and OpenCV's HOG people detector (:class:`HogPeopleDetector`). The YOLOX-Nano shipped with
vadkit is :class:`vadkit.features.yolox.YoloxDetector`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vadkit.io import to_gray


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("OnnxDetector needs the onnxruntime package: pip install 'vadkit[onnx]' (or pip install "
                          "onnxruntime)") from err
    return onnxruntime


class OnnxDetector:
    """A user-supplied ONNX object detector as a box source: ``detector(frame) -> (boxes, scores)``.

    The model must output post-processed detections (after NMS), e.g. a torchvision Faster R-CNN export or a
    detector exported with its NMS: boxes ``(N, 4)`` ``[x1, y1, x2, y2]`` in input pixels and scores ``(N,)``,
    optionally with a leading batch axis of 1; ``(N, 5+)`` rows ``[x1, y1, x2, y2, score, ...]`` also work.
    Outputs are found by ``output_names`` or else by their names (``boxes``, ``scores``) or shapes.
    Raw detection heads (e.g. YOLO's ``(1, 84, 8400)``) need decoding and NMS first: export them with NMS.

    Args:
        model_path: the ``.onnx`` file.
        input_size: ``(width, height)`` the frame is resized to; default: the model's static input size, or the
            frame's own size when the model's is dynamic. Boxes are scaled back to frame pixels.
        scale, mean, std: input normalisation ``((pixel * scale) - mean) / std`` per RGB channel.
        bgr: feed BGR instead of RGB.
        batch_axis: feed ``(1, 3, H, W)`` (True) or ``(3, H, W)`` (False, torchvision exports).
        output_names: ``(boxes_name, scores_name)`` to pick the outputs explicitly.
        classes: keep only these class ids (needs a labels output); default all classes, as VEC.
        providers: onnxruntime execution providers (default CPU).
    """

    def __init__(self, model_path: str | os.PathLike, *, input_size: tuple[int, int] | None = None,
                 scale: float = 1 / 255, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), bgr: bool = False, batch_axis: bool = True,
                 output_names: tuple[str, str] | None = None, classes: Sequence[int] | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.model_path}")
        ort = _import_onnxruntime()
        self.session = ort.InferenceSession(str(self.model_path), providers=list(providers))
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        static = [d for d in model_input.shape[-2:] if isinstance(d, int)]
        self.input_size = input_size or ((model_input.shape[-1], model_input.shape[-2]) if len(static) == 2 else None)
        self.scale, self.bgr, self.batch_axis = scale, bgr, batch_axis
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        self.output_names = output_names
        self.classes = None if classes is None else set(int(c) for c in classes)
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()[:16]
        self.identity = f"onnx:{digest}:{self.input_size}:{scale}:{tuple(mean)}:{tuple(std)}:{bgr}:{classes}"

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` ``(H, W, 3)`` uint8 RGB -> boxes ``(n, 4)`` in frame pixels, scores ``(n,)``."""
        height, width = frame.shape[:2]
        image = frame if self.input_size is None else cv2.resize(frame, tuple(self.input_size))
        if self.bgr:
            image = image[..., ::-1]
        tensor = (image.transpose(2, 0, 1).astype(np.float32) * self.scale - self.mean) / self.std  # (3, h, w)
        if self.batch_axis:
            tensor = tensor[None]  # (1, 3, h, w)
        names = [o.name for o in self.session.get_outputs()]
        outputs = dict(zip(names, self.session.run(None, {self.input_name: np.ascontiguousarray(tensor)})))
        boxes, scores, labels = parse_detections(outputs, self.output_names)
        if self.classes is not None:
            if labels is None:
                raise ValueError(f"{self.model_path}: classes were given but the model has no labels output")
            keep = np.isin(labels, list(self.classes))
            boxes, scores = boxes[keep], scores[keep]
        in_w, in_h = (width, height) if self.input_size is None else self.input_size
        return boxes * np.array([width / in_w, height / in_h] * 2, np.float32), scores


class HogPeopleDetector:
    """OpenCV's built-in people detector (Dalal & Triggs' HOG with a linear SVM trained on INRIA's 64x128 pedestrians;
    in OpenCV 4.x, no download) as a box source: ``detector(frame) -> (boxes, scores)``.

    Far-field pedestrians (UCSD Ped2's are about 20x40 pixels) are smaller than its window, so the frame is enlarged
    ``upscale`` times first; the cost grows with the square of it (Ped2 training clips: 22 ms per frame at 2x, 54 at
    3x on two cores on 2026-12-04, 90 ms at 3x in a later run the same day, docs/results.md; with ``detect_every`` in
    :func:`extract_boxes` it runs on every N-th frame only).

    Args:
        upscale: frame enlargement before detection.
        hit_threshold: the SVM margin a window needs (OpenCV's ``hitThreshold``); the scores returned are the
            margins, which ``τ_s`` of the box thresholds filters again.
        stride: window stride in (enlarged) pixels.
        scale: pyramid step.
    """

    def __init__(self, upscale: float = 2.0, hit_threshold: float = 0.0, stride: int = 8, scale: float = 1.05) -> None:
        if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
            raise RuntimeError(f"OpenCV {cv2.__version__} has no built-in HOG people detector (OpenCV 5 dropped it): "
                               f"install opencv-python-headless<5")
        if upscale <= 0 or stride < 1 or scale <= 1:
            raise ValueError(f"expected upscale > 0, stride >= 1 and scale > 1, got {upscale}, {stride}, {scale}")
        self.upscale, self.hit_threshold = float(upscale), float(hit_threshold)
        self.stride, self.scale = int(stride), float(scale)
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.identity = (f"opencv-hog-people:{cv2.__version__}:{self.upscale}:{self.hit_threshold}:{self.stride}:"
                         f"{self.scale}")

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` ``(H, W, 3)`` uint8 RGB (or grey) -> boxes ``(n, 4)`` in frame pixels, scores ``(n,)``."""
        grey = to_gray(frame)
        if self.upscale != 1:
            grey = cv2.resize(grey, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        window_w, window_h = self.hog.winSize
        if grey.shape[0] < window_h or grey.shape[1] < window_w:  # no window fits (OpenCV crashes on it)
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        rects, weights = self.hog.detectMultiScale(grey, hitThreshold=self.hit_threshold,
                                                   winStride=(self.stride, self.stride), scale=self.scale)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        rects = np.asarray(rects, np.float32).reshape(-1, 4) / self.upscale  # (n, 4) x, y, w, h in frame pixels
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)  # (n, 4) x1, y1, x2, y2
        return boxes, np.asarray(weights, np.float32).reshape(-1)


def parse_detections(outputs: dict[str, np.ndarray], names: tuple[str, str] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Find ``(boxes (n, 4), scores (n,), labels (n,) or None)`` among a detector's named outputs."""
    squeezed = {k: np.asarray(v) for k, v in outputs.items()}
    if any(v.ndim == 3 and v.shape[0] == 1 for v in squeezed.values()):  # batched outputs: drop the batch axis
        squeezed = {k: (v[0] if v.ndim >= 1 and v.shape[0] == 1 else v) for k, v in squeezed.items()}
    if names is not None:
        missing = [n for n in names if n not in squeezed]
        if missing:
            raise ValueError(f"detector outputs {sorted(squeezed)} lack {missing}")
        boxes, scores = squeezed[names[0]], squeezed[names[1]]
        labels = None
    else:
        by_name = {k.lower(): v for k, v in squeezed.items()}
        boxes, scores, labels = by_name.get("boxes"), by_name.get("scores"), by_name.get("labels")
        if boxes is None:
            candidates = [v for v in squeezed.values() if v.ndim == 2 and v.shape[1] >= 4]
            if len(candidates) != 1:
                shapes = {k: v.shape for k, v in squeezed.items()}
                raise ValueError(f"cannot tell the boxes output among {shapes}; pass output_names=(boxes, scores)")
            boxes = candidates[0]
        if scores is None and boxes.shape[1] == 4:
            candidates = [v for v in squeezed.values() if v.ndim == 1 and v.dtype.kind == "f" and len(v) == len(boxes)]
            if len(candidates) != 1:
                shapes = {k: v.shape for k, v in squeezed.items()}
                raise ValueError(f"cannot tell the scores output among {shapes}; pass output_names=(boxes, scores)")
            scores = candidates[0]
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(f"detector boxes must be (n, 4) or (n, 5+), got shape {boxes.shape}")
    if scores is None:
        scores = boxes[:, 4]
    scores = np.asarray(scores, np.float32)
    if scores.ndim == 2:  # per-class scores (n, classes): the best class
        scores = scores.max(axis=1)
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"detector gave {boxes.shape[0]} boxes but scores of shape {scores.shape}")
    return boxes[:, :4], scores, None if labels is None else np.asarray(labels).reshape(-1)
