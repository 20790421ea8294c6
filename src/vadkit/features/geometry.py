"""Snippet geometry: which frames a snippet (or a window of snippets) covers, and how per-snippet outputs become
per-frame scores. It belongs with the features that define it: snippet ``i`` of a store extracted with
``snippet_len`` L and ``stride`` s covers frames ``i*s … i*s+L-1``; frames after the last full snippet either take the
last snippet's score (``tail="extend"``) or get none (``tail="drop"``, NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

TAIL_POLICIES = ("extend", "drop")


@dataclass(frozen=True)
class SnippetGeometry:
    """Frames per snippet and frames between snippet starts of a feature store."""

    snippet_len: int = 16
    stride: int = 16

    def __post_init__(self) -> None:
        if self.snippet_len < 1 or self.stride < 1:
            raise ValueError(f"snippet length and stride must be positive, got {self.snippet_len} and {self.stride}")

    @classmethod
    def of(cls, extraction: Mapping[str, Any] | None) -> "SnippetGeometry":
        """The geometry of extraction settings (a store manifest's ``settings``); ``None``: vadkit's defaults."""
        extraction = extraction or {}
        snippet_len = int(extraction.get("snippet_len", cls.snippet_len))
        return cls(snippet_len, int(extraction.get("stride") or snippet_len))

def num_snippets(num_frames: int, snippet_len: int = 16, stride: int | None = None) -> int:
    """Number of full snippets in a video: ``floor((num_frames - L) / stride) + 1`` (0 when shorter than L)."""
    stride = snippet_len if stride is None else stride
    if snippet_len <= 0 or stride <= 0:
        raise ValueError(f"snippet length and stride must be positive, got {snippet_len} and {stride}")
    return 0 if num_frames < snippet_len else (num_frames - snippet_len) // stride + 1


def snippets_to_frames(snippet_scores: np.ndarray, num_frames: int, snippet_len: int = 16,
                       stride: int | None = None, tail: str = "extend") -> np.ndarray:
    """Spread per-snippet scores over the video's frames.

    Snippet ``i`` covers frames ``i*stride … i*stride+L-1``; a frame covered by several snippets (stride < L)
    takes their mean. Frames after the last full snippet take the last snippet's score (``tail="extend"``) or
    NaN (``tail="drop"``; left out of every metric). A video shorter than one snippet has no score: with
    ``extend`` it takes the single score given, if any.

    Args:
        snippet_scores: ``(S,)`` one score per snippet.
        num_frames: frames in the video.

    Returns:
        ``(num_frames,)`` float64 frame scores.
    """
    if tail not in TAIL_POLICIES:
        raise ValueError(f"tail must be one of {TAIL_POLICIES}, got {tail!r}")
    stride = snippet_len if stride is None else stride
    snippet_scores = np.asarray(snippet_scores, dtype=np.float64).ravel()
    expected = num_snippets(num_frames, snippet_len, stride)
    if num_frames < snippet_len and snippet_scores.size == 1:
        expected = 1  # a short video scored as one padded snippet
    if snippet_scores.size != expected:
        raise ValueError(f"{snippet_scores.size} snippet scores for a video of {num_frames} frames; expected "
                         f"{expected} snippets of {snippet_len} frames with stride {stride}")
    frames = np.full(num_frames, np.nan)
    if expected == 0:
        return frames
    total = np.zeros(num_frames)
    count = np.zeros(num_frames)
    for i, score in enumerate(snippet_scores):
        start = i * stride
        stop = min(start + snippet_len, num_frames)
        total[start:stop] += score
        count[start:stop] += 1
    covered = count > 0
    frames[covered] = total[covered] / count[covered]
    if tail == "extend":
        last_covered = int(np.flatnonzero(covered)[-1])
        frames[last_covered + 1:] = snippet_scores[-1]
    return frames


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
