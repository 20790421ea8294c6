"""What the viewer shows: scored videos and evaluation runs found under its folders, and safe paths into them.

A *root* is a folder the viewer was given (``--runs``, optionally ``--scores``), known by a short key
(``"runs"``, ``"scores"``). Every item and file is addressed as ``<key>/<relative posix path>``; nothing outside
a root is ever resolved (no ``..``, no absolute paths, no hidden names, no symlink that leads out).

Layout, at depth 0, 1 or 2 below a root:

- a folder with ``result.json`` is a scored video (written by ``vadkit score``; ``result.json`` is written last,
  so a folder without it is unfinished and not listed);
- a folder with ``metrics.json`` is an evaluation run (written by ``vadkit train`` / ``vadkit evaluate``).
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

MAX_DEPTH = 2
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.json"
RUN_IMAGES = ("roc.png", "training.png", "confusion.png", "calibration.png")
RUN_TEXT_FILES = ("config.yaml", "protocol.json", "split.json", "curves.csv")
# Only these kinds of file are served; a run folder also holds model.pt and .npy arrays, which a page never needs.
SERVED_SUFFIXES = {
    ".mp4": "video/mp4", ".webm": "video/webm", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".json": "application/json", ".csv": "text/csv; charset=utf-8", ".yaml": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class UnsafePathError(ValueError):
    """A requested path leaves the viewer's folders, or names something it never serves."""


class BrokenFileError(ValueError):
    """A ``result.json`` / ``metrics.json`` that exists but cannot be shown (the message says why)."""


MAX_JSON_DEPTH = 64  # nesting a result or metrics file may have (vadkit writes 4 levels; 100,000 broke the list)
#: the fields of result.json a list or page reads, and the types they must have when present
RESULT_FIELDS = {"name": (str,), "events": (list,), "files": (dict,), "scores": (list,), "smoothed": (list,),
                 "model": (dict, str), "num_frames": (int, float), "fps": (int, float), "duration_s": (int, float),
                 "threshold": (int, float)}
METRICS_FIELDS = {"protocol": (dict,)}


@dataclass(frozen=True)
class Root:
    """A folder the viewer reads, addressed by ``key`` in URLs."""

    key: str
    path: Path

    @property
    def real(self) -> Path:
        return self.path.resolve()


class Catalog:
    """Finds scored videos and runs under the roots; resolves item ids and file paths safely.

    Summaries are cached by (file, mtime, size), so listing a large tree re-reads only what changed.
    """

    def __init__(self, roots: Mapping[str, str | Path]) -> None:
        if not roots:
            raise ValueError("the viewer needs at least one folder to read")
        for key in roots:
            if not key or "/" in key or key.startswith("."):
                raise ValueError(f"root keys must be plain names, got {key!r}")
        self.roots = {key: Root(key, Path(path).expanduser()) for key, path in roots.items()}
        self._cache: dict[Path, tuple[tuple[int, int], dict]] = {}
        self._lock = threading.Lock()

    # -- safe resolution ------------------------------------------------------------------------------------
    def resolve(self, ref: str) -> Path:
        """``"<key>/<relative path>"`` -> the real path inside that root.

        Raises:
            UnsafePathError: unknown root, a ``..`` / ``.`` / empty / hidden segment, a backslash or NUL, or a path
                whose real location (after following symlinks) is outside the root.
        """
        key, _, rest = ref.partition("/")
        root = self.roots.get(key)
        if root is None:
            raise UnsafePathError(f"unknown folder {key!r}; expected one of {sorted(self.roots)}")
        parts = _safe_parts(rest)
        real_root = root.real
        target = real_root.joinpath(*parts).resolve()
        if target != real_root and real_root not in target.parents:
            raise UnsafePathError(f"{ref!r} leads outside the folder {key!r}")
        return target

    def resolve_file(self, ref: str) -> tuple[Path, str]:
        """A servable file: its real path and media type. Raises ``UnsafePathError`` or ``FileNotFoundError``."""
        path = self.resolve(ref)
        media_type = SERVED_SUFFIXES.get(path.suffix.lower())
        if media_type is None:
            raise UnsafePathError(f"files ending in {path.suffix or '(no suffix)'!r} are not served; "
                                  f"expected one of {sorted(SERVED_SUFFIXES)}")
        if not path.is_file():
            raise FileNotFoundError(f"no file {ref!r}")
        return path, media_type

    # -- discovery ------------------------------------------------------------------------------------------
    def folders(self, marker: str) -> Iterator[tuple[str, Path]]:
        """``(ref, folder)`` of every folder at depth <= 2 holding ``marker``, sorted by ref."""
        found = []
        for root in self.roots.values():
            real_root = root.real
            if not real_root.is_dir():
                continue
            for folder in _walk(real_root, real_root, MAX_DEPTH):
                if (folder / marker).is_file():
                    rel = folder.relative_to(real_root).as_posix()
                    found.append((root.key if rel == "." else f"{root.key}/{rel}", folder))
        return iter(sorted(found))

    def videos(self) -> list[dict]:
        """Summaries of every scored video (no score arrays); a broken ``result.json`` is listed with ``broken``
        saying why, and never hides the others."""
        out = []
        for ref, folder in self.folders(RESULT_FILE):
            result = self._load(folder / RESULT_FILE, RESULT_FIELDS)
            if isinstance(result, dict):
                out.append(video_summary(ref, result))
            elif result is not None:
                out.append(broken_summary(ref, folder, RESULT_FILE, result))
        return out

    def runs(self) -> list[dict]:
        """Summaries of every evaluation run (a broken ``metrics.json`` listed with ``broken``, as for videos)."""
        out = []
        for ref, folder in self.folders(METRICS_FILE):
            metrics = self._load(folder / METRICS_FILE, METRICS_FIELDS)
            if isinstance(metrics, dict):
                out.append(run_summary(ref, folder, metrics))
            elif metrics is not None:
                out.append(broken_summary(ref, folder, METRICS_FILE, metrics))
        return out

    def video(self, ref: str) -> dict:
        """The full ``result.json`` of one scored video, with ``id`` and file URLs added.

        Raises:
            FileNotFoundError: no scored video there. BrokenFileError: its ``result.json`` cannot be shown.
        """
        folder = self.resolve(ref)
        result = self._load(folder / RESULT_FILE, RESULT_FIELDS)
        if isinstance(result, str):
            raise BrokenFileError(f"{ref}/{RESULT_FILE}: {result}")
        if result is None:
            raise FileNotFoundError(f"no scored video {ref!r}")
        detail = dict(result)
        detail["id"] = ref
        detail["urls"] = _file_urls(ref, folder, result.get("files") or {})
        detail["events"] = [_event_with_url(ref, folder, e) for e in result.get("events") or []]
        return detail

    def run(self, ref: str) -> dict:
        """One evaluation run: its metrics, protocol card and the URLs of its plots and text files."""
        folder = self.resolve(ref)
        metrics = self._load(folder / METRICS_FILE, METRICS_FIELDS)
        if isinstance(metrics, str):
            raise BrokenFileError(f"{ref}/{METRICS_FILE}: {metrics}")
        if metrics is None:
            raise FileNotFoundError(f"no evaluation run {ref!r}")
        summary = run_summary(ref, folder, metrics)
        summary["metrics"] = metrics
        summary["images"] = {name: file_url(f"{ref}/{name}") for name in RUN_IMAGES if (folder / name).is_file()}
        summary["texts"] = {name: file_url(f"{ref}/{name}") for name in RUN_TEXT_FILES if (folder / name).is_file()}
        return summary

    def _read(self, file: Path) -> dict | None:
        """A JSON object, cached by mtime and size; ``None`` when missing, unreadable or broken."""
        data = self._load(file, {})
        return data if isinstance(data, dict) else None

    def _load(self, file: Path, fields: Mapping[str, tuple]) -> dict | str | None:
        """A JSON object whose ``fields`` have their types, cached by mtime and size; ``None`` when missing or
        unreadable (e.g. being replaced); a string saying why when it exists but is broken."""
        try:
            stat = file.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(file)
        if cached and cached[0] == stamp:
            data = cached[1]
        else:
            try:
                text = file.read_bytes().decode("utf-8", "replace")
            except OSError:
                return None
            data = _parse(text)
            with self._lock:
                self._cache[file] = (stamp, data)
        return data if isinstance(data, str) else (_wrong_field(data, fields) or data)


# -----------------------------------------------------------------------------------------------------------
# helpers
# -----------------------------------------------------------------------------------------------------------
def file_url(ref: str) -> str:
    return f"/files/{ref}"


def _parse(text: str) -> dict | str:
    """The JSON object of ``text``, or why it is not one (the nesting is measured before the parser recurses)."""
    depth = _nesting(text)
    if depth > MAX_JSON_DEPTH:
        return f"nested {depth} levels deep, expected at most {MAX_JSON_DEPTH}"
    try:  # NaN, Infinity and 1e400 become null: the server's JSON has no place for them
        data = json.loads(text, parse_constant=lambda _: None, parse_float=_finite)
    except ValueError as err:
        return f"not valid JSON ({err})"
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    return data


def _nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings ignored), without recursion."""
    deepest = depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: no backtracking frame per character
_BRACKETS = re.compile(r"[\[\]{}]")


def _wrong_field(data: Mapping[str, Any], fields: Mapping[str, tuple]) -> str | None:
    """Why a field of ``data`` has the wrong type (``None``: every field present has its type)."""
    for key, types in fields.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            names = {"dict": "an object", "list": "a list", "str": "a string", "int": "a number", "float": "a number"}
            expected = " or ".join(dict.fromkeys(names[t.__name__] for t in types))
            return f"{key!r} is {type(value).__name__} {str(value)[:40]!r}, expected {expected}"
    return None


def broken_summary(ref: str, folder: Path, file: str, why: str) -> dict:
    """The list entry of a folder whose ``file`` cannot be shown: its name and why."""
    return {"id": ref, "name": folder.name, "broken": f"{file}: {why}"}


def _safe_parts(rest: str) -> list[str]:
    if "\\" in rest or "\x00" in rest:
        raise UnsafePathError(f"path {rest!r} holds a backslash or NUL")
    if rest.startswith("/"):
        raise UnsafePathError(f"path {rest!r} is absolute; expected a path relative to the folder")
    if rest == "":
        return []
    parts = rest.split("/")
    for part in parts:
        if part in ("", ".", "..") or part.startswith("."):
            raise UnsafePathError(f"path {rest!r} has a segment {part!r}; expected plain names")
    if PurePosixPath(rest).is_absolute():
        raise UnsafePathError(f"path {rest!r} is absolute")
    return parts


def _walk(folder: Path, real_root: Path, depth: int) -> Iterator[Path]:
    """``folder`` and its non-hidden subfolders down to ``depth`` levels, never leaving ``real_root``."""
    yield folder
    if depth == 0:
        return
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return
    for child in children:
        if child.name.startswith(".") or not child.is_dir():
            continue
        real = child.resolve()
        if real_root not in real.parents:
            continue  # a symlink that leads out of the root
        yield from _walk(child, real_root, depth - 1)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def video_summary(ref: str, result: Mapping[str, Any]) -> dict:
    model = result.get("model") or {}
    smoothed = [v for v in (_finite(s) for s in result.get("smoothed") or result.get("scores") or []) if v is not None]
    return {
        "id": ref,
        "name": result.get("name") or ref.rsplit("/", 1)[-1],
        "num_frames": result.get("num_frames"),
        "fps": result.get("fps"),
        "duration_s": result.get("duration_s"),
        "model": model.get("name") if isinstance(model, Mapping) else model,
        "num_events": len(result.get("events") or []),
        "max_score": max(smoothed) if smoothed else None,
        "threshold": result.get("threshold"),
    }


def run_summary(ref: str, folder: Path, metrics: Mapping[str, Any]) -> dict:
    protocol = metrics.get("protocol") or {}
    return {
        "id": ref,
        "name": folder.name,
        "method": protocol.get("method"),
        "dataset": protocol.get("dataset"),
        "micro_auc": _finite(metrics.get("micro_auc")),
        "ap": _finite(metrics.get("ap")),
        "num_videos": metrics.get("num_videos"),
    }


def _file_urls(ref: str, folder: Path, files: Mapping[str, Any]) -> dict:
    """URLs of the files ``result.json`` names that exist inside the folder (a name that leaves it is dropped)."""
    urls = {}
    for kind, name in files.items():
        if not isinstance(name, str):
            continue
        try:
            parts = _safe_parts(name)
        except UnsafePathError:
            continue
        if parts and (folder.joinpath(*parts)).is_file():
            urls[kind] = file_url(f"{ref}/{'/'.join(parts)}")
    return urls


def _event_with_url(ref: str, folder: Path, event: Any) -> Any:
    if not isinstance(event, Mapping):
        return event
    event = dict(event)
    thumb = event.get("thumbnail")
    if isinstance(thumb, str):
        event["thumbnail_url"] = _file_urls(ref, folder, {"t": thumb}).get("t")
    return event
