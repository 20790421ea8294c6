"""The detector contract every method keeps, the registry that names them, and the one model file.

A detector is built from typed keyword arguments (the ``detector_args`` of a config), then

- ``fit(train: list[VideoItem]) -> self`` learns from training videos only. It sets every piece of fitted state,
  **the threshold** ``threshold_`` and any score normalisation included, from training data alone (each detector
  documents its rule in ``threshold_rule``: a calibrated false-alarm quantile on held-out normal data, a
  training-error quantile, or a stated fixed value for probabilities; never a test statistic);
- ``score(item: VideoItem) -> FrameScores`` gives one score per frame, higher = more abnormal, with the frames that
  have no score marked and the detector's threshold attached. ``evaluate``, ``vadkit score``, the viewer and
  anything later use that threshold as it is;
- ``save(path)`` writes one model file; ``Detector.load(path)`` rebuilds the right subclass from it;
- ``explain(item) -> FrameObjects | None`` (optional; object detectors): where in each frame the score comes from
  (the most abnormal object's box) and why (its attribute scores); ``vadkit score`` draws and names it.

Scoring before fitting raises :class:`NotFittedError`.

Capabilities are declared as class attributes, never probed: ``inputs`` (``"features"``: I3D snippet features;
``"frames"``: the decoded video), ``trainable`` (a network trained by the one training loop of
:mod:`vadkit.detectors.loop`; such detectors can keep weight snapshots, so schedule selection works for them),
``classifier`` (``predict_class`` gives a video-level class).

Snippet geometry (frames per snippet, stride) is never a constant: feature detectors read it from the extraction
settings of their training features (``extraction_``, taken from the training items in ``fit``) and refuse features
made with other settings.

The model file (``model.pt``) is a ``torch.save`` of tensors and plain data only: the detector's name, constructor
arguments, fitted state, threshold, extraction settings, preprocessing (``crops``), protocol card, training history
and a line on the training data. It is read with ``torch.load(weights_only=True)``, which refuses anything that
could execute code; no sidecar file exists.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from vadkit.device import thread_scope, to_cpu
from vadkit.features.geometry import SnippetGeometry
from vadkit.features.weights import refused_message, torch_load_reason, torch_refusal
from vadkit.io.files import atomic_write_bytes
from vadkit.progress import progress_bar  # noqa: F401 - the trainers' progress bar
from vadkit.registry import Registry

#: Held inside ``caches_in`` and ``streaming``: both change a detector's state for the length of a block, so two
#: threads scoring with one loaded detector (two watchers, a viewer beside a watcher) take turns instead of reading
#: each other's cache folder or running background.
_SCORING_BLOCK = threading.RLock()

DETECTORS: Registry = Registry("detector")
MODEL_FORMAT = "vadkit-detector"
MODEL_VERSION = 2
INPUTS = ("features", "frames")


def register_detector(name: str):
    return DETECTORS.register(name)


class NotFittedError(RuntimeError):
    """``score`` was called before ``fit`` (or ``load``)."""


class ModelFileError(ValueError):
    """A file is not a vadkit model file, or holds something a model file may not (code, unknown objects)."""


# ---------------------------------------------------------------------------------------------------------------
# Inputs and outputs
# ---------------------------------------------------------------------------------------------------------------
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
        load_features: returns ``(num_snippets, F)`` snippet features (feature detectors).
        extraction: the extraction settings of those features (a store manifest's ``settings``).
    """

    id: str
    num_frames: int
    label: int = -1
    class_index: int = 0
    frame_labels: np.ndarray | None = None
    path: Path | None = None
    fps: float = 25.0
    load_features: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    extraction: dict | None = field(default=None, repr=False)

    def features(self) -> np.ndarray:
        if self.load_features is None:
            raise ValueError(f"video {self.id}: no snippet features attached (this detector needs a feature store)")
        return self.load_features()


def collapse_crops(features: np.ndarray, crops: str = "mean") -> np.ndarray:
    """``(N, crops, F)`` → ``(N, F)``: crops averaged (``mean``) or the first (centre) crop (``first``)."""
    if features.ndim == 2:
        return features
    if crops == "mean":
        return features.mean(axis=1)  # (N, crops, F) -> (N, F)
    if crops == "first":
        return features[:, 0]
    raise ValueError(f"crops must be 'mean' or 'first', got {crops!r}")


@dataclass(frozen=True)
class FrameScores:
    """The scores of one video.

    Attributes:
        values: ``(num_frames,)`` float64, higher = more abnormal; frames without a score hold NaN.
        scored: ``(num_frames,)`` bool, which frames have a score (a ``tail: drop`` policy leaves the last ones out).
        threshold: the detector's fitted threshold, in the same units as ``values``.
    """

    values: np.ndarray
    scored: np.ndarray
    threshold: float

    @classmethod
    def of(cls, values: np.ndarray, threshold: float, scored: np.ndarray | None = None) -> "FrameScores":
        values = np.asarray(values, dtype=np.float64)
        scored = np.isfinite(values) if scored is None else np.asarray(scored, dtype=bool)
        if values.ndim != 1 or scored.shape != values.shape:
            raise ValueError(f"frame scores must be one value per frame, got shapes {values.shape} and {scored.shape}")
        if not np.isfinite(values[scored]).all():
            raise ValueError(f"{int((~np.isfinite(values[scored])).sum())} scored frames have non-finite values")
        values = values.copy()
        values[~scored] = np.nan
        return cls(values=values, scored=scored, threshold=float(threshold))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_frames(self) -> int:
        return len(self)

    def abnormal(self) -> np.ndarray:
        """``(num_frames,)`` bool: scored frames at or above the threshold."""
        out = np.zeros(len(self), dtype=bool)
        out[self.scored] = self.values[self.scored] >= self.threshold
        return out


@dataclass(frozen=True)
class FrameObjects:
    """The most abnormal object of each frame: where a frame's score comes from, and why.

    Attributes:
        boxes: ``(num_frames, 4)`` float32 ``x1, y1, x2, y2`` in the pixels of a ``size`` frame; NaN rows: no object.
        attributes: attribute name -> ``(num_frames,)`` that object's calibrated score (NaN: no object).
        unit: the unit of an attribute score, after its number (e.g. "times the 99.9th percentile of held-out
            training objects").
        size: ``(width, height)`` of the frames the boxes refer to.
    """

    boxes: np.ndarray
    attributes: dict
    unit: str
    size: tuple

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or any(np.shape(v) != (n,) for v in self.attributes.values()):
            raise ValueError(f"frame objects: expected boxes (N, 4) and attributes (N,), got {self.boxes.shape} and "
                             f"{ {k: np.shape(v) for k, v in self.attributes.items()} }")

    def __len__(self) -> int:
        return len(self.boxes)

    def box(self, frame: int, size: tuple | None = None) -> list[float] | None:
        """The frame's object box (scaled to a ``size`` frame when given), or None."""
        box = self.boxes[frame]
        if not np.isfinite(box).all():
            return None
        if size is not None:
            box = box * np.array([size[0] / self.size[0], size[1] / self.size[1]] * 2)
        return [round(float(v), 1) for v in box]

    def scores(self, frame: int) -> dict[str, float]:
        return {k: round(float(v[frame]), 4) for k, v in self.attributes.items() if np.isfinite(v[frame])}

    def _ranked(self, frame: int) -> list[tuple[str, float]]:
        return sorted(self.scores(frame).items(), key=lambda kv: -kv[1])

    def reason(self, frame: int) -> str | None:
        """Which attribute made the frame's object abnormal, e.g. "velocity 4.1 times the 99.9th percentile of
        held-out training objects (appearance 0.8)"."""
        ranked = self._ranked(frame)
        if not ranked:
            return None
        (name, value), rest = ranked[0], ranked[1:]
        others = ", ".join(f"{n} {v:.1f}" for n, v in rest)
        return f"{name} {value:.1f} {self.unit}" + (f" ({others})" if others else "")

    def label(self, frame: int) -> str:
        """The reason in short, for a box label: "velocity 4.1" ("" when the frame has no object)."""
        ranked = self._ranked(frame)
        return f"{ranked[0][0]} {ranked[0][1]:.1f}" if ranked else ""

    def to_json(self, size: tuple | None = None) -> dict:
        """Per frame: the box (or None) and each attribute's score (or None), for ``result.json``."""
        return {"boxes": [self.box(i, size) for i in range(len(self))], "unit": self.unit,
                "attributes": {k: [round(float(x), 4) if np.isfinite(x) else None for x in v]
                               for k, v in self.attributes.items()}}


# ---------------------------------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------------------------------
class Detector(ABC):
    """Base class (see the module docstring for the contract).

    Subclasses set the class attributes below, keep their constructor arguments in ``self.args`` (so that a model
    file can rebuild them), implement ``_fit`` (which must set ``threshold_``), ``_score`` (``(num_frames,)`` raw
    values, NaN where a frame has no score), and ``state`` / ``load_state`` for their fitted state (tensors and
    plain data only).
    """

    name: ClassVar[str] = ""
    inputs: ClassVar[str] = "features"
    trainable: ClassVar[bool] = False
    classifier: ClassVar[bool] = False
    threshold_rule: ClassVar[str] = ""
    # snippets a live stream's score needs (`vadkit watch`): 1 = each snippet is scored on its own (live scores
    # equal file scores); None = the detector reads a sequence, and watch gives it the last few snippets
    stream_context: ClassVar[int | None] = None
    # what scoring reads (an exported model's description): "snippets" (one score per snippet feature), "windows"
    # (windows of snippet features), "frames" (decoded frames) or "objects" (boxes and their cubes or attributes)
    scoring_kind: ClassVar[str] = "other"
    # how an exported network takes its input: "rows" (a batch of independent rows) or "batch-of-one" (one whole
    # sequence per call)
    export_layout: ClassVar[str] = "rows"
    # the constructor arguments that say what a fitted detector is, on its protocol card ("knn: k=1, metric=cosine")
    card_args: ClassVar[tuple[str, ...]] = ()
    # `vadkit fit-normal --method NAME`: None = not offered; a dict = offered, with these arguments beside the user's
    fit_normal_args: ClassVar[dict | None] = None
    # what ``state()`` holds, checked when a model file is loaded: {key: (accepted types, required)}
    state_types: ClassVar[dict[str, tuple[tuple[type, ...], bool]]] = {}

    def __init__(self, **args: Any) -> None:
        self.args = args
        self.fitted_ = False
        self.threshold_: float | None = None
        self.history: list[dict] = []
        self.extraction_: dict | None = None  # extraction settings of the training features (feature detectors)
        self.crops_: str = "mean"  # how multi-crop features are collapsed
        self.protocol_: dict = {}  # the protocol card of the run that fitted it
        self.trained_on_: str = ""  # one line on the training data

    # -- the contract -------------------------------------------------------------------------------------------
    def fit(self, train: list[VideoItem], progress: bool = True) -> "Detector":
        """Learn from ``train`` (training data only), set the threshold, return ``self``."""
        self._begin_fit(train)
        self._fit(train, progress)
        return self._end_fit()

    def _begin_fit(self, train: list[VideoItem]) -> None:
        """What every way of fitting does first: refuse no data, take the training features' settings, forget the
        old threshold (a refit starts from nothing)."""
        if not train:
            raise ValueError(f"{self.name}: no training videos")
        if self.inputs == "features":
            self.extraction_ = common_extraction(train)
        self.threshold_ = None

    def _end_fit(self) -> "Detector":
        """What every way of fitting does last: a finite threshold, or an error naming the rule."""
        if self.threshold_ is None or not np.isfinite(self.threshold_):
            raise RuntimeError(f"{self.name}: fitting gave no finite threshold ({self.threshold_}); "
                               f"rule: {self.threshold_rule}")
        self.threshold_ = float(self.threshold_)
        self.fitted_ = True
        return self

    def score(self, item: VideoItem) -> FrameScores:
        """One score per frame of ``item``, with the fitted threshold."""
        self._check_fitted()
        self._check_extraction(item)
        return self._frame_scores_of(self._score(item), item)

    def explain(self, item: VideoItem) -> FrameObjects | None:
        """Where each frame's score comes from (object detectors override it); None: the detector cannot say."""
        return None

    def score_explained(self, item: VideoItem) -> tuple[FrameScores, FrameObjects | None]:
        """``score`` and ``explain`` of one video together (what `vadkit score` writes), equal to the two calls; a
        detector whose explanation comes out of the computation of its scores does that computation once
        (:meth:`_score_explained`)."""
        self._check_fitted()
        self._check_extraction(item)
        values, objects = self._score_explained(item)
        return self._frame_scores_of(values, item), objects

    def _score_explained(self, item: VideoItem) -> tuple[np.ndarray, FrameObjects | None]:
        return self._score(item), self.explain(item)

    def _frame_scores_of(self, values, item: VideoItem) -> FrameScores:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (item.num_frames,):
            raise RuntimeError(f"{self.name} gave {values.shape} scores for video {item.id} with {item.num_frames} "
                               f"frames")
        return FrameScores.of(values, self.threshold_, scored=_scored_frames(values, self.name, item.id))

    def describe(self) -> str:
        """The method on a protocol card: the name and the arguments in ``card_args``."""
        shown = [f"{k}={self.args[k]}" for k in self.card_args if self.args.get(k) is not None]
        return self.name + (": " + ", ".join(shown) if shown else "")

    def calibration_report(self) -> dict:
        """What fitting measured on held-out normal training data (``calibration.json`` of `vadkit fit-normal`):
        ``achieved_far`` (the share of held-out scores above the threshold), ``held_out`` and ``held_out_unit``
        (how many held-out scores: ``snippets`` or ``frames``), ``fitted_on`` (one line), ``held_out_scores`` when
        kept. Detectors calibrated on something other than held-out normal data return ``{}``."""
        return {}

    @contextmanager
    def caches_in(self, folder: str | Path):
        """Inside the block, keep the per-video disk caches (boxes, flow, attributes, cubes) under ``folder``, which
        the caller deletes after: for videos scored once and never again, such as a live stream's segments
        (`vadkit watch`), whose caches would otherwise pile up. Detectors without a ``cache_dir`` are unchanged."""
        with _SCORING_BLOCK:
            if "cache_dir" not in self.args:
                yield self
                return
            previous = self.args["cache_dir"]
            self.args["cache_dir"] = str(folder)
            try:
                yield self
            finally:
                self.args["cache_dir"] = previous

    _stream: dict | None = None  # inside streaming(): the current stream's own state

    @contextmanager
    def streaming(self, state: dict, cache_folder: str | Path | None = None):
        """Inside the block, each ``score`` call is the next segment of one live stream (`vadkit watch`), and
        ``state`` is that stream's own dict, kept by the caller from segment to segment: a detector keeps there
        what it carries across segments (the object detectors' box sources keep a running background for ``boxes:
        background``, :class:`~vadkit.features.boxes.regions.RunningBackground`). Outside it, ``score`` carries
        nothing from one call to the next. What is scored inside depends on the stream's past, so its per-video caches
        go to ``cache_folder`` (:meth:`caches_in`; the caller deletes it), by default a temporary folder deleted after
        the block, never to a cache a later ``score`` would read."""
        with tempfile.TemporaryDirectory(prefix="vadkit-stream-") if cache_folder is None else \
                contextlib.nullcontext(cache_folder) as folder, self.caches_in(folder):
            previous, self._stream = self._stream, state
            try:
                yield self
            finally:
                self._stream = previous

    @abstractmethod
    def _fit(self, train: list[VideoItem], progress: bool) -> None:
        ...

    @abstractmethod
    def _score(self, item: VideoItem) -> np.ndarray:
        ...

    @property
    def geometry(self) -> SnippetGeometry:
        """Frames per snippet and stride of the features this detector was fitted on."""
        return SnippetGeometry.of(self.extraction_)

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load a saved detector first")

    def _check_extraction(self, item: VideoItem) -> None:
        if self.inputs != "features" or item.extraction is None:
            return
        mine, theirs = self.geometry, SnippetGeometry.of(item.extraction)
        if mine != theirs:
            raise ValueError(f"video {item.id}: features of {theirs.snippet_len}-frame snippets with stride "
                             f"{theirs.stride}, but {self.name} was fitted on {mine.snippet_len}/{mine.stride}; "
                             f"extract with the detector's settings")

    # -- runtimes -------------------------------------------------------------------------------------------------
    backend_: str = "torch"

    def networks(self) -> dict[str, "ExportSpec"]:
        """The networks scoring runs through, by the attribute that holds each, as export specs (example inputs
        of scoring's shapes). Detectors without a network return ``{}``; see :mod:`vadkit.features.backends`."""
        return {}

    def torch_network(self, attribute: str):
        """The torch module behind ``attribute``, also after :meth:`use_backend` replaced it."""
        return self.__dict__.get("_torch_networks", {}).get(attribute, getattr(self, attribute))

    def backend_note(self, backend: str) -> str | None:
        """Why this detector cannot score on ``backend`` (it then stays on torch), or ``None``."""
        return None

    def use_backend(self, backend: str, threads: int | None = None) -> "Detector":
        """Score through ``backend`` from now on (``torch``, ``onnxruntime`` or ``openvino``; ``auto`` is torch
        here: the pipeline passes feature detectors the backend chosen for the feature network). Each network is
        replaced by its cached export, called exactly as the module was; saving still writes the torch weights.
        A detector that cannot run on ``backend`` (:meth:`backend_note`) stays on torch. Returns ``self``;
        ``backend_`` says which backend scores."""
        from vadkit.features.backends import check_backend_name, exported_network

        self._check_fitted()
        check_backend_name(backend)
        if backend == "auto" or self.backend_note(backend):
            backend = "torch"
        originals = self.__dict__.setdefault("_torch_networks", {})
        for attribute, module in originals.items():  # a second call starts from the torch modules
            setattr(self, attribute, module)
        specs = self.networks()
        for attribute, spec in specs.items():
            originals.setdefault(attribute, getattr(self, attribute))
            setattr(self, attribute, exported_network(spec, backend, threads, label=f"{self.name}-{attribute}"))
        self.backend_ = backend if specs else "torch"
        return self

    # -- devices --------------------------------------------------------------------------------------------------
    device_: str = "cpu"  # where the networks train and score (never saved: model files are device-free)
    precision_: str = "fp32"  # training precision on the device (vadkit.device.PRECISIONS)

    def device_modules(self) -> list[torch.nn.Module]:
        """The modules that move with :meth:`to_device` (a trainable detector's network). Detectors that keep
        their fitted arrays on the CPU (k-NN, objects) return none."""
        return []

    def to_device(self, device: str | torch.device = "cpu", precision: str = "fp32") -> "Detector":
        """Train and score on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) at ``precision`` from now on.
        Inference runtimes other than torch run on the CPU: a detector put on CUDA scores with torch. Returns
        ``self``."""
        from vadkit.device import check_precision, resolve_device

        resolved = resolve_device(device)
        if precision == "fp16":
            raise ValueError("precision fp16 is for features only: training in fp16 needs loss scaling; use bf16")
        check_precision(precision, resolved)
        modules = self.device_modules()
        if modules and resolved.type != "cpu" and self.backend_ != "torch":
            self.use_backend("torch")
        for module in modules:
            module.to(resolved)
        self.device_ = str(resolved) if modules else "cpu"
        self.precision_ = precision
        return self

    def tensor(self, array: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``array`` as a tensor on the detector's device (float32 arrays stay float32)."""
        from vadkit.device import to_device

        x = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
        return to_device(x, self.device_)

    # -- persistence ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """Fitted state beyond the constructor arguments (tensors and plain data only)."""
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def to_file(self) -> dict:
        """Everything the model file holds (tensors and plain data)."""
        self._check_fitted()
        return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "detector": self.name, "args": self.args,
                "state": to_cpu(self.state()), "threshold": self.threshold_, "threshold_rule": self.threshold_rule,
                "extraction": self.extraction_, "crops": self.crops_, "protocol": self.protocol_,
                "trained_on": self.trained_on_, "history": self.history}

    def save(self, path: str | Path) -> None:
        """Write the model file (atomically)."""
        buffer = io.BytesIO()
        torch.save(self.to_file(), buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Detector":
        """Rebuild a saved detector (a model file, or a run folder holding ``model.pt``) as its own subclass."""
        return load_detector(path)


if TYPE_CHECKING:  # pragma: no cover
    from vadkit.features.backends import ExportSpec


def _scored_frames(values: np.ndarray, detector: str, video: str) -> np.ndarray:
    """Which frames have a score: all but a trailing run of NaN (a dropped tail). A non-finite value anywhere else
    is a failure (a diverged network), never a silently unscored frame."""
    finite = np.isfinite(values)
    if finite.all():
        return finite
    first = int(np.flatnonzero(~finite)[0])
    if np.isnan(values[first:]).all():
        return finite
    bad = np.flatnonzero(~finite)
    raise RuntimeError(f"{detector} gave {bad.size} non-finite scores for video {video} (first at frame {first}) "
                       f"that are not a dropped tail; the detector diverged or failed")


def common_extraction(train: list[VideoItem]) -> dict | None:
    """The extraction settings shared by all training items (``None`` when none carries any)."""
    found = {SnippetGeometry.of(v.extraction) for v in train if v.extraction is not None}
    if len(found) > 1:
        raise ValueError(f"training videos come from feature stores with different snippet geometries: "
                         f"{sorted((g.snippet_len, g.stride) for g in found)}")
    for item in train:
        if item.extraction is not None:
            return dict(item.extraction)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers for detector modules
# ---------------------------------------------------------------------------------------------------------------
def number_arg(value: Any, name: str) -> float:
    """A float constructor argument; YAML 1.1 reads ``1e-3`` (no dot) as text, so numeric text is accepted too."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def torch_threads(threads: int | None):
    """Run a block with ``threads`` torch CPU threads (``None``: unchanged), then restore the previous count
    (:func:`vadkit.device.thread_scope`).

    The trainers' models are small: one thread avoids the synchronisation cost that makes two threads several times
    slower on a busy 2-core machine (measured: 200 AR-Net steps took 6.7 s with 1 thread, 38 s with 2 under load).
    """
    return thread_scope(threads)


def quantile_threshold(scores: np.ndarray, quantile: float, what: str) -> float:
    """The one threshold rule of the calibrated detectors: the ``quantile`` quantile of ``scores`` (training or
    held-out normal data, never test data), finite or an error that says what was measured."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if not values.size:
        raise RuntimeError(f"no finite {what} to set the threshold from")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"the threshold quantile must be in [0, 1], got {quantile}")
    return float(np.quantile(values, quantile))


# ---------------------------------------------------------------------------------------------------------------
# Building and loading
# ---------------------------------------------------------------------------------------------------------------
def build_detector(name: str, **args: Any) -> Detector:
    _import_detectors()
    cls = DETECTORS.get(name)
    try:
        return cls(**args)
    except TypeError as err:
        raise ValueError(f"detector {name!r}: bad arguments {sorted(args)}: {err}") from err


def list_detectors() -> list[str]:
    _import_detectors()
    return DETECTORS.list()


def read_model_file(path: str | Path) -> dict:
    """The content of a model file, read without executing code.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a vadkit model file, or it holds Python objects other than tensors and plain data.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickle protocols before refusing them
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every unreadable file gets one clear message
        refusal = torch_refusal(err)
        if refusal is not None:
            raise ModelFileError(refused_message(path, "a vadkit model file", refusal)) from None
        raise ModelFileError(f"{path} is not a vadkit model file ({type(err).__name__}: "
                             f"{torch_load_reason(err)[0]})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("format"), str) or saved["format"] != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not a vadkit model file: expected a dict with format {MODEL_FORMAT!r}, "
                             f"found {type(saved).__name__}"
                             + (f" with format {repr(saved.get('format'))[:60]}" if isinstance(saved, dict) else ""))
    if type(saved.get("version")) is not int or saved["version"] != MODEL_VERSION:
        raise ModelFileError(f"{path}: model file version {repr(saved.get('version'))[:60]}, this vadkit reads version "
                             f"{MODEL_VERSION}")
    return saved


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:200] if lines else "unreadable"


def load_detector(path: str | Path) -> Detector:
    """Rebuild a saved detector (a model file or a run folder holding ``model.pt``)."""
    saved = read_model_file(path)
    detector = checked_model_content(saved, path)
    detector.threshold_ = saved["threshold"]
    detector.extraction_ = saved["extraction"]
    detector.crops_ = saved["crops"]
    detector.protocol_ = dict(saved["protocol"])
    detector.trained_on_ = saved["trained_on"]
    detector.history = list(saved["history"])
    detector.fitted_ = True
    return detector


# ---------------------------------------------------------------------------------------------------------------
# What a model file's content must be (a safe file can still be malformed: a key missing, a value of a wrong type)
# ---------------------------------------------------------------------------------------------------------------
NUMBER = (int, float)
#: the model file's keys beside format and version: {key: (accepted types, what the message calls them)}
MODEL_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "detector": ((str,), "a detector name"),
    "args": ((dict,), "a dict of constructor arguments"),
    "state": ((dict,), "a dict of fitted state"),
    "threshold": (NUMBER + (type(None),), "a number or None"),
    "extraction": ((dict, type(None)), "a dict of extraction settings or None"),
    "crops": ((str,), "a crop rule name"),
    "protocol": ((dict,), "a dict (the protocol card)"),
    "trained_on": ((str,), "a line of text"),
    "history": ((list,), "a list of training records"),
}


def checked_model_content(saved: dict, path: str | Path) -> Detector:
    """The detector ``saved`` (a model file's content) names, built from its arguments with its state loaded,
    after checking every key against what the detector expects.

    Raises:
        ModelFileError: one line naming the file, the key, what was expected and what was found.
    """
    for key, (types, expected) in MODEL_KEYS.items():
        _expect(saved, key, types, expected, path, "")
    name = saved["detector"]
    _import_detectors()
    if name not in DETECTORS.list():
        raise ModelFileError(f"{path}: key 'detector': expected one of {', '.join(DETECTORS.list())}, found {name!r}")
    cls = DETECTORS.get(name)
    _check_args(cls, saved["args"], path)
    for key, (types, required) in cls.state_types.items():
        if required or key in saved["state"]:
            _expect(saved["state"], key, types, " or ".join(_type_name(t) for t in types), path, "state.")
    try:
        detector = build_detector(name, **saved["args"])
    except Exception as err:  # noqa: BLE001 - arguments the constructor refuses are the file's fault
        raise ModelFileError(f"{path}: key 'args': the {name} detector refuses them ({_first_line(err)})") from None
    _check_network_state(detector, saved["state"], path)
    try:
        detector.load_state(saved["state"])
    except Exception as err:  # noqa: BLE001 - whatever else does not fit is named, in one line
        raise ModelFileError(f"{path}: key 'state': expected the fitted state of a {name} detector, found one it "
                             f"cannot load ({type(err).__name__}: {_first_line(err)})") from None
    return detector


def _expect(mapping: dict, key: str, types: tuple, expected: str, path, prefix: str) -> None:
    if key not in mapping:
        raise ModelFileError(f"{path}: key '{prefix}{key}' is missing (expected {expected})")
    value = mapping[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ModelFileError(f"{path}: key '{prefix}{key}': expected {expected}, found {_describe(value)}")


def _check_args(cls: type, args: dict, path) -> None:
    """Each saved argument must be one the constructor takes, of the type of its default value."""
    import inspect

    parameters = inspect.signature(cls.__init__).parameters
    for key, value in args.items():
        if not isinstance(key, str) or key not in parameters:
            known = ", ".join(p for p in parameters if p != "self")
            raise ModelFileError(f"{path}: key 'args': {key!r} is no argument of the {cls.name} detector "
                                 f"(expected some of {known})")
        default = parameters[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        # a number for a number (a config may write 100000.0 where the default is 100000), else the default's type
        types = NUMBER if isinstance(default, NUMBER) and not isinstance(default, bool) else (type(default),)
        if not isinstance(value, types) or (isinstance(value, bool) and not isinstance(default, bool)):
            raise ModelFileError(f"{path}: key 'args.{key}': expected {_type_name(type(default))} (like the default "
                                 f"{default!r}), found {_describe(value)}")


def _check_network_state(detector: Detector, state: dict, path) -> None:
    """A network's saved weights must have the names and shapes of the network the arguments build."""
    network = getattr(detector, "model", None)
    saved = state.get("model")
    if not isinstance(network, torch.nn.Module) or saved is None:
        return
    expected = network.state_dict()
    if not isinstance(saved, dict):
        raise ModelFileError(f"{path}: key 'state.model': expected a dict of tensors, found {_describe(saved)}")
    missing = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]
    if missing or extra:
        raise ModelFileError(f"{path}: key 'state.model': expected the {len(expected)} weights of the "
                             f"{detector.name} network, found {len(missing)} missing (e.g. {missing[:2]}) and "
                             f"{len(extra)} unknown (e.g. {[str(k)[:40] for k in extra[:2]]})")
    for key, tensor in expected.items():
        value = saved[key]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            found = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else _describe(value)
            raise ModelFileError(f"{path}: key 'state.model.{key}': expected a tensor of shape "
                                 f"{tuple(tensor.shape)}, found {found}")


def _type_name(t: type) -> str:
    return "None" if t is type(None) else ("a tensor" if t is torch.Tensor else t.__name__)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + ('…' if len(text) > 60 else '')}"


DETECTOR_MODULES = ("vadkit.detectors.knn", "vadkit.detectors.weak", "vadkit.detectors.sendec",
                    "vadkit.detectors.state", "vadkit.detectors.objects")


def _import_detectors() -> None:
    """Import the detector modules so that their ``@register_detector`` decorators run."""
    import importlib

    for module in DETECTOR_MODULES:
        importlib.import_module(module)
