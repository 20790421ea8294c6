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
:func:`vadkit.features.geometry.snippets_to_frames`. ``center=True`` subtracts the mean training feature first; it is off by
default, the plain 1-NN being the baseline named in advance (a test-split ablation on UCSD Ped2, reported in
docs/results.md and not used to choose, measured micro AUC 0.58 centred against 0.79 uncentred). Banks beyond ``max_bank``
snippets are subsampled (seeded); distances are computed in chunks of ``chunk`` query snippets, so memory stays
``O(chunk * bank)``.

The extraction settings of the training features (``extraction_``, from the training items) fix the snippet
geometry; ``vadkit score`` extracts new videos with the same settings.
"""

from __future__ import annotations

import math
import numpy as np
import torch

from vadkit.detectors.base import Detector, VideoItem, collapse_crops, quantile_threshold, register_detector
from vadkit.features.geometry import snippets_to_frames

METRICS = ("cosine", "euclidean")


def _as_snippets(features: np.ndarray, item_id: str) -> np.ndarray:
    """``(N, F)`` float32, or ``(N, crops, F)`` averaged over crops."""
    features = collapse_crops(np.asarray(features, dtype=np.float32), "mean")  # (N, crops, F) -> (N, F)
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


class KNNScorer(torch.nn.Module):
    """The fitted k-NN scoring as one network (for export): ``(N, F)`` features -> ``(N,)`` distances.

    The bank and the mean are buffers; the arithmetic is :func:`knn_distances` without chunking (a runtime
    processes one video's snippets at once: the distance block is ``(N, bank)``).
    """

    def __init__(self, bank: torch.Tensor, mean: torch.Tensor | None, args: dict) -> None:
        super().__init__()
        self.register_buffer("bank", bank.clone())
        self.register_buffer("mean", mean.clone() if mean is not None else torch.zeros(bank.shape[1]))
        self.center = bool(args["center"] and mean is not None)
        self.metric = args["metric"]
        self.k = min(int(args["k"]), bank.shape[0])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features - self.mean if self.center else features
        if self.metric == "cosine":
            x = torch.nn.functional.normalize(x, dim=1)
            d = 1.0 - x @ self.bank.T  # (N, B)
        else:
            squared = (x * x).sum(1, keepdim=True) - 2.0 * x @ self.bank.T + (self.bank * self.bank).sum(1)[None]
            d = squared.clamp_min(0).sqrt()  # (N, 1) - (N, B) + (1, B) -> (N, B)
        return d.topk(self.k, dim=1, largest=False).values.mean(dim=1).clamp_min(0.0)  # (N, k) -> (N,)


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
        seed: seeds the holdout split and bank subsampling.
    """

    name = "knn"
    scoring_kind = "snippets"
    card_args = ("k", "metric", "center")
    fit_normal_args = {}
    inputs = "features"
    stream_context = 1
    state_types = {"bank": ((torch.Tensor,), True), "mean": ((torch.Tensor, type(None)), True),
                   "calibration": ((dict,), False)}
    threshold_rule = ("calibrated false-alarm quantile: the (1 - false_alarm_rate) quantile of held-out normal "
                      "training snippets' scores against a bank built without them")

    def __init__(self, k: int = 1, metric: str = "cosine", center: bool = False, holdout: float = 0.2,
                 false_alarm_rate: float = 0.01, refit_all: bool = True, max_bank: int = 100_000, chunk: int = 4096,
                 tail: str = "extend", seed: int = 0) -> None:
        super().__init__(k=k, metric=metric, center=center, holdout=holdout, false_alarm_rate=false_alarm_rate,
                         refit_all=refit_all, max_bank=max_bank, chunk=chunk, tail=tail, seed=seed)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1): the threshold is calibrated on held-out normal footage, "
                             f"got {holdout}")
        if not 0.0 < false_alarm_rate < 1.0:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
        if max_bank < 1 or chunk < 1:
            raise ValueError(f"max_bank and chunk must be positive, got {max_bank} and {chunk}")
        if tail not in ("extend", "drop"):
            raise ValueError(f"tail must be 'extend' or 'drop', got {tail!r}")
        self.bank_: torch.Tensor | None = None  # (B, F), normalised as the metric needs
        self.mean_: torch.Tensor | None = None  # (F,) mean normal feature (centring)
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
        if self.bank_ is None:
            self._check_fitted()
        features = _as_snippets(features, "query")
        if self.scorer is not None:  # an exported scorer (use_backend)
            self._prepare(features[:1])  # the dimension check
            return self.scorer(torch.from_numpy(np.ascontiguousarray(features, np.float32))).numpy()
        x = self._prepare(features)
        return knn_distances(x, self.bank_, self.args["k"], self.args["metric"], self.args["chunk"]).numpy()

    # -- runtimes -------------------------------------------------------------------------------------------------
    scorer = None  # set by use_backend: the exported KNNScorer

    def networks(self) -> dict:
        from vadkit.features.backends import ExportSpec

        example = torch.zeros(2, self.bank_.shape[1])  # (N, F) query snippets
        return {"scorer": ExportSpec(KNNScorer(self.bank_, self.mean_, self.args), (example,), ["features"],
                                     ["distances"], {"features": {0: "snippets"}})}

    # -- fitting -------------------------------------------------------------------------------------------------
    def _split(self, per_video: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(bank features, held-out features)`` by video, or by the tail of a single video's snippets."""
        share = self.args["holdout"]
        if len(per_video) >= 2:
            n_out = min(len(per_video) - 1, max(1, round(share * len(per_video))))
            order = rng.permutation(len(per_video))
            held, kept = order[:n_out], order[n_out:]
            return (np.concatenate([per_video[i] for i in kept]), np.concatenate([per_video[i] for i in held]))
        only = per_video[0]
        n_out = int(math.floor(share * only.shape[0]))
        if n_out < 1 or n_out >= only.shape[0]:
            raise ValueError(f"one training video of {only.shape[0]} snippets cannot be split for calibration "
                             f"(holdout {share}); give more footage (or more videos)")
        return only[:-n_out], only[-n_out:]

    def _fit(self, train: list[VideoItem], progress: bool) -> None:
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
        held_scores = self.snippet_scores(held)
        self.threshold_ = quantile_threshold(held_scores, 1.0 - a["false_alarm_rate"], "held-out snippet scores")
        if a["refit_all"]:
            self.bank_ = self._bank(everything, rng)
        self.calibration_ = {
            "held_out_scores": held_scores.astype(np.float32).tolist(),
            "held_out_snippets": int(held.shape[0]),
            "bank_snippets": int(self.bank_.shape[0]),
            "normal_videos": len(normal),
            "skipped_abnormal_videos": len(train) - len(normal),
            "achieved_far": float((held_scores > self.threshold_).mean()),
        }

    def calibration_report(self) -> dict:
        c = self.calibration_
        return {**c, "held_out": c.get("held_out_snippets"), "held_out_unit": "snippets",
                "fitted_on": f"{c.get('bank_snippets')} bank snippets"}

    # -- scoring -------------------------------------------------------------------------------------------------
    def _score(self, item: VideoItem) -> np.ndarray:
        scores = self.snippet_scores(_as_snippets(item.features(), item.id))
        g = self.geometry
        return snippets_to_frames(scores, item.num_frames, g.snippet_len, g.stride, tail=self.args["tail"])

    # -- persistence ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"bank": self.bank_, "mean": self.mean_, "calibration": self.calibration_}

    def load_state(self, state: dict) -> None:
        self.bank_ = state["bank"]
        self.mean_ = state["mean"]
        self.calibration_ = dict(state.get("calibration", {}))
