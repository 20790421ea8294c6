"""The detector contract every method keeps, and the registry that names them.

A detector is built from typed keyword arguments (the ``detector_args`` of a config), then

- ``fit(train: list[VideoItem]) -> self``: learns from training videos (which inputs it reads, frames or features,
  is its own business; ``needs`` says which);
- ``score(item: VideoItem) -> np.ndarray``: one score per frame of the video, higher = more abnormal (NaN only for
  frames a ``tail: drop`` policy leaves out);
- ``save(path)`` / ``load_detector(path)``: the constructor arguments, weights and fitted statistics in one file.

Scoring before fitting raises :class:`NotFittedError`.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vadkit.registry import Registry

DETECTORS: Registry = Registry("detector")


def register_detector(name: str):
    return DETECTORS.register(name)


class NotFittedError(RuntimeError):
    """``score`` was called before ``fit`` (or ``load``)."""


@dataclass
class VideoItem:
    """One video as a detector sees it.

    Attributes:
        id: unique key (``<split>/<id>`` of the dataset record).
        num_frames: frames of the video.
        label: video label (0 normal, 1 abnormal; -1 unknown).
        class_index: class for classifier heads (0 = normal for binary datasets).
        frame_labels: ``(num_frames,)`` 0/1 or ``None``.
        path: the video file or frame folder.
        fps: frame rate.
        load_features: returns ``(num_snippets, F)`` snippet features (feature-based detectors).
    """

    id: str
    num_frames: int
    label: int = -1
    class_index: int = 0
    frame_labels: np.ndarray | None = None
    path: Path | None = None
    fps: float = 25.0
    load_features: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def features(self) -> np.ndarray:
        if self.load_features is None:
            raise ValueError(f"video {self.id}: no snippet features attached (this detector needs a feature store)")
        return self.load_features()


class Detector(ABC):
    """Base class. Subclasses set ``name`` (their registry name) and ``needs`` (``"features"`` or ``"frames"``)
    and keep their constructor arguments in ``self.args`` so that ``save`` can rebuild them."""

    name: str = ""
    needs: str = "features"
    frames_per_snippet: int = 16

    def __init__(self, **args: Any) -> None:
        self.args = args
        self.fitted_ = False
        self.history: list[dict] = []
        self.extraction_: dict | None = None  # feature settings of the training data (feature detectors)

    @abstractmethod
    def fit(self, train: list[VideoItem], progress: bool = True) -> "Detector":
        ...

    @abstractmethod
    def score(self, item: VideoItem) -> np.ndarray:
        ...

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load a saved detector first")

    # -- persistence ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """Fitted state beyond the constructor arguments (weights, statistics)."""
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def save(self, path: str | Path) -> None:
        from vadkit.features.store import atomic_write_bytes

        buffer = io.BytesIO()
        torch.save({"detector": self.name, "args": self.args, "state": self.state(), "history": self.history,
                    "extraction": self.extraction_}, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())


def number_arg(value: Any, name: str) -> float:
    """A float constructor argument; YAML 1.1 reads ``1e-3`` (no dot) as text, so numeric text is accepted too."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def progress_bar(description: str, enabled: bool):
    """The rich progress bar the trainers show (a ``{task.fields[info]}`` column for loss and rates)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled)


@contextmanager
def torch_threads(threads: int | None):
    """Run a block with ``threads`` torch CPU threads (``None``: unchanged), then restore the previous count.

    The trainers' models are small: one thread avoids the synchronisation cost that makes two threads several times
    slower on a busy 2-core machine (measured: 200 AR-Net steps took 6.7 s with 1 thread, 38 s with 2 under load).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_detector(name: str, **args: Any) -> Detector:
    _import_detectors()
    cls = DETECTORS.get(name)
    try:
        return cls(**args)
    except TypeError as err:
        raise ValueError(f"detector {name!r}: bad arguments {sorted(args)}: {err}") from err


def load_detector(path: str | Path) -> Detector:
    """Rebuild a saved detector (a ``model.pt`` file or a run folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no saved detector at {path}")
    # A detector file holds its constructor arguments and fitted state as Python objects: load only files you
    # trust (your own runs, the bundled models), as with any pickle.
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path} is not a vadkit detector file ({type(err).__name__}: {err})") from err
    if not isinstance(saved, dict) or "detector" not in saved:
        raise ValueError(f"{path} is not a vadkit detector file (no 'detector' entry)")
    detector = build_detector(saved["detector"], **saved["args"])
    detector.load_state(saved["state"])
    detector.history = saved.get("history", [])
    detector.extraction_ = saved.get("extraction")
    detector.fitted_ = True
    return detector


DETECTOR_MODULES = ("vadkit.engine.weak", "vadkit.engine.sendec", "vadkit.engine.state", "vadkit.engine.oneclass")


def _import_detectors() -> None:
    """Import the detector modules so that their ``@register_detector`` decorators run."""
    import importlib
    import importlib.util

    for module in DETECTOR_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
