"""Scoring a person's own videos with a fitted model: :mod:`vadkit.inference.bundle` finds and loads models
(run folders, model files, bundled names); :mod:`vadkit.inference.pipeline` scores videos into report folders."""

from vadkit.inference.bundle import (BUNDLED_DIR, DEFAULT_MODEL, LoadedModel, bundle_model, list_bundled_models,
                                     resolve_model)
from vadkit.inference.pipeline import jpeg, make_progress, score_video, score_videos
from vadkit.io.inputs import find_videos, unique_names

__all__ = ["BUNDLED_DIR", "DEFAULT_MODEL", "LoadedModel", "bundle_model", "find_videos", "jpeg", "list_bundled_models",
           "make_progress", "resolve_model", "score_video", "score_videos", "unique_names"]
