"""Anomaly events: the time intervals where a (smoothed) frame score stays at or above a threshold.

``find_events`` turns a ``(num_frames,)`` score curve into events in three steps:

1. frames with ``score >= threshold`` are *above* (NaN frames, e.g. a dropped tail, never are);
2. runs of above frames separated by fewer than ``merge_gap`` below frames are joined into one run;
3. runs shorter than ``min_frames`` are discarded.

Frames are 0-based and ``end_frame`` is inclusive; times are ``start_s = start_frame / fps`` and
``end_s = (end_frame + 1) / fps`` (the end of the last frame).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Event:
    """One anomaly event.

    Attributes:
        start_frame, end_frame: first and last frame (inclusive, 0-based).
        start_s, end_s: start of the first frame and end of the last frame in seconds.
        peak_score: the highest score inside the event; ``peak_frame`` where it occurs.
        thumbnail: relative path of the event's thumbnail image (filled in by the score pipeline).
    """

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    peak_score: float
    peak_frame: int
    thumbnail: str = ""

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return asdict(self)


def above_runs(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """``[(start, end_inclusive), ...]`` of the maximal runs with ``score >= threshold`` (NaN counts as below)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    above = np.zeros(scores.size + 2, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        above[1:-1] = np.nan_to_num(scores, nan=-np.inf) >= threshold
    edges = np.diff(above)  # (N+1,): +1 where a run starts, -1 one past where it ends
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def merge_runs(runs: list[tuple[int, int]], merge_gap: int) -> list[tuple[int, int]]:
    """Join consecutive runs whose gap (frames strictly between them) is shorter than ``merge_gap``."""
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] - 1 < merge_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def find_events(scores: np.ndarray, threshold: float, fps: float, min_frames: int = 8,
                merge_gap: int = 5) -> list[Event]:
    """Events of a score curve (see the module docstring).

    Args:
        scores: ``(num_frames,)`` frame scores (usually smoothed).
        threshold: a frame is above when ``score >= threshold``.
        fps: frames per second, for the times.
        min_frames: shortest event kept, in frames (after merging).
        merge_gap: runs separated by fewer than this many frames are merged (0: never merge).

    Returns:
        events in time order.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if min_frames < 1 or merge_gap < 0:
        raise ValueError(f"min_frames must be >= 1 and merge_gap >= 0, got {min_frames} and {merge_gap}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    events = []
    for start, end in merge_runs(above_runs(scores, threshold), merge_gap):
        if end - start + 1 < min_frames:
            continue
        inside = np.nan_to_num(scores[start:end + 1], nan=-np.inf)
        peak = start + int(np.argmax(inside))
        events.append(Event(start_frame=start, end_frame=end, start_s=start / fps, end_s=(end + 1) / fps,
                            peak_score=float(scores[peak]), peak_frame=peak))
    return events


def event_mask(events: list[Event], num_frames: int) -> np.ndarray:
    """``(num_frames,)`` bool: True on the frames inside an event."""
    mask = np.zeros(num_frames, dtype=bool)
    for e in events:
        mask[e.start_frame:e.end_frame + 1] = True
    return mask


class EventTracker:
    """:func:`find_events` for a score series that arrives a few frames at a time.

    ``push(scores)`` returns what happened: ``("open", Event)`` when a run of frames at or above the threshold
    (gaps shorter than ``merge_gap`` bridged) reaches ``min_frames`` (the event is certain from then on: merging only
    makes it longer), and ``("close", Event)`` once ``merge_gap`` frames below the threshold have followed it (it can
    no longer grow). :meth:`finish` closes an open event at the end of the series. Fed a whole series, the closed
    events equal :func:`find_events`' on it.
    """

    def __init__(self, threshold: float, fps: float, min_frames: int = 8, merge_gap: int = 5, first_frame: int = 0):
        if min_frames < 1 or merge_gap < 0:
            raise ValueError(f"min_frames must be >= 1 and merge_gap >= 0, got {min_frames} and {merge_gap}")
        self.threshold, self.fps = float(threshold), float(fps)
        self.min_frames, self.merge_gap = min_frames, merge_gap
        self.next_frame = first_frame
        self._run: list | None = None  # [start, end, peak_score, peak_frame, opened]
        self._below = 0

    @property
    def open_event(self) -> Event | None:
        return self._event() if self._run is not None and self._run[4] else None

    def push(self, scores) -> list[tuple[str, Event]]:
        changes = []
        for value in np.asarray(scores, dtype=np.float64).ravel().tolist():
            frame = self.next_frame
            self.next_frame += 1
            if value >= self.threshold:  # NaN compares False: never above
                if self._run is None:
                    self._run = [frame, frame, value, frame, False]
                else:
                    self._run[1] = frame
                    if value > self._run[2]:
                        self._run[2], self._run[3] = value, frame
                self._below = 0
                if not self._run[4] and self._run[1] - self._run[0] + 1 >= self.min_frames:
                    self._run[4] = True
                    changes.append(("open", self._event()))
            elif self._run is not None:
                self._below += 1
                if self._below >= self.merge_gap:
                    changes += self._end()
        return changes

    def finish(self) -> list[tuple[str, Event]]:
        """The series ended (or was interrupted): settle the current run."""
        return self._end() if self._run is not None else []

    def _end(self) -> list[tuple[str, Event]]:
        run, self._run, self._below = self._run, None, 0
        if run[1] - run[0] + 1 < self.min_frames:
            return []
        self._run = run
        event = self._event()
        self._run = None
        return [("close", event)]

    def _event(self) -> Event:
        start, end, peak, peak_frame, _ = self._run
        return Event(start_frame=start, end_frame=end, start_s=start / self.fps, end_s=(end + 1) / self.fps,
                     peak_score=float(peak), peak_frame=peak_frame)
