"""One-class detection on snippet features: k-nearest-neighbour distance to a memory bank of normal snippets.

The detector needs no abnormal example. ``fit`` gathers the snippet features of the normal training videos (videos
labelled abnormal are left out), and

1. **calibrates**: a seeded share ``holdout`` of the normal *videos* (at least one when there are two or more; with
   a single video, the last ``holdout`` share of its snippets) is held out; the bank is built from the rest and the
   held-out snippets are scored against it. The threshold is the ``1 - false_alarm_rate`` quantile of those
   held-out scores, so about that share of unseen normal snippets lands above it.
2. **refits** (``refit_all=True``, the default): the bank is rebuilt from *all* normal snippets. Scores against the
   larger bank can only shrink, so the calibrated threshold stays valid and is, if anything, conservative (the
   false-alarm rate on new normal footage is at most the requested one, up to sampling noise).

The score of a snippet is the mean distance to its ``k`` nearest bank entries (``cosine``: ``1 - cos``;
``euclidean``: L2), higher = more abnormal; snippet scores are spread over the frames with
:func:`vadkit.scoring.snippets_to_frames`. ``center=True`` subtracts the mean training feature first; it is off by
default, the plain 1-NN being the baseline named in advance (a test-split ablation on UCSD Ped2, reported in
docs/results.md and not used to choose, measured micro AUC 0.58 centred against 0.79 uncentred). Banks beyond ``max_bank``
snippets are subsampled (seeded); distances are computed in chunks of ``chunk`` query snippets, so memory stays
``O(chunk * bank)``.

``extraction`` records the :class:`~vadkit.features.extract.ExtractionSettings` (as a dict) the training
features were made with; ``vadkit score`` extracts new videos with the same settings. ``None`` means vadkit's
defaults (what ``vadkit extract`` and ``features/ped2`` use).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from vadkit.engine.detectors import Detector, VideoItem, register_detector
from vadkit.scoring import snippets_to_frames

METRICS = ("cosine", "euclidean")


def _as_snippets(features: np.ndarray, item_id: str) -> np.ndarray:
    """``(N, F)`` float32, or ``(N, crops, F)`` averaged over crops."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim == 3:
        features = features.mean(axis=1)  # (N, crops, F) -> (N, F)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"video {item_id}: expected snippet features (N, F) with N >= 1, got shape {features.shape}")
    return features


def knn_distances(queries: torch.Tensor, bank: torch.Tensor, k: int, metric: str, chunk: int = 4096) -> torch.Tensor:
    """Mean distance of each query to its ``k`` nearest bank rows.

    Args:
        queries: ``(Q, F)``; for ``cosine`` both inputs must already be L2-normalised.
        bank: ``(B, F)`` with ``B >= 1``.
        k: neighbours (clipped to ``B``).
        metric: ``cosine`` (``1 - q·b``) or ``euclidean``.
        chunk: queries per block; the block's distance matrix is ``(chunk, B)``.

    Returns:
        ``(Q,)`` float32 distances.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    k = min(k, bank.shape[0])
    out = []
    for start in range(0, queries.shape[0], chunk):
        q = queries[start:start + chunk]  # (c, F)
        if metric == "cosine":
            d = 1.0 - q @ bank.T  # (c, B)
        else:
            d = torch.cdist(q[None], bank[None])[0]  # (1, c, F), (1, B, F) -> (c, B)
        out.append(d.topk(k, dim=1, largest=False).values.mean(dim=1))  # (c, k) -> (c,)
    return torch.cat(out).clamp_min(0.0) if out else torch.zeros(0)


@register_detector("knn")
class KNNDetector(Detector):
    """k-NN distance of I3D snippet features to normal training snippets, with a threshold calibrated on held-out
    normal footage.

    Args:
        k: neighbours averaged (1 = nearest neighbour).
        metric: ``cosine`` (default; on L2-normalised features) or ``euclidean``.
        center: subtract the mean normal training feature before the metric.
        holdout: share of the normal training videos (or, with one video, of its snippets) used for calibration.
        false_alarm_rate: the share of held-out normal snippets allowed above the threshold.
        refit_all: after calibration, rebuild the bank from all normal snippets (see the module docstring).
        max_bank: most snippets kept in the bank (seeded random subsample beyond it).
        chunk: query snippets per distance block.
        tail: frames after the last full snippet: ``extend`` or ``drop``.
        snippet_len, stride: the snippet layout of the features (from ``extraction`` when it is given).
        extraction: the extraction settings of the training features (dict) or ``None`` (vadkit's defaults).
        trained_on: a one-line description of the training footage (shown in reports).
        seed: seeds the holdout split and bank subsampling.
    """

    name = "knn"
    needs = "features"

    def __init__(self, k: int = 1, metric: str = "cosine", center: bool = False, holdout: float = 0.2,
                 false_alarm_rate: float = 0.01, refit_all: bool = True, max_bank: int = 100_000, chunk: int = 4096,
                 tail: str = "extend", snippet_len: int = 16, stride: int = 16,
                 extraction: dict[str, Any] | None = None, trained_on: str = "", seed: int = 0) -> None:
        if extraction:
            snippet_len = int(extraction.get("snippet_len", snippet_len))
            stride = int(extraction.get("stride", stride))
        super().__init__(k=k, metric=metric, center=center, holdout=holdout, false_alarm_rate=false_alarm_rate,
                         refit_all=refit_all, max_bank=max_bank, chunk=chunk, tail=tail, snippet_len=snippet_len,
                         stride=stride, extraction=dict(extraction) if extraction else None, trained_on=trained_on,
                         seed=seed)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if not 0.0 <= holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {holdout}")
        if not 0.0 < false_alarm_rate < 1.0:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
        if max_bank < 1 or chunk < 1:
            raise ValueError(f"max_bank and chunk must be positive, got {max_bank} and {chunk}")
        if tail not in ("extend", "drop"):
            raise ValueError(f"tail must be 'extend' or 'drop', got {tail!r}")
        self.frames_per_snippet = snippet_len
        self.bank_: torch.Tensor | None = None  # (B, F), normalised as the metric needs
        self.mean_: torch.Tensor | None = None  # (F,) mean normal feature (centring)
        self.threshold_: float | None = None
        self.calibration_: dict = {}

    # -- features -----------------------------------------------------------------------------------------------
    def _prepare(self, features: np.ndarray) -> torch.Tensor:
        """``(N, F)`` → the space distances are measured in (centred, L2-normalised for cosine)."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        fitted = self.bank_ if self.bank_ is not None else (self.mean_[None] if self.mean_ is not None else None)
        if fitted is not None and x.shape[1] != fitted.shape[1]:
            raise ValueError(f"features have {x.shape[1]} dimensions, the detector was fitted on {fitted.shape[1]}")
        if self.args["center"] and self.mean_ is not None:
            x = x - self.mean_
        if self.args["metric"] == "cosine":
            x = torch.nn.functional.normalize(x, dim=1)
        return x

    def _bank(self, features: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        if features.shape[0] > self.args["max_bank"]:
            keep = np.sort(rng.choice(features.shape[0], size=self.args["max_bank"], replace=False))
            features = features[keep]
        return self._prepare(features)

    def snippet_scores(self, features: np.ndarray) -> np.ndarray:
        """``(N, F)`` snippet features → ``(N,)`` k-NN distances."""
        self._check_fitted()
        x = self._prepare(_as_snippets(features, "query"))
        return knn_distances(x, self.bank_, self.args["k"], self.args["metric"], self.args["chunk"]).numpy()

    # -- fitting -------------------------------------------------------------------------------------------------
    def _split(self, per_video: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(bank features, held-out features)`` by video, or by the tail of a single video's snippets."""
        share = self.args["holdout"]
        if share == 0:
            return np.concatenate(per_video), np.zeros((0, per_video[0].shape[1]), np.float32)
        if len(per_video) >= 2:
            n_out = min(len(per_video) - 1, max(1, round(share * len(per_video))))
            order = rng.permutation(len(per_video))
            held, kept = order[:n_out], order[n_out:]
            return (np.concatenate([per_video[i] for i in kept]), np.concatenate([per_video[i] for i in held]))
        only = per_video[0]
        n_out = int(math.floor(share * only.shape[0]))
        if n_out < 1 or n_out >= only.shape[0]:
            raise ValueError(f"one training video of {only.shape[0]} snippets cannot be split for calibration "
                             f"(holdout {share}); give more footage or set holdout: 0 and a threshold by hand")
        return only[:-n_out], only[-n_out:]

    def fit(self, train: list[VideoItem], progress: bool = True) -> "KNNDetector":
        a = self.args
        rng = np.random.default_rng(a["seed"])
        normal = [v for v in train if v.label != 1]
        if not normal:
            raise ValueError(f"the k-NN detector learns from normal videos; all {len(train)} training videos are "
                             f"labelled abnormal")
        per_video = [_as_snippets(v.features(), v.id) for v in normal]
        dims = {f.shape[1] for f in per_video}
        if len(dims) != 1:
            raise ValueError(f"training videos have features of different sizes: {sorted(dims)}")
        everything = np.concatenate(per_video)  # (N, F)
        self.bank_, self.mean_, self.threshold_ = None, None, None  # a refit starts from nothing
        self.mean_ = torch.from_numpy(everything.mean(axis=0)) if a["center"] else None
        bank, held = self._split(per_video, rng)
        self.bank_ = self._bank(bank, rng)
        self.fitted_ = True
        if held.shape[0]:
            held_scores = self.snippet_scores(held)
            self.threshold_ = float(np.quantile(held_scores, 1.0 - a["false_alarm_rate"]))
        else:
            held_scores = np.zeros(0, np.float32)
            self.threshold_ = None
        if a["refit_all"] and held.shape[0]:
            self.bank_ = self._bank(everything, rng)
        self.calibration_ = {
            "held_out_scores": held_scores.astype(np.float32).tolist(),
            "held_out_snippets": int(held.shape[0]),
            "bank_snippets": int(self.bank_.shape[0]),
            "normal_videos": len(normal),
            "skipped_abnormal_videos": len(train) - len(normal),
            "achieved_far": float((held_scores > self.threshold_).mean()) if held.shape[0] else None,
        }
        return self

    # -- scoring -------------------------------------------------------------------------------------------------
    def score(self, item: VideoItem) -> np.ndarray:
        self._check_fitted()
        scores = self.snippet_scores(_as_snippets(item.features(), item.id))
        return snippets_to_frames(scores, item.num_frames, self.args["snippet_len"], self.args["stride"],
                                  tail=self.args["tail"])

    # -- persistence ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"bank": self.bank_, "mean": self.mean_, "threshold": self.threshold_, "calibration": self.calibration_}

    def load_state(self, state: dict) -> None:
        self.bank_ = state["bank"]
        self.mean_ = state["mean"]
        self.threshold_ = state["threshold"]
        self.calibration_ = dict(state.get("calibration", {}))


# ---------------------------------------------------------------------------------------------------------------
# fit-normal: a user's own normal footage → a run folder
# ---------------------------------------------------------------------------------------------------------------
def fit_normal(inputs, out_dir, *, k: int = 1, false_alarm_rate: float = 0.01, metric: str = "cosine",
               center: bool = False, holdout: float = 0.2, seed: int = 0, settings=None,
               features_dir=None, batch_size: int = 4, progress: bool = True, dataset: str = "user footage"):
    """Fit a :class:`KNNDetector` on normal videos and write a run folder that ``vadkit score --model`` reads.

    Args:
        inputs: video files, frame folders or folders of them (see :func:`vadkit.inference.find_videos`).
        out_dir: the run folder (created).
        k, false_alarm_rate, metric, center, holdout, seed: the detector's arguments.
        settings: :class:`~vadkit.features.extract.ExtractionSettings` (default: vadkit's defaults).
        features_dir: the feature store to extract into (default ``<out_dir>/features``); videos already in it
            are not extracted again.

    Returns:
        the :class:`~vadkit.engine.run.RunDir`. It holds ``config.yaml``, ``model.pt``, ``protocol.json``,
        ``split.json`` (the videos), ``calibration.json`` and ``calibration.png``.
    """
    from pathlib import Path

    from vadkit.engine.config import DataConfig, RunConfig
    from vadkit.engine.run import RunDir
    from vadkit.engine.train import protocol_card
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore
    from vadkit.inference import find_videos, unique_names
    from vadkit.report.plots import plot_calibration

    # the arguments are checked before minutes of feature extraction
    KNNDetector(k=k, metric=metric, center=center, holdout=holdout, false_alarm_rate=false_alarm_rate, seed=seed)
    videos = [p.resolve() for p in find_videos(inputs)]
    names = unique_names(videos)
    run = RunDir(out_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    store_root = Path(features_dir) if features_dir else run.path / "features"
    if (store_root / "manifest.json").is_file():  # a reused store: a name must mean the same video
        known = FeatureStore(store_root).videos
        clash = [f"{n} (store: {known[n].get('source')}, now: {p})" for n, p in zip(names, videos)
                 if n in known and known[n].get("source") not in (None, str(p))]
        if clash:
            raise ValueError(f"the feature store {store_root} holds other videos under the same names: "
                             f"{'; '.join(clash[:3])}; use another --features folder")
    extractor = SnippetExtractor(settings or ExtractionSettings(), batch_size=batch_size)
    extract_videos(list(zip(names, videos)), store_root, extractor, progress=progress)
    store = FeatureStore(store_root)
    frames = sum(store.videos[n]["num_frames"] for n in names)
    shown = ", ".join(names[:5]) + (f" … ({len(names)} videos)" if len(names) > 5 else "")
    trained_on = f"{len(names)} normal video{'s' if len(names) != 1 else ''}, {frames} frames: {shown}"
    items = [VideoItem(id=n, num_frames=store.videos[n]["num_frames"], label=0, path=p, fps=store.videos[n]["fps"],
                       load_features=(lambda n=n: store.load(n))) for n, p in zip(names, videos)]
    detector = KNNDetector(k=k, metric=metric, center=center, holdout=holdout, false_alarm_rate=false_alarm_rate,
                           extraction=store.settings, trained_on=trained_on, seed=seed)
    detector.fit(items, progress=progress)
    detector.save(run.path / "model.pt")
    config = RunConfig(detector="knn", detector_args=dict(detector.args),
                       data=DataConfig(dataset="folder", root=str(_common_root(videos)), features=str(store_root),
                                       split="fit-normal"), seed=seed, output=str(run.path.parent), name=run.path.name)
    run.write_config(config.to_dict())
    run.write_json("split.json", {"kind": "fit-normal", "rule": "every given video is normal training footage",
                                  "train": names, "paths": {n: str(Path(p).resolve()) for n, p in zip(names, videos)},
                                  "test": []})
    split = {"kind": f"one-class, fit-normal ({len(names)} normal videos; holdout {holdout} for calibration)"}
    card = protocol_card(config, detector, split, store).replace(
        dataset=dataset, method=f"knn: k={k}, {metric}{', centred' if center else ''}",
        model_selection="none (fixed k); threshold = the (1 - FAR) quantile of held-out normal snippet scores",
        notes=[f"threshold {detector.threshold_} for a requested false-alarm rate of {false_alarm_rate}"])
    run.write_json("protocol.json", card.to_dict())
    calibration = {k_: v for k_, v in detector.calibration_.items() if k_ != "held_out_scores"}
    run.write_json("calibration.json", {**calibration, "threshold": detector.threshold_,
                                        "false_alarm_rate": false_alarm_rate})
    if detector.threshold_ is not None:
        plot_calibration(detector.calibration_["held_out_scores"], detector.threshold_, false_alarm_rate,
                         run.path / "calibration.png", title=f"k-NN calibration: {trained_on}"[:120])
    return run


def _common_root(paths):
    import os
    from pathlib import Path

    resolved = [str(Path(p).resolve().parent) for p in paths]
    return Path(os.path.commonpath(resolved)) if resolved else Path(".")
