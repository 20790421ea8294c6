"""Web viewer: lists scored videos and evaluation runs, plays a video under its score timeline, scores uploads.

``create_app`` needs FastAPI (imported lazily here, so ``import vadkit.viewer`` works without it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any):
    """See ``vadkit.viewer.app.create_app``."""
    from vadkit.viewer.app import create_app as _create_app

    return _create_app(*args, **kwargs)
