import numpy as np
import pytest

from vadkit.report.events import above_runs, event_mask, find_events, merge_runs


def curve(n, spans, low=0.1, high=0.9):
    s = np.full(n, low)
    for a, b in spans:  # b exclusive
        s[a:b] = high
    return s


def test_runs_and_merging_by_hand():
    s = curve(40, [(2, 5), (7, 10), (30, 31)])
    assert above_runs(s, 0.5) == [(2, 4), (7, 9), (30, 30)]
    assert merge_runs([(2, 4), (7, 9), (30, 30)], 3) == [(2, 9), (30, 30)]  # gap of 2 frames < 3: merged
    assert merge_runs([(2, 4), (7, 9)], 2) == [(2, 4), (7, 9)]  # gap of 2 is not < 2
    assert merge_runs([(2, 4), (7, 9)], 0) == [(2, 4), (7, 9)]


def test_events_min_duration_merge_and_times():
    s = curve(100, [(10, 14), (16, 20), (50, 53), (70, 100)])
    s[17] = 0.95  # the peak
    events = find_events(s, threshold=0.5, fps=10.0, min_frames=8, merge_gap=3)
    assert [(e.start_frame, e.end_frame) for e in events] == [(10, 19), (70, 99)]  # 50-52 too short, dropped
    first, last = events
    assert (first.start_s, first.end_s) == pytest.approx((1.0, 2.0))  # end_s = (end_frame + 1) / fps
    assert (first.peak_frame, first.peak_score) == (17, pytest.approx(0.95))
    assert last.end_s == pytest.approx(10.0) and last.num_frames == 30  # runs to the last frame
    # without merging, neither half of the first event is long enough
    assert [(e.start_frame, e.end_frame) for e in find_events(s, 0.5, 10.0, 8, merge_gap=0)] == [(70, 99)]
    # min_frames=1 keeps the short one
    assert len(find_events(s, 0.5, 10.0, min_frames=1, merge_gap=0)) == 4


def test_threshold_is_inclusive_and_nan_is_below():
    s = np.array([0.5, 0.5, np.nan, 0.5, 0.2])
    assert above_runs(s, 0.5) == [(0, 1), (3, 3)]
    assert [(e.start_frame, e.end_frame) for e in find_events(s, 0.5, 25.0, 1, merge_gap=2)] == [(0, 3)]
    assert find_events(np.full(5, np.nan), 0.5, 25.0, 1) == []


def test_mask_and_errors():
    events = find_events(curve(20, [(3, 9)]), 0.5, 25.0, min_frames=2)
    mask = event_mask(events, 20)
    assert mask.sum() == 6 and mask[3] and mask[8] and not mask[9]
    with pytest.raises(ValueError, match="fps"):
        find_events(np.zeros(3), 0.5, 0.0)
    with pytest.raises(ValueError, match="min_frames"):
        find_events(np.zeros(3), 0.5, 25.0, min_frames=0)
    with pytest.raises(ValueError, match="threshold"):
        find_events(np.zeros(3), float("nan"), 25.0)
