import re

import numpy as np

from vadkit.inference import jpeg
from vadkit.report.html import render_report


def result_with_events():
    return {
        "format": 1, "video": "/data/cam <1>.mp4", "name": "cam <1>", "num_frames": 100, "fps": 25.0, "width": 64,
        "height": 48, "duration_s": 4.0,
        "model": {"name": "knn", "source": "runs/x", "method": "knn: k=1", "trained_on": "3 normal videos"},
        "threshold": 0.5, "smoothing_sigma": 3.0, "min_event_frames": 8,
        "events": [{"start_frame": 10, "end_frame": 29, "start_s": 0.4, "end_s": 1.2, "peak_score": 0.93,
                    "peak_frame": 17, "thumbnail": "thumbs/event-0.jpg"},
                   {"start_frame": 60, "end_frame": 79, "start_s": 2.4, "end_s": 3.2, "peak_score": 0.71,
                    "peak_frame": 66, "thumbnail": "thumbs/event-1.jpg"}],
        "files": {"csv": "scores.csv", "plot": "plot.png", "video": "annotated.mp4", "report": "report.html"},
        "protocol": {"dataset": "ucsd_ped2", "split": "official", "notes": ["a note"]},
        "seconds": 2.0, "frames_per_s": 50.0,
    }


def test_report_is_self_contained_and_lists_the_events():
    thumb = jpeg(np.full((48, 64, 3), 128, np.uint8))
    page = render_report(result_with_events(), plot_png=b"\x89PNG fake", thumbnails={"thumbs/event-0.jpg": thumb,
                                                                                    "thumbs/event-1.jpg": thumb})
    sources = re.findall(r'src\s*=\s*"([^"]*)"', page)
    assert len(sources) == 3 and all(r.startswith("data:") for r in sources)  # plot + two thumbnails, inlined
    links = re.findall(r'href\s*=\s*"([^"]*)"', page)  # the files beside the report, linked by name
    assert links == ["scores.csv", "plot.png", "annotated.mp4", "result.json"]
    assert not re.search(r"https?://|url\(|@import|<script|<link", page)
    assert "10–29" in page and "60–79" in page and "0.40–1.20" in page and "2 anomaly events" in page
    assert "cam &lt;1&gt;" in page and "<1>" not in page  # escaped
    assert "ucsd_ped2" in page and "a note" in page and "3 normal videos" in page


def test_report_without_events_says_so():
    result = dict(result_with_events(), events=[])
    page = render_report(result)
    assert "no anomaly event" in page and "<img" not in page
