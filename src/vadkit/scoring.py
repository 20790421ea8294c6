"""From model outputs to frame scores: snippet→frame mapping, window aggregation, smoothing, normalisation.

Every function takes and returns ``(num_frames,)`` float arrays; NaN marks a frame without a score (a dropped
tail) and stays NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vadkit.metrics import snippets_to_frames, valid_frames  # re-exported: the one snippet→frame mapping

__all__ = ["snippets_to_frames", "valid_frames", "gaussian_smooth", "minmax_per_video", "zscore",
           "windows_to_frames", "NORMALISATIONS"]

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


def zscore(scores: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Causal normalisation with statistics measured on the training set."""
    if not std > 0:
        raise ValueError(f"z-score needs a positive training standard deviation, got {std}")
    return (np.asarray(scores, dtype=np.float64) - mean) / std


def windows_to_frames(window_scores: np.ndarray, num_frames: int, frames_per_snippet: int = 16,
                      real_snippets: int | None = None, tail: str = "extend") -> np.ndarray:
    """Place stride-1 window outputs on the frames and take the max over the windows covering each frame.

    Args:
        window_scores: ``(W, frames_per_snippet * L)``: window ``i`` covers snippets ``i … i+L-1``, i.e. frames
            ``fps*i … fps*(i+L)-1`` (``fps`` = frames per snippet).
        num_frames: frames of the video.
        real_snippets: snippets that came from the video (later ones are padding copies); their frames are
            discarded. ``None``: all.
        tail: frames after the last real snippet: ``extend`` (the last scored frame's value) or ``drop`` (NaN).

    Returns:
        ``(num_frames,)`` frame scores.
    """
    window_scores = np.asarray(window_scores, dtype=np.float64)
    n_windows, span = window_scores.shape  # (W, fps*L)
    snippet_frames = (n_windows - 1) * frames_per_snippet + span
    combined = np.full(snippet_frames, -np.inf)
    for i in range(n_windows):
        start = i * frames_per_snippet
        combined[start:start + span] = np.maximum(combined[start:start + span], window_scores[i])
    if real_snippets is not None:
        combined = combined[:real_snippets * frames_per_snippet]
    frames = np.full(num_frames, np.nan)
    covered = min(num_frames, combined.size)
    frames[:covered] = combined[:covered]
    if tail == "extend" and covered < num_frames and covered > 0:
        frames[covered:] = combined[covered - 1]
    elif tail not in ("extend", "drop"):
        raise ValueError(f"tail must be 'extend' or 'drop', got {tail!r}")
    return frames
