"""Fitted models as a user names them: a run folder, a model file, or a bundled model's name.

A model is one file (``model.pt``, see :mod:`vadkit.detectors.base`): weights, threshold, extraction settings,
preprocessing and protocol card together, read without executing code. Run folders and bundled models hold the
same file; bundled ones live in ``vadkit/assets/models/<name>.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadkit.detectors import Detector, load_detector
from vadkit.io.files import atomic_write_bytes

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
DEFAULT_MODEL = "ped2-knn"


@dataclass
class LoadedModel:
    """A fitted detector, where it came from, and the feature extractor that matches its training features.

    Attributes:
        detector: the fitted detector (it carries its threshold, extraction settings, crops and protocol card).
        source: the run folder, model file or bundled model name it came from.
        run_dir: the run folder, when there is one.
        backend: the runtime of the networks (``auto``: see :meth:`ready`).
        device: where the networks run (resolved: ``cpu``, ``cuda:0``, ...); on CUDA everything runs on torch.
    """

    detector: Detector
    source: str
    run_dir: Path | None = None
    backend: str = "auto"
    device: str = "cpu"
    _extractor: Any = field(default=None, repr=False)
    _ready: bool = field(default=False, repr=False)

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold_)

    @property
    def protocol(self) -> dict:
        return self.detector.protocol_

    @property
    def trained_on(self) -> str:
        d = self.detector
        return d.trained_on_ or " ".join(str(d.protocol_.get(k, "")) for k in ("dataset", "split")).strip()

    def info(self) -> dict:
        """The ``model`` block of ``result.json``."""
        d = self.detector
        method = str(d.protocol_.get("method", ""))
        if not method.split(":", 1)[-1].strip():  # no card, or a card that names only the detector
            method = f"{d.name}: " + ", ".join(f"{k}={v}" for k, v in d.args.items()
                                               if k in ("model", "k", "metric", "center", "clip_length"))
        info = {"name": d.name, "source": self.source, "method": method, "trained_on": self.trained_on,
                "threshold_rule": d.threshold_rule, "backend": d.backend_, "device": self.device,
                "detector_device": d.device_}
        if self._extractor is not None:
            info["feature_backend"] = self._extractor.backend
        return info

    def ready(self, batch_size: int = 4) -> "LoadedModel":
        """Put every network on its runtime (once): the feature network on ``backend`` (``auto``: the fastest that
        passes the parity check here), a feature detector's own networks on the same runtime, a frame detector's on
        ``backend`` when one is named (``auto``: torch)."""
        if not self._ready:
            if self.detector.inputs == "features":
                self.detector.use_backend(self.extractor(batch_size).backend)
            else:
                self.detector.use_backend("torch" if self.backend == "auto" else self.backend)
            self.detector.to_device(self.device)
            self._ready = True
        return self

    def extractor(self, batch_size: int = 4):
        """The snippet extractor matching the training features (built once)."""
        if self._extractor is None:
            from vadkit.features.extract import ExtractionSettings, SnippetExtractor

            trained = self.detector.extraction_ or {}
            settings = ExtractionSettings(**{k: v for k, v in trained.items()
                                             if k in ExtractionSettings.__dataclass_fields__})
            extractor = SnippetExtractor(settings, batch_size=batch_size, backend=self.backend, device=self.device)
            _check_weights(trained, extractor.manifest_settings(), self.source)
            self._extractor = extractor
        return self._extractor


def _check_weights(trained: dict, now: dict, source: str) -> None:
    want, have = trained.get("weights_sha256"), now.get("weights_sha256")
    if want and have and want != have:
        raise ValueError(f"model {source} was trained on features of I3D weights sha256 {want[:12]}…, but the "
                         f"installed weights are {have[:12]}…: the scores would be meaningless")


def list_bundled_models() -> list[str]:
    """Names of the models shipped in ``vadkit/assets/models``."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.pt"))


def resolve_model(name_or_path: str | Path | Detector, backend: str = "auto", device: str = "cpu") -> LoadedModel:
    """Load a detector from a run folder, a model file or a bundled model name (a fitted detector is wrapped);
    ``backend`` is the runtime its networks will run on and ``device`` where (see :meth:`LoadedModel.ready`).

    Raises:
        FileNotFoundError: nothing by that name; the message lists the bundled models.
        vadkit.detectors.ModelFileError: the file is not a vadkit model file (or would execute code).
    """
    if isinstance(name_or_path, Detector):
        return LoadedModel(detector=name_or_path, source=type(name_or_path).__name__, backend=backend, device=device)
    path = Path(name_or_path)
    if path.exists():
        file = path / "model.pt" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"{path} is a folder without model.pt: expected a run folder of `vadkit train` "
                                    f"or `vadkit fit-normal`")
        run_dir = file.parent if (file.parent / "config.yaml").is_file() else None
        return LoadedModel(detector=load_detector(file), source=str((run_dir or file).resolve()), run_dir=run_dir,
                           backend=backend, device=device)
    file = BUNDLED_DIR / f"{name_or_path}.pt"
    if not file.is_file():
        names = list_bundled_models()
        listed = ", ".join(names) if names else "none are installed"
        raise FileNotFoundError(f"model {str(name_or_path)!r} is neither a run folder, a model file nor a bundled "
                                f"model (bundled: {listed})")
    return LoadedModel(detector=load_detector(file), source=str(name_or_path), backend=backend, device=device)


def bundle_model(run_dir: str | Path, destination: str | Path) -> Path:
    """Copy a run folder's model file to ``<destination>.pt`` (e.g. into ``vadkit/assets/models`` to ship it under
    that name). The file is complete on its own; what belongs to the machine the run used is not carried over (its
    cache folder, its thread count): a bundled model caches where its detector's default says and runs on the
    threads torch has. Returns the path written."""
    loaded = resolve_model(run_dir)
    if loaded.run_dir is None:
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml beside model.pt)")
    target = Path(destination).with_suffix(".pt")
    detector = loaded.detector
    machine_specific = [key for key in ("cache_dir", "threads") if detector.args.get(key) is not None]
    if machine_specific:
        detector.args.update({key: None for key in machine_specific})
        detector.save(target)
    else:
        atomic_write_bytes(target, (loaded.run_dir / "model.pt").read_bytes())
    return target
