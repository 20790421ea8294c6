"""Annotated video frames: the input frame with a score panel below it and a red border on abnormal frames (and, for
object detectors, the box of the frame's most abnormal object, labelled with the attribute that made it so).

The panel (the frame's width, about an eighth of its height, at least 48 px) has two rows:

- a **score bar**: filled in proportion to the frame's smoothed score (green below the threshold, red at or above
  it), a yellow tick at the threshold, and the score, threshold and time as text;
- a **timeline** of the whole video's smoothed score: events shaded red, the threshold dashed, a white cursor at
  the current frame.

Frames stream through :func:`annotate_frames` one at a time; only the timeline image (panel-sized) is kept.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import cv2
import numpy as np

RED = (220, 30, 30)
GREEN = (40, 180, 80)
YELLOW = (240, 200, 40)
WHITE = (255, 255, 255)
DARK = (30, 30, 30)
PANEL_BG = (18, 18, 22)


def panel_height(frame_height: int) -> int:
    """Height of the score panel for frames ``frame_height`` pixels high (even, 48 … 120)."""
    height = int(np.clip(round(frame_height * 0.125), 48, 120))
    return height + height % 2


def border_width(frame_width: int, frame_height: int) -> int:
    return max(3, round(min(frame_width, frame_height) / 60))


def score_range(smoothed: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(low, high)`` the panel maps scores into: the finite scores and the threshold, with a 5 % margin on top."""
    finite = np.asarray(smoothed, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    low = min(float(finite.min()) if finite.size else threshold, threshold)
    high = max(float(finite.max()) if finite.size else threshold, threshold)
    if high <= low:
        high = low + 1.0
    return low, high + 0.05 * (high - low)


def _fraction(value: float, low: float, high: float) -> float:
    if not np.isfinite(value):
        return 0.0
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def timeline_image(smoothed: np.ndarray, threshold: float, abnormal: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 RGB: the score curve over the whole video, events shaded, threshold dashed."""
    smoothed = np.asarray(smoothed, dtype=np.float64)
    n = smoothed.size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = PANEL_BG
    if n == 0:
        return image
    low, high = score_range(smoothed, threshold)
    columns = np.minimum((np.arange(width) * n) // width, n - 1)  # frame shown by each pixel column
    shade = np.asarray(abnormal, dtype=bool)[columns]  # (width,)
    image[:, shade] = (90, 25, 30)
    values = smoothed[columns]
    margin = 2
    usable = height - 2 * margin - 1

    def row(value: float) -> int:
        return margin + usable - int(round(_fraction(value, low, high) * usable))

    y_threshold = row(threshold)
    for x in range(0, width, 8):
        cv2.line(image, (x, y_threshold), (min(x + 3, width - 1), y_threshold), YELLOW, 1)
    points = np.array([[x, row(v)] for x, v in enumerate(values) if np.isfinite(v)], dtype=np.int32)
    if len(points) > 1:
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, WHITE, 1, cv2.LINE_AA)
    return image


class FrameAnnotator:
    """Draws the panel and border for one video.

    Args:
        smoothed: ``(N,)`` smoothed frame scores (NaN = no score).
        threshold: the detector's threshold.
        abnormal: ``(N,)`` bool, frames inside an event (they get the red border).
        fps: frames per second (for the time shown).
        width, height: size of the input frames.
        objects: optional :class:`vadkit.detectors.FrameObjects`; on abnormal frames its box is drawn.
    """

    def __init__(self, smoothed: np.ndarray, threshold: float, abnormal: np.ndarray, fps: float,
                 width: int, height: int, objects=None) -> None:
        self.objects = objects
        self.smoothed = np.asarray(smoothed, dtype=np.float64)
        self.abnormal = np.asarray(abnormal, dtype=bool)
        if self.abnormal.shape != self.smoothed.shape:
            raise ValueError(f"abnormal mask has shape {self.abnormal.shape}, scores {self.smoothed.shape}")
        self.threshold, self.fps = float(threshold), fps
        self.width, self.height = width, height
        self.panel = panel_height(height)
        self.bar = self.panel // 2 - 2
        self.low, self.high = score_range(self.smoothed, self.threshold)
        self.timeline = timeline_image(self.smoothed, self.threshold, self.abnormal, width, self.panel - self.bar - 4)
        self.border = border_width(width, height)
        self.font_scale = max(0.35, self.bar / 32)

    @property
    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the annotated frames."""
        return self.width, self.height + self.panel

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Frame ``index`` ``(H, W, 3)`` uint8 RGB → ``(H + panel, W, 3)``."""
        if frame.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, expected {self.width}x{self.height}")
        if not 0 <= index < self.smoothed.size:
            raise IndexError(f"frame {index} outside the {self.smoothed.size} scored frames")
        out = np.empty((self.height + self.panel, self.width, 3), np.uint8)
        out[:self.height] = frame if frame.ndim == 3 else frame[..., None]
        if self.abnormal[index]:
            cv2.rectangle(out, (0, 0), (self.width - 1, self.height - 1), RED, 2 * self.border)
            box = self.objects.box(index, (self.width, self.height)) if self.objects is not None else None
            if box is not None:
                draw_object(out[:self.height], box, self.objects.label(index))
        panel = out[self.height:]
        panel[:] = PANEL_BG
        self._draw_bar(panel[2:2 + self.bar], index)
        strip = panel[self.bar + 4:]
        strip[:] = self.timeline
        x = int(index * (self.width - 1) / max(1, self.smoothed.size - 1))
        cv2.line(strip, (x, 0), (x, strip.shape[0] - 1), WHITE, 2)
        return out

    def _draw_bar(self, bar: np.ndarray, index: int) -> None:
        value = self.smoothed[index]
        above = bool(np.isfinite(value) and value >= self.threshold)
        bar[:] = DARK
        filled = int(round(_fraction(value, self.low, self.high) * (self.width - 1)))
        if filled > 0:
            bar[:, :filled] = RED if above else GREEN
        tick = int(round(_fraction(self.threshold, self.low, self.high) * (self.width - 1)))
        bar[:, max(0, tick - 1):tick + 1] = YELLOW
        score_text = f"{value:.3f}" if np.isfinite(value) else "n/a"
        label = f"score {score_text}  thr {self.threshold:.3f}  {index / self.fps:.2f}s"
        if above or self.abnormal[index]:
            label += "  ABNORMAL"
        scale = self.font_scale
        text_width = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
        if text_width > self.width - 8:  # narrow video: shrink the text to fit (not below legibility)
            scale = max(0.3, scale * (self.width - 8) / text_width)
        baseline = bar.shape[0] - max(2, (bar.shape[0] - int(22 * scale)) // 2)
        cv2.putText(bar, label, (4, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3 if scale >= 0.45 else 2,
                    cv2.LINE_AA)
        cv2.putText(bar, label, (4, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, WHITE, 1, cv2.LINE_AA)


def draw_object(frame: np.ndarray, box, label: str = "") -> np.ndarray:
    """Draw an object's box ``x1, y1, x2, y2`` (pixels) and a label above it on an RGB frame, in place."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
    y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
    thickness = max(1, round(min(w, h) / 160))
    cv2.rectangle(frame, (x1, y1), (x2, y2), YELLOW, thickness + 1)
    if label:
        scale = max(0.35, min(w, h) / 600)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - 6 >= 0 else min(h - 2, y2 + th + 4)
        tx = max(0, min(x1, w - tw - 2))
        cv2.rectangle(frame, (tx, ty - th - 2), (tx + tw + 2, ty + 3), DARK, -1)
        cv2.putText(frame, label, (tx + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, YELLOW, 1, cv2.LINE_AA)
    return frame


def annotate_frames(frames: Iterable[np.ndarray], smoothed: np.ndarray, threshold: float, abnormal: np.ndarray,
                    fps: float) -> Iterator[np.ndarray]:
    """Annotate a stream of RGB frames (the annotator is built from the first frame's size)."""
    annotator = None
    for index, frame in enumerate(frames):
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if annotator is None:
            annotator = FrameAnnotator(smoothed, threshold, abnormal, fps, frame.shape[1], frame.shape[0])
        yield annotator(index, frame)
