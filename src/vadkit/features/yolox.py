"""YOLOX-Nano, shipped inside vadkit, as a person (and bicycle) box source: ``detector(frame) -> (boxes, scores)``.

The network is Megvii's YOLOX-Nano (Apache-2.0, COCO's 80 classes) as an ONNX file under
``vadkit/assets/detectors/`` beside its licence notice. Its graph was edited once so that the batch and the spatial
input dims are free (:func:`free_input_dims`; the notice records the edit and both digests), so the input scale is
an argument; the file is checked against :data:`SHA256` whenever it is loaded.

What the network gives and what vadkit does with it (written here, not taken from YOLOX's code):

- input: the whole frame resized by ``scale``, BGR 0-255 float32, NCHW, padded right and bottom with 114 to a
  multiple of 32 (:func:`prepare_batch`);
- output: ``(B, N, 85)`` raw rows, one per cell of the stride-8, 16 and 32 grids in that order, each grid row-major;
  a row is ``[dx, dy, log w, log h, objectness, 80 class probabilities]`` (sigmoids already applied to the last 81);
- decoding (:func:`decode`): centre ``(dx + column, dy + row) * stride``, size ``exp(log w, log h) * stride``;
- class choice (:func:`choose_class`): each cell's best class among ``classes`` by objectness x class probability;
- non-maximum suppression per class (:func:`class_nms`, greedy by score) and a confidence floor.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

__all__ = ["ASSET", "SHA256", "YoloxDetector", "choose_class", "class_nms", "decode", "free_input_dims",
           "grid_cells", "input_size", "nms", "prepare_batch"]

ASSET = Path(__file__).resolve().parents[1] / "assets" / "detectors" / "yolox_nano.onnx"
SHA256 = "74af58980938a87a7fc0412dd629ec548bb0638cb917d2940f32e86a866d8950"  # the shipped (edited) file
SOURCE_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"  # the file as published
STRIDES = (8, 16, 32)
PAD = 114.0  # the grey YOLOX pads with
NUM_CLASSES = 80
PERSON, BICYCLE = 0, 1
RUNTIMES = ("onnxruntime", "openvino")


class ModelIntegrityError(ValueError):
    """The shipped detector file is not the one vadkit was released with."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike, expected: str = SHA256) -> Path:
    """``path`` if its sha256 is ``expected``; else :class:`ModelIntegrityError` naming both digests."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"YOLOX-Nano model not found at {path}; reinstall vadkit (make install)")
    found = file_sha256(path)
    if found != expected:
        raise ModelIntegrityError(f"{path}: expected sha256 {expected}, found {found}; the file is damaged or was "
                                  f"replaced: reinstall vadkit")
    return path


def free_input_dims(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """The edit that made the shipped file (needs the ``onnx`` package): input ``images`` ``(batch, 3, height,
    width)`` and output ``(batch, anchors, 85)`` as named dims in place of ``1x3x416x416`` / ``1x3549x85``; the three
    head Reshapes' target ``[1, 85, -1]`` becomes ``[0, 85, -1]`` (0: keep the batch dim); the stored intermediate
    shapes of 416x416 are dropped. Weights and operators are untouched. Written atomically."""
    import onnx
    from onnx import numpy_helper

    from vadkit.io.files import atomic_write_bytes

    model = onnx.load(str(source))
    graph = model.graph
    for value, names in ((graph.input[0], ("batch", None, "height", "width")),
                         (graph.output[0], ("batch", "anchors", None))):
        for dim, name in zip(value.type.tensor_type.shape.dim, names):
            if name is not None:
                dim.ClearField("dim_value")
                dim.dim_param = name
    reshape_targets = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    for index, tensor in enumerate(graph.initializer):
        if tensor.name in reshape_targets:
            shape = numpy_helper.to_array(tensor)
            if shape.tolist() != [1, NUM_CLASSES + 5, -1]:
                raise ValueError(f"{source}: a head Reshape to [1, 85, -1] was expected, found {shape.tolist()}")
            graph.initializer[index].CopyFrom(numpy_helper.from_array(np.array([0, NUM_CLASSES + 5, -1], np.int64),
                                                                      tensor.name))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    atomic_write_bytes(Path(target), model.SerializeToString())
    return Path(target)


# ---------------------------------------------------------------------------------------------------------------
# Input, decoding, class choice, suppression (plain numpy)
# ---------------------------------------------------------------------------------------------------------------

def input_size(width: int, height: int, scale: float) -> tuple[int, int, int, int]:
    """``(resized_w, resized_h, input_w, input_h)``: the frame resized by ``scale`` and the network input it is
    padded to (the next multiples of the largest stride)."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    resized_w, resized_h = max(1, round(width * scale)), max(1, round(height * scale))
    step = STRIDES[-1]
    return resized_w, resized_h, -(-resized_w // step) * step, -(-resized_h // step) * step


def prepare_batch(frames: Sequence[np.ndarray], scale: float) -> np.ndarray:
    """RGB uint8 frames ``(H, W, 3)`` of one size -> the network input ``(B, 3, in_h, in_w)`` float32, BGR 0-255,
    padded with 114 on the right and bottom."""
    height, width = frames[0].shape[:2]
    resized_w, resized_h, in_w, in_h = input_size(width, height, scale)
    batch = np.full((len(frames), 3, in_h, in_w), PAD, np.float32)
    for i, frame in enumerate(frames):
        if frame.shape[:2] != (height, width):
            raise ValueError(f"a batch's frames must share one size: {frame.shape[:2]} after {(height, width)}")
        image = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
        if (resized_w, resized_h) != (width, height):
            image = cv2.resize(image, (resized_w, resized_h), interpolation=cv2.INTER_LINEAR)
        batch[i, :, :resized_h, :resized_w] = image[..., ::-1].transpose(2, 0, 1)  # (3, h, w) BGR
    return batch


def grid_cells(in_h: int, in_w: int, strides: Sequence[int] = STRIDES) -> np.ndarray:
    """``(N, 3)`` float32 ``[column, row, stride]`` of every output row: the grids of ``strides`` in order, each
    row-major (row index outer, column inner)."""
    cells = []
    for stride in strides:
        rows, cols = np.meshgrid(np.arange(in_h // stride), np.arange(in_w // stride), indexing="ij")  # (h, w) each
        cells.append(np.stack([cols.reshape(-1), rows.reshape(-1), np.full(rows.size, stride)], axis=1))
    return np.concatenate(cells).astype(np.float32)


def decode(raw: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw rows ``(..., N, 85)`` -> boxes ``(..., N, 4)`` ``[x1, y1, x2, y2]`` in input pixels, objectness
    ``(..., N)`` and class probabilities ``(..., N, 80)``, with ``cells`` from :func:`grid_cells`."""
    if raw.shape[-2:] != (len(cells), NUM_CLASSES + 5):
        raise ValueError(f"expected raw rows (..., {len(cells)}, {NUM_CLASSES + 5}) for this input size, got "
                         f"{raw.shape}")
    stride = cells[:, 2:3]  # (N, 1)
    centre = (raw[..., 0:2] + cells[:, 0:2]) * stride  # (..., N, 2)
    size = np.exp(np.minimum(raw[..., 2:4], 20.0)) * stride  # (..., N, 2); capped: exp overflows beyond ~88
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=-1)  # (..., N, 4)
    return boxes, raw[..., 4], raw[..., 5:]


def choose_class(objectness: np.ndarray, probabilities: np.ndarray, classes: Sequence[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best class among ``classes`` by objectness x class probability: ``scores (N,)``, ``labels (N,)``
    (class ids)."""
    classes = np.asarray(classes, np.int64)
    joint = objectness[:, None] * probabilities[:, classes]  # (N, len(classes))
    best = np.argmax(joint, axis=1)
    return joint[np.arange(len(best)), best], classes[best]


def iou_with(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``(n,)`` intersection over union of one ``[x1, y1, x2, y2]`` box with each of ``others (n, 4)`` (continuous
    coordinates: width ``x2 - x1``)."""
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first; a box is dropped when its IoU
    with a kept, better-scored box is above ``iou`` (equal scores: the earlier index wins)."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[iou_with(boxes[best], boxes[order]) <= iou]
    return np.asarray(keep, np.int64)


def class_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """:func:`nms` within each class (a cyclist keeps its person and its bicycle box): kept indices, best first."""
    kept = [np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou)] for c in np.unique(labels)]
    kept = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    return kept[np.argsort(-scores[kept], kind="stable")]


# ---------------------------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------------------------

class YoloxDetector:
    """YOLOX-Nano boxes of people (and bicycles) in RGB frames.

    Args:
        scale: the frame is resized by this factor before detection (Ped2's 360x240 at 2.0: a 736x480 input).
        confidence: keep boxes whose objectness x class probability is at least this.
        nms_iou: suppress a box of the same class overlapping a better one by more than this IoU.
        classes: COCO class ids kept (0 person, 1 bicycle).
        runtime: ``onnxruntime`` or ``openvino``.
        device: ``cpu``, or ``cuda`` / ``cuda:N`` (ONNX Runtime's CUDA execution provider).
        batch: frames per network call.
        threads: CPU threads of the runtime (``None``: its default).
        model_path: another copy of the network with the same edit (checked against ``sha256`` too).
    """

    def __init__(self, scale: float = 2.0, confidence: float = 0.3, nms_iou: float = 0.45,
                 classes: Sequence[int] = (PERSON, BICYCLE), runtime: str = "onnxruntime", device: str = "cpu",
                 batch: int = 4, threads: int | None = None, model_path: str | os.PathLike | None = None,
                 sha256: str = SHA256) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        if not 0 <= confidence <= 1 or not 0 < nms_iou <= 1:
            raise ValueError(f"expected confidence in [0, 1] and nms_iou in (0, 1], got {confidence}, {nms_iou}")
        if int(batch) != batch or batch < 1:
            raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
        bad = [c for c in classes if not 0 <= int(c) < NUM_CLASSES]
        if bad or not len(classes):
            raise ValueError(f"classes must be COCO ids 0..{NUM_CLASSES - 1}, got {list(classes)}")
        input_size(1, 1, scale)  # checks scale
        self.scale, self.confidence, self.nms_iou = float(scale), float(confidence), float(nms_iou)
        self.classes = tuple(int(c) for c in classes)
        self.runtime, self.device, self.batch, self.threads = runtime, str(device), int(batch), threads
        self.model_path = check_sha256(model_path or ASSET, sha256)
        self._run = _open_runtime(self.model_path, runtime, self.device, threads)
        self._cells: dict[tuple[int, int], np.ndarray] = {}
        self.identity = f"yolox-nano:{sha256[:16]}:{self.scale}:{self.confidence}:{self.nms_iou}:{self.classes}"

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame (H, W, 3)`` uint8 RGB -> boxes ``(n, 4)`` in frame pixels, scores ``(n,)``."""
        return self.detect([frame])[0]

    def detect(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Boxes and scores of each frame (frames of one size), ``batch`` frames per network call."""
        found = []
        for start in range(0, len(frames), self.batch):
            chunk = frames[start:start + self.batch]
            height, width = chunk[0].shape[:2]
            resized_w, resized_h, in_w, in_h = input_size(width, height, self.scale)
            raw = self._run(prepare_batch(chunk, self.scale))  # (b, N, 85)
            cells = self._cells.setdefault((in_h, in_w), grid_cells(in_h, in_w))
            boxes, objectness, probabilities = decode(raw, cells)
            back = np.array([width / resized_w, height / resized_h] * 2, np.float32)
            for b in range(len(chunk)):
                found.append(self._select(boxes[b] * back, objectness[b], probabilities[b], width, height))
        return found

    def _select(self, boxes, objectness, probabilities, width, height) -> tuple[np.ndarray, np.ndarray]:
        scores, labels = choose_class(objectness, probabilities, self.classes)
        keep = scores >= self.confidence
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        kept = class_nms(boxes, scores, labels, self.nms_iou)
        return boxes[kept], scores[kept].astype(np.float32)


def _open_runtime(path: Path, runtime: str, device: str, threads: int | None):
    """A function ``(B, 3, h, w) float32 -> (B, N, 85)`` running the network on ``runtime`` and ``device``."""
    if runtime == "openvino":
        if device != "cpu":
            raise ValueError(f"the openvino runtime runs YOLOX on the CPU here; got device {device!r} (use "
                             f"onnxruntime for cuda)")
        try:
            import openvino
        except ImportError as err:
            raise ImportError("runtime 'openvino' needs the openvino package: pip install 'vadkit[onnx]'") from err
        config = {"INFERENCE_PRECISION_HINT": "f32"}  # (a CPU with bf16 would otherwise run in it)
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        compiled = openvino.Core().compile_model(str(path), "CPU", config)
        return lambda batch: np.asarray(compiled(batch)[0], np.float32)
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("the YOLOX box detector needs onnxruntime: pip install 'vadkit[onnx]'") from err
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    if device == "cpu":
        providers = ["CPUExecutionProvider"]
    elif device == "cuda" or device.startswith("cuda:"):
        available = onnxruntime.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise ValueError(f"device {device!r} needs ONNX Runtime's CUDAExecutionProvider (onnxruntime-gpu); this "
                             f"onnxruntime has {available}")
        index = int(device.partition(":")[2] or 0)
        providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    else:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]
