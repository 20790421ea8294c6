"""From model outputs to frame scores: snippet→frame mapping, window aggregation, smoothing, normalisation.

Every function takes and returns ``(num_frames,)`` float arrays; NaN marks a frame without a score (a dropped
tail) and stays NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vadkit.features.geometry import snippets_to_frames, windows_to_frames  # noqa: F401 - re-exported

__all__ = ["snippets_to_frames", "valid_frames", "gaussian_smooth", "minmax_per_video", "windows_to_frames",
           "NORMALISATIONS", "StreamingGaussian"]

NORMALISATIONS = ("none", "train-zscore", "per-video-minmax")


DEFAULT_SMOOTHING_SIGMA = 3.0  # frames: what `vadkit score`, `watch` and a fit-normal evaluation smooth with


def gaussian_smooth(scores: np.ndarray, sigma: float | None) -> np.ndarray:
    """Gaussian smoothing along time (``sigma`` in frames; ``None`` or 0 returns the scores unchanged).

    Only the scored frames are smoothed; the video's ends are handled by repeating the edge value.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not sigma:
        return scores.copy()
    if sigma < 0:
        raise ValueError(f"smoothing sigma must be >= 0, got {sigma}")
    out = scores.copy()
    keep = valid_frames(scores)
    if keep.any():
        out[keep] = gaussian_filter1d(scores[keep], sigma, mode="nearest")
    return out


def minmax_per_video(scores: np.ndarray) -> np.ndarray:
    """Scale one video's scores to [0, 1] with its own min and max. Uses the test video's statistics:
    non-causal, marked so on the protocol card. A constant video maps to 0."""
    scores = np.asarray(scores, dtype=np.float64)
    out = scores.copy()
    keep = valid_frames(scores)
    if keep.any():
        low, high = scores[keep].min(), scores[keep].max()
        out[keep] = (scores[keep] - low) / (high - low) if high > low else 0.0
    return out


def valid_frames(scores: np.ndarray) -> np.ndarray:
    """Boolean mask of frames that have a score (finite)."""
    return np.isfinite(np.asarray(scores, dtype=np.float64))


class StreamingGaussian:
    """:func:`gaussian_smooth` for scores that arrive a few at a time: each frame's smoothed value is given as soon
    as the ``radius = int(4 sigma + 0.5)`` frames after it have arrived (a delay of ``radius`` frames), and
    :meth:`flush` ends the series as the batch version does (the last value repeated). Fed a whole series, the
    output equals :func:`gaussian_smooth`'s (SciPy's kernel and edge rule) up to float rounding. Memory stays
    ``O(radius)``. NaN values are not supported (a live series has none: frames without a score are a gap, and
    a gap starts a new series).
    """

    def __init__(self, sigma: float) -> None:
        if sigma < 0:
            raise ValueError(f"smoothing sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.radius = int(4.0 * sigma + 0.5) if sigma else 0
        if self.radius:
            x = np.arange(-self.radius, self.radius + 1, dtype=np.float64)
            kernel = np.exp(-0.5 * (x / sigma) ** 2)
            self.kernel = kernel / kernel.sum()
        self.reset()

    def reset(self) -> None:
        """Start a new series."""
        self._values: list[float] = []  # received values from index self._offset on
        self._offset = 0
        self._received = 0
        self._emitted = 0

    def push(self, values) -> np.ndarray:
        """Add scores; return the smoothed values that are now final (in order)."""
        for v in np.asarray(values, dtype=np.float64).ravel().tolist():
            self._values.append(v)
            self._received += 1
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """End the series: the remaining smoothed values (the end padded with the last value)."""
        out = self._emit(final=True)
        self.reset()
        return out

    def _at(self, index: int) -> float:
        index = min(max(index, 0), self._received - 1)  # 'nearest' edges
        return self._values[index - self._offset] if index >= self._offset else self._first

    def _emit(self, final: bool) -> np.ndarray:
        if self._received == 0:
            return np.zeros(0)
        if self._emitted == 0 and self._offset == 0 and self._values:
            self._first = self._values[0]
        last = self._received - 1 if final else self._received - 1 - self.radius
        out = []
        r = self.radius
        while self._emitted <= last:
            i = self._emitted
            if r:
                window = np.array([self._at(j) for j in range(i - r, i + r + 1)])
                out.append(float(np.dot(window, self.kernel)))
            else:
                out.append(self._at(i))
            self._emitted += 1
        keep_from = max(0, self._emitted - r)  # values older than this are no longer needed (but the first)
        if keep_from > self._offset:
            del self._values[:keep_from - self._offset]
            self._offset = keep_from
        return np.asarray(out, dtype=np.float64)
