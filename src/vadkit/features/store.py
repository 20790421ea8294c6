"""The feature store: one ``.npy`` per video plus a manifest that says exactly how the features were made.

Layout::

    <root>/manifest.json          settings (weights file + sha256, preprocessing, snippet length/stride, crops)
                                  and one entry per finished video (frames, fps, snippets)
    <root>/<video_id>.npy         float32 (num_snippets, 1024) or (num_snippets, crops, 1024)

Writes are atomic (temporary name, then rename), so an interrupted extraction never leaves a file that looks
finished; a rerun skips the videos the manifest lists. A store whose settings differ from the requested ones is
refused, naming the settings that differ.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vadkit.io.files import (atomic_save_npy, atomic_write_json, json_default, remove_stale_temporaries,  # noqa: F401
                            safe_name)  # safe_name: part of the store's interface

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"


class StoreMismatchError(ValueError):
    """The store on disk was made with other settings than the ones requested."""


class FeatureStore:
    """Per-video feature arrays under ``root`` with a manifest.

    Args:
        root: the store folder (created on first write).
        settings: how the features are made. When the folder already holds a manifest with other settings,
            :class:`StoreMismatchError` names each setting that differs. ``None`` opens an existing store as is.
    """

    def __init__(self, root: str | os.PathLike, settings: Mapping[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / MANIFEST
        existing = self._read_manifest()
        if settings is None:
            if existing is None:
                raise FileNotFoundError(f"no feature store at {self.root} (missing {MANIFEST}); run `vadkit extract` first")
            self.manifest = existing
        else:
            remove_stale_temporaries(self.root)  # of extractions interrupted more than an hour ago
            settings = json.loads(json.dumps(dict(settings), default=json_default))  # normalise types
            if existing is not None:
                self._refuse_if_different(existing["settings"], settings)
                self.manifest = existing
            else:
                self.manifest = {"format": 1, "settings": settings, "videos": {}}

    @property
    def settings(self) -> dict:
        return self.manifest["settings"]

    @property
    def videos(self) -> dict:
        """video id -> {"file", "num_frames", "fps", "num_snippets", "shape"} for each finished video."""
        return self.manifest["videos"]

    def _read_manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise StoreMismatchError(f"{self.manifest_path} is not valid JSON: {err}") from err
        if "settings" not in manifest or "videos" not in manifest:
            raise StoreMismatchError(f"{self.manifest_path} is not a vadkit feature manifest (no settings/videos)")
        return manifest

    def _refuse_if_different(self, have: Mapping, want: Mapping) -> None:
        differ = [k for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
        if differ:
            lines = "; ".join(f"{k}: store has {have.get(k)!r}, requested {want.get(k)!r}" for k in differ)
            raise StoreMismatchError(
                f"the feature store at {self.root} was made with other settings ({lines}). "
                f"Use another --out folder or delete this one.")

    def path(self, video_id: str) -> Path:
        return self.root / f"{safe_name(video_id)}.npy"

    def has(self, video_id: str) -> bool:
        return video_id in self.videos and self.path(video_id).exists()

    def write(self, video_id: str, features: np.ndarray, num_frames: int, fps: float, **extra: Any) -> Path:
        """Save one video's features, then record it in the manifest (both atomically; the manifest update holds
        the store's lock and merges what other processes recorded meanwhile, so concurrent extractions into one store
        lose no entry)."""
        features = np.asarray(features, dtype=np.float32)
        path = self.path(video_id)
        atomic_save_npy(path, features)
        entry = {"file": path.name, "num_frames": int(num_frames), "fps": float(fps),
                 "num_snippets": int(features.shape[0]), "shape": list(features.shape), **extra}
        with self._locked():
            on_disk = self._read_manifest()
            if on_disk is not None:
                self._refuse_if_different(on_disk["settings"], self.settings)
                self.manifest["videos"] = {**on_disk["videos"], **self.videos}
            self.videos[video_id] = entry
            atomic_write_json(self.manifest_path, self.manifest)
        return path

    def save_manifest(self) -> None:
        with self._locked():
            atomic_write_json(self.manifest_path, self.manifest)

    @contextlib.contextmanager
    def _locked(self):
        """An exclusive lock on ``<root>/.manifest.lock`` (advisory, per open file; released on exit or crash)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, video_id: str, mmap: bool = False) -> np.ndarray:
        if video_id not in self.videos:
            raise KeyError(f"video {video_id!r} is not in the feature store at {self.root}")
        return np.load(self.path(video_id), mmap_mode="r" if mmap else None)

    def __contains__(self, video_id: str) -> bool:
        return self.has(video_id)

    def __len__(self) -> int:
        return len(self.videos)
