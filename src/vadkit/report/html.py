"""A self-contained HTML report of one scored video: summary, events with thumbnails, the score plot, the model and
its protocol card. Images are inlined as base64 ``data:`` URIs and the style is inline: the file opens anywhere,
offline, and needs nothing outside itself; its last lines link the files beside it (``annotated.mp4``, the CSVs,
``result.json``), which are not inside it.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Mapping

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#222;
padding:0 1rem}
h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.3rem .6rem;border-bottom:1px solid #eee;text-align:left;
vertical-align:middle}th{background:#f6f6f6}.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777;font-size:.85rem}.plot{max-width:100%;border:1px solid #eee}.thumb{height:90px;border-radius:3px}
.reason{font-size:.85rem;max-width:28rem}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.7rem;font-size:.85rem;color:#fff}
.bad{background:#c62828}.good{background:#2e7d32}
"""


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for inlining a file."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _e(value: Any) -> str:
    return html.escape("-" if value is None or value == "" else str(value))


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in pairs)


def _summary(result: Mapping[str, Any]) -> str:
    events = result.get("events", [])
    fps = result.get("fps") or 25.0
    event_frames = sum(e["end_frame"] - e["start_frame"] + 1 for e in events)
    n = result.get("num_frames", 0) or 0
    model = result.get("model", {})
    pairs = [
        ("video", result.get("video")),
        ("frames", f"{n} at {fps:g} fps ({result.get('duration_s', n / fps):.2f} s), "
                   f"{result.get('width')}x{result.get('height')}"),
        ("events", f"{len(events)} ({event_frames} frames, {100.0 * event_frames / max(n, 1):.1f} % of the video)"),
        ("model", f"{model.get('name', '')} from {model.get('source', '')}"),
        ("threshold", result.get("threshold")),
        ("smoothing sigma (frames)", result.get("smoothing_sigma")),
        ("shortest event (frames)", result.get("min_event_frames")),
        ("processing", f"{result.get('seconds', 0.0):.1f} s, {result.get('frames_per_s', 0.0):.1f} frames/s"),
    ]
    return f"<table>{_rows(pairs)}</table>"


def _reason(event: Mapping[str, Any]) -> str:
    """What made the event abnormal, for object detectors: the boxed object's frame and its reason."""
    if not event.get("reason"):
        return ""
    return (f'<div class="reason">frame {_e(event.get("object_frame"))}, yellow box: '
            f'{_e(event["reason"])}</div>')


def _events_table(events: list[Mapping[str, Any]], thumbnails: Mapping[str, bytes]) -> str:
    if not events:
        return "<p>No anomaly event: the smoothed score never stayed above the threshold long enough.</p>"
    head = ("<tr><th>#</th><th>frames</th><th>time (s)</th><th>duration (s)</th><th>peak score</th>"
            "<th>peak frame</th><th>thumbnail (peak frame, or the boxed object's)</th></tr>")
    body = []
    for i, e in enumerate(events):
        image = thumbnails.get(e.get("thumbnail", ""))
        thumb = f'<img class="thumb" alt="event {i} at frame {e["peak_frame"]}" src="{data_uri(image, "image/jpeg")}">' \
            if image else ""
        body.append(
            f"<tr><td>{i}</td><td class=num>{e['start_frame']}–{e['end_frame']}</td>"
            f"<td class=num>{e['start_s']:.2f}–{e['end_s']:.2f}</td>"
            f"<td class=num>{e['end_s'] - e['start_s']:.2f}</td><td class=num>{e['peak_score']:.4g}</td>"
            f"<td class=num>{e['peak_frame']}</td><td>{thumb}{_reason(e)}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render_report(result: Mapping[str, Any], plot_png: bytes | None = None,
                  thumbnails: Mapping[str, bytes] | None = None) -> str:
    """The report of one scored video as an HTML string.

    Args:
        result: the ``result.json`` content (see ``docs``: the scored-video folder format).
        plot_png: the score plot (PNG bytes), inlined.
        thumbnails: event thumbnail path (as in ``result["events"][i]["thumbnail"]``) → JPEG bytes.
    """
    thumbnails = thumbnails or {}
    events = list(result.get("events", []))
    name = result.get("name", "video")
    verdict = (f'<span class="badge bad">{len(events)} anomaly event{"s" if len(events) != 1 else ""}</span>'
               if events else '<span class="badge good">no anomaly event</span>')
    plot = f'<img class="plot" alt="score timeline" src="{data_uri(plot_png, "image/png")}">' if plot_png else ""
    model = result.get("model", {})
    model_rows = _rows([(k, v) for k, v in model.items()])
    protocol = result.get("protocol") or {}
    protocol_rows = _rows([(k, v) for k, v in protocol.items() if k != "notes"])
    notes = "".join(f"<li>{_e(n)}</li>" for n in protocol.get("notes", []) or [])
    files = result.get("files", {})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vadkit report: {_e(name)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{_e(name)} {verdict}</h1>
<p class="muted">Anomaly scores by vadkit: higher = more abnormal. An event is a stretch where the smoothed score stays
at or above the model's threshold for at least {_e(result.get('min_event_frames'))} frames.</p>
<h2>Summary</h2>
{_summary(result)}
<h2>Events</h2>
{_events_table(events, thumbnails)}
<h2>Score timeline</h2>
{plot}
<h2>Model</h2>
<table>{model_rows}</table>
<h2>Protocol card of the model</h2>
{f"<table>{protocol_rows}</table>" if protocol_rows else "<p>No protocol card recorded for this model.</p>"}
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Files</h2>
<p class="muted">Beside this report (the video itself is not inside it: the annotated one is linked here):
{' · '.join(f'<a href="{_e(v)}">{_e(v)}</a>' for v in [*files.values(), 'result.json'] if v != 'report.html')}.</p>
</body></html>
"""
