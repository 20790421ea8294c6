"""Per-object attributes for object-centric anomaly detection (after AI-VAD, Reiss & Hoshen): what an object does
(velocity, from dense optical flow inside its box) and what it looks like (an appearance embedding pooled from the
I3D feature map of the frame's snippet inside its box).

- :func:`velocity_features`: for each box, the flow inside it as an orientation histogram (``bins`` directions, each
  bin the mean flow magnitude of the pixels pointing that way, times the share of pixels in it) plus the mean speed,
  all divided by the box height, so that a walker near the camera and one far away move alike.
- :class:`I3DAppearance`: I3D (the Kinetics-400 weights vadkit has) run up to ``Mixed_4f`` on 16-frame snippets; a
  box's embedding is the mean of the ``(832,)`` feature vectors of the map cells it covers at its frame's time step.
- :func:`hog_appearance`: the box's own pixels (a crop, not a map cell): OpenCV's HOG descriptor of the grey crop
  resized to 32x64, ``(756,)``, L2-normalised: the object's shape, at any size, at a few microseconds per box.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from vadkit.features.extract import ExtractionSettings, iter_snippets, to_network_input
from vadkit.io import VideoSource, to_gray

APPEARANCE_LAYER = "Mixed_4f"


def _pixel_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """An ``(x1, y1, x2, y2)`` box as integer pixel bounds inside the frame, at least one pixel wide and high."""
    x1, y1 = int(np.clip(np.floor(box[0]), 0, width - 1)), int(np.clip(np.floor(box[1]), 0, height - 1))
    x2, y2 = int(np.clip(np.ceil(box[2]), x1 + 1, width)), int(np.clip(np.ceil(box[3]), y1 + 1, height))
    return x1, y1, x2, y2


def pixel_heights(boxes: np.ndarray, frame_height: int) -> np.ndarray:
    """``(n,)`` heights of ``(n, 4)`` boxes in whole pixels, as :func:`_pixel_box` bounds them (floor of the top,
    ceiling of the bottom, inside the frame, at least 1): what :func:`velocity_features` divides speeds by."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    top = np.clip(np.floor(boxes[:, 1]), 0, frame_height - 1)
    bottom = np.clip(np.ceil(boxes[:, 3]), top + 1, frame_height)
    return bottom - top


MOVING = 0.3  # pixels per frame: flow below this is DIS's noise on a still background


def velocity_features(flow: np.ndarray, boxes: np.ndarray, bins: int = 8, pixels: str = "box") -> np.ndarray:
    """``(n, bins + 1)`` float32 velocity descriptors of ``boxes`` in one frame's flow.

    Args:
        flow: ``(H, W, 2)`` flow (pixels per frame) from this frame to the next (or from the previous one).
        boxes: ``(n, 4)`` ``[x1, y1, x2, y2]`` in pixels.
        bins: orientation bins over ``[-pi, pi)``.
        pixels: which pixels of the box the histogram and the mean speed are taken over: ``box`` (all of them) or
            ``moving`` (those whose flow is at least :data:`MOVING`, so that a loose box around a fast object, or
            one spanning the frames of its motion, does not dilute its speed with still background; none: zeros).
    """
    if pixels not in ("box", "moving"):
        raise ValueError(f"pixels must be 'box' or 'moving', got {pixels!r}")
    height, width = flow.shape[:2]
    out = np.zeros((len(boxes), bins + 1), np.float32)
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = _pixel_box(box, width, height)
        patch = np.asarray(flow[y1:y2, x1:x2], np.float32).reshape(-1, 2)  # (P, 2)
        magnitude = np.hypot(patch[:, 0], patch[:, 1])  # (P,)
        if pixels == "moving":
            moving = magnitude >= MOVING
            patch, magnitude = patch[moving], magnitude[moving]  # (P', 2), (P',)
        angle = np.arctan2(patch[:, 1], patch[:, 0])  # (P,) in [-pi, pi]
        which = np.minimum(((angle + np.pi) / (2 * np.pi) * bins).astype(np.int64), bins - 1)
        out[i, :bins] = np.bincount(which, weights=magnitude, minlength=bins) / max(len(magnitude), 1)
        out[i, bins] = magnitude.mean() if len(magnitude) else 0.0
    out /= pixel_heights(boxes, height)[:, None]  # perspective: speed in box heights per frame
    return out


HOG_WINDOW = (32, 64)  # width, height: a standing person's proportions, at Ped2's far-field size
HOG_DIM = 756  # 3 x 7 blocks of 16x16 pixels (stride 8) x 4 cells x 9 orientations
_HOG = None


def hog_appearance(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(n, 756)`` float32 HOG descriptors of ``boxes`` in an RGB (or grey) frame: each crop resized to 32x64
    (its aspect is not kept: a wide object looks wide), L2-normalised."""
    import cv2

    global _HOG
    if _HOG is None:
        _HOG = cv2.HOGDescriptor(HOG_WINDOW, (16, 16), (8, 8), (8, 8), 9)
    grey = to_gray(frame)
    height, width = grey.shape[:2]
    out = np.zeros((len(boxes), HOG_DIM), np.float32)
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = _pixel_box(box, width, height)
        crop = cv2.resize(np.ascontiguousarray(grey[y1:y2, x1:x2]), HOG_WINDOW, interpolation=cv2.INTER_AREA)
        vector = _HOG.compute(crop).reshape(-1)  # (756,)
        out[i] = vector / max(float(np.linalg.norm(vector)), 1e-6)
    return out


class I3DAppearance:
    """Appearance embeddings of boxes from I3D ``Mixed_4f`` (832 channels, time / 4, space / 16 of a 224x224 input).

    Args:
        settings: how frames become network input (vadkit's extraction defaults: squash to 224, [-1, 1]).
        batch_size: snippets per forward pass.
    """

    dim = 832

    def __init__(self, settings: ExtractionSettings | None = None, batch_size: int = 4) -> None:
        from vadkit.features.i3d import load_i3d

        self.settings = settings or ExtractionSettings()
        if self.settings.crops != 1 or self.settings.modality != "rgb":
            raise ValueError("appearance embeddings need one-crop RGB snippets")
        self.batch_size = batch_size
        self.model = load_i3d().eval()
        self.weights_sha256 = getattr(self.model, "weights_sha256", None)

    @torch.inference_mode()
    def _maps(self, snippets: list[np.ndarray]) -> torch.Tensor:
        x = to_network_input(np.stack([s[0] for s in snippets]), self.settings.input_range, "rgb")  # (B, 3, L, S, S)
        for name, out in self.model.endpoints(x):
            if name == APPEARANCE_LAYER:
                return out  # (B, 832, L/4, S/16, S/16)
        raise RuntimeError(f"I3D has no endpoint {APPEARANCE_LAYER}")

    def snippet_maps(self, video: VideoSource) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first frame, map (832, T', h, w))`` for each snippet of the video, in order."""
        stride, batch, start = self.settings.stride, [], 0
        for snippet in iter_snippets(video, self.settings):
            batch.append(snippet)
            if len(batch) == self.batch_size:
                for map_ in self._maps(batch):
                    yield start, map_
                    start += stride
                batch = []
        if batch:
            for map_ in self._maps(batch):
                yield start, map_
                start += stride

    @staticmethod
    def pool(map_: torch.Tensor, offset: int, snippet_len: int, boxes: np.ndarray, width: int,
             height: int) -> np.ndarray:
        """``(n, 832)`` embeddings of ``boxes`` (frame pixels) in the frame ``offset`` frames into the snippet."""
        channels, steps, rows, cols = map_.shape
        t = min(int(offset * steps / snippet_len), steps - 1)
        grid = map_[:, t]  # (832, rows, cols)
        out = np.zeros((len(boxes), channels), np.float32)
        for i, box in enumerate(boxes):
            c1 = int(np.clip(np.floor(box[0] / width * cols), 0, cols - 1))
            r1 = int(np.clip(np.floor(box[1] / height * rows), 0, rows - 1))
            c2 = int(np.clip(np.ceil(box[2] / width * cols), c1 + 1, cols))
            r2 = int(np.clip(np.ceil(box[3] / height * rows), r1 + 1, rows))
            out[i] = grid[:, r1:r2, c1:c2].mean(dim=(1, 2)).numpy()
        return out
