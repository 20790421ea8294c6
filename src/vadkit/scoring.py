"""From model outputs to frame scores: snippet→frame mapping, window aggregation, smoothing, normalisation.

Every function takes and returns ``(num_frames,)`` float arrays; NaN marks a frame without a score (a dropped
tail) and stays NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vadkit.features.geometry import snippets_to_frames, windows_to_frames  # noqa: F401 - re-exported

__all__ = ["snippets_to_frames", "valid_frames", "gaussian_smooth", "minmax_per_video", "windows_to_frames",
           "NORMALISATIONS"]

NORMALISATIONS = ("none", "train-zscore", "per-video-minmax")


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
