"""Training and scoring of STATE (docs/seed-systems.md §5.5-§5.8) on object cubes: one-class reconstruction.

Pipeline of one video (all steps cached under ``cache_dir``, so a video is cut once):

1. **boxes** per frame from a box source shared with the objects detector (:mod:`vadkit.features.boxes.sources`):
   ``vec`` reads precomputed VEC boxes (appearance + motion, e.g.
   ``/work/shared/data/ucsd_ped2_boxes/ped2_{train,test}_boxes.npz``); ``motion`` computes VEC's motion boxes only
   (:func:`~vadkit.features.boxes.video.extract_boxes` without a detector); ``background`` what differs from the
   video's median frame (in `vadkit watch`: a running median of the stream's recent frames); ``hog`` and ``yolox``
   a person detector's boxes plus motion boxes;
2. **flow**: OpenCV dense flow (:func:`~vadkit.features.flow.flow_for_video`);
3. **cubes**: per box, 7 frames of 32x32 RGB patches and the matching flow (:class:`~vadkit.features.cubes.CubeStore`).

How ``vec`` boxes find their video. A VEC box file holds the boxes of one split's frames in *sorted video order*,
all videos concatenated. The detector reads the split from the item's id (``<split>/<video>``, as the engine names
records: ``train/Train001``), opens ``boxes_dir / box_file.format(split=split)``, lists the sibling videos of the
item's path (the sorted entries of ``item.path.parent`` that are frame folders or video files of the same kind),
counts their frames, checks that the counts add up to the box file's frame count and cuts the list with
:func:`~vadkit.features.boxes.files.split_by_video`. Videos outside such a layout (an id without a split, no box file
for the split, e.g. new videos given to ``vadkit score``) fall back to motion boxes, with a warning: precomputed
boxes exist only for the benchmark's own videos.

Training (§5.6) reads the cubes of the training videos whose motion exceeds ``min_motion`` (STATE: 0, i.e. static
cubes are dropped), optionally a seeded random subsample of ``max_cubes`` of them, and minimises
``raw_weight * MSE(x, x̂) + flow_weight * MSE(flow, floŵ)`` with Adam (lr 1e-3, eps 1e-7) for ``epochs`` epochs or
until ``max_minutes`` of wall clock (a fixed rule; the last weights are kept). Then, in eval mode, the perturbed
errors (below) of ``stats_cubes`` training cubes give the z-score statistics ``(μ_raw, σ_raw, μ_flow, σ_flow)`` and
the lowest object score seen in training.

Scoring (§5.7): every cube of the video (no motion filter) is perturbed one signed-gradient step of size ``eps``
that lowers its error, errors are measured again, z-normalised with the training statistics and combined as
``w_raw * z_raw + w_flow * z_flow``. A frame's score is the max over its cubes; a frame without objects gets the
lowest object score seen on the training cubes (causal: no test statistics; STATE used -1e5, which only ranks such
frames last, as this does).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from vadkit.detectors.base import (VideoItem, number_arg, progress_bar, quantile_threshold, register_detector,
                                   torch_threads)
from vadkit.detectors.loop import TrainableDetector
from vadkit.device import seeded
from vadkit.features.boxes.core import box_thresholds
from vadkit.features.boxes.sources import BoxSource, box_cache_root, make_box_source
from vadkit.features.cubes import CubeDataset, CubeStore
from vadkit.features.flow import FlowSettings, flow_for_video
from vadkit.io.files import content_stamp, safe_name
from vadkit.models import get_model
from vadkit.models.recon.state import perturbed_errors, state_loss

BOX_SOURCES = ("vec", "motion", "background", "hog", "yolox")  # those of features.boxes.sources needing no more args
MODELS = ("state", "state_cpu")


def _digest(record) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


def frame_scores(frames: np.ndarray, cube_scores: np.ndarray, num_frames: int, empty: float) -> np.ndarray:
    """Frame score = max over the frame's cubes; frames without cubes get ``empty``.

    Args:
        frames: ``(n,)`` frame index of each cube.
        cube_scores: ``(n,)`` object scores.
        num_frames: frames of the video.
        empty: the score of a frame without objects.

    Returns:
        ``(num_frames,)`` float64.
    """
    frames = np.asarray(frames, np.int64)
    if frames.shape != np.shape(cube_scores):
        raise ValueError(f"got {frames.shape[0]} cube frame indices but {np.shape(cube_scores)} cube scores")
    if frames.size and (frames.min() < 0 or frames.max() >= num_frames):
        raise ValueError(f"cube frame indices {frames.min()}..{frames.max()} outside the video's {num_frames} frames")
    scores = np.full(num_frames, -np.inf)
    np.maximum.at(scores, frames, np.asarray(cube_scores, np.float64))
    scores[np.isneginf(scores)] = empty
    return scores


# ---------------------------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------------------------
@register_detector("state")
class STATEDetector(TrainableDetector):
    """STATE trained on the object cubes of normal videos; frame score = max object score (higher = more abnormal).

    Args:
        model: ``state_cpu`` (narrow, CPU) or ``state`` (the paper's size).
        model_args: keyword overrides of the model (e.g. ``{hidden: [8, 16, 32], layers: 1}``).
        boxes: ``vec`` (precomputed VEC boxes from ``boxes_dir``), ``motion`` (motion boxes only), ``background``
            (differences from the video's median frame) or ``hog`` / ``yolox`` (a person detector plus motion boxes).
        boxes_dir: folder of the VEC box files (``vec``).
        box_file: name of a split's box file in ``boxes_dir``; ``{split}`` is the split of the item id.
        thresholds: box thresholds (dataset name, e.g. ``ped2``) for motion boxes.
        flow_method, flow_preset: OpenCV flow (:class:`~vadkit.features.flow.FlowSettings`).
        cache_dir: flow, box and cube caches (default ``~/.cache/vadkit/state``).
        epochs: passes over the (subsampled) training cubes (paper 20).
        max_minutes: wall-clock budget of the optimisation loop; ``None``: no budget.
        max_cubes: a seeded random subsample of the training cubes (``None``: all).
        min_motion: training keeps cubes whose mean Σ flow² exceeds this (STATE: 0).
        batch_size: cubes per step (paper 128).
        lr, adam_eps: Adam's learning rate and epsilon (paper 1e-3, 1e-7).
        raw_weight, flow_weight: ``λ_r``, ``λ_o`` of the loss and of the perturbation objective (paper 1, 1).
        eps: perturbation step ``ε`` (STATE's default 0.01; Avenue 0.002, ShanghaiTech 0.005); 0 = no perturbation.
        w_raw, w_flow: weights ``w_r``, ``w_o`` of the z-scored errors in the object score.
        stats_cubes: training cubes (seeded subsample) measured for the z-score statistics.
        score_batch: cubes per scoring pass.
        seed: seeds the weights, the cube subsample and the order.
        threads: torch CPU threads during fit and score (``None``: leave it; 1 is fastest on a busy 2-core machine).
        log_every: steps per row of the loss history.
    """

    name = "state"
    scoring_kind = "objects"
    inputs = "frames"
    state_types = {"model": ((dict,), True), "stats": ((dict,), True), "schedule": ((dict,), False)}
    threshold_rule = ("the 0.99 quantile of the perturbed object scores of the stats_cubes training cubes measured "
                      "after training")
    THRESHOLD_QUANTILE = 0.99

    def __init__(self, model: str = "state_cpu", model_args: dict | None = None, boxes: str = "vec",
                 boxes_dir: str | None = None, box_file: str = "ped2_{split}_boxes.npz", thresholds: str = "ped2",
                 flow_method: str = "dis", flow_preset: str = "medium", cache_dir: str | None = None,
                 epochs: int = 20, max_minutes: float | None = None, max_cubes: int | None = None,
                 min_motion: float = 0.0, batch_size: int = 64, lr: float = 1e-3, adam_eps: float = 1e-7,
                 raw_weight: float = 1.0, flow_weight: float = 1.0, eps: float = 0.01, w_raw: float = 1.0,
                 w_flow: float = 1.0, stats_cubes: int = 2000, score_batch: int = 64, seed: int = 0,
                 threads: int | None = 1, log_every: int = 10) -> None:
        numbers = {k: number_arg(v, k) for k, v in dict(lr=lr, adam_eps=adam_eps, raw_weight=raw_weight,
                                                     flow_weight=flow_weight, eps=eps, w_raw=w_raw, w_flow=w_flow,
                                                     min_motion=min_motion).items()}
        max_minutes = None if max_minutes is None else number_arg(max_minutes, "max_minutes")
        super().__init__(model=model, model_args=dict(model_args or {}), boxes=boxes, boxes_dir=boxes_dir,
                         box_file=box_file, thresholds=thresholds, flow_method=flow_method, flow_preset=flow_preset,
                         cache_dir=cache_dir, epochs=epochs, max_minutes=max_minutes, max_cubes=max_cubes,
                         batch_size=batch_size, stats_cubes=stats_cubes, score_batch=score_batch, seed=seed,
                         threads=threads, log_every=log_every, **numbers)
        self._check_args()
        self.flow_settings = FlowSettings(method=flow_method, preset=flow_preset)
        with seeded(seed):  # initial weights from the detector's own seed; the process's generator is left alone
            self.model = get_model(model, **self.args["model_args"])
        self.stats_: dict[str, float] = {}  # mu_raw, sd_raw, mu_flow, sd_flow, empty
        self.schedule_: dict = {}
        self._box_source = make_box_source(boxes, thresholds=thresholds, boxes_dir=boxes_dir, box_file=box_file,
                                           threads=threads)
        self._stores: dict[Path, CubeStore] = {}
        self._progress = True
        self._seen = 0  # training cubes drawn so far (the schedule record)

    def _check_args(self) -> None:
        a = self.args
        if a["model"] not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {a['model']!r}")
        if a["boxes"] not in BOX_SOURCES:
            raise ValueError(f"boxes must be one of {BOX_SOURCES}, got {a['boxes']!r}")
        box_thresholds(a["thresholds"])  # raises for an unknown dataset name
        for key in ("batch_size", "stats_cubes", "score_batch", "log_every"):
            if a[key] < 1:
                raise ValueError(f"{key} must be >= 1, got {a[key]}")
        if a["epochs"] < 0:
            raise ValueError(f"epochs must be >= 0, got {a['epochs']}")
        if a["max_cubes"] is not None and a["max_cubes"] < 1:
            raise ValueError(f"max_cubes must be >= 1 or None, got {a['max_cubes']}")
        if a["max_minutes"] is not None and a["max_minutes"] <= 0:
            raise ValueError(f"max_minutes must be positive or None, got {a['max_minutes']}")
        if a["eps"] < 0:
            raise ValueError(f"eps must be >= 0, got {a['eps']}")

    # -- caches ---------------------------------------------------------------------------------------------------
    @property
    def cache_root(self) -> Path:
        return box_cache_root(self.args["cache_dir"], "state")

    def _store(self, source: BoxSource) -> CubeStore:
        """The cube store of one box source; its folder name hashes what the cubes depend on."""
        a = self.args
        record = dict(boxes=source.kind, thresholds=asdict(box_thresholds(a["thresholds"])),
                      flow=asdict(self.flow_settings))
        if source.kind == "vec":
            record["box_files"] = str(Path(os.path.expanduser(a["boxes_dir"])).resolve() / a["box_file"])
        elif source.kind != "motion":  # (vec and motion stores keep their key)
            record["source"] = [source.identity, source.cache_options()]
        root = self.cache_root / f"cubes-{source.kind}-{_digest(record)}"
        if root not in self._stores:  # one instance per folder: its manifest stays current as videos are added
            self._stores[root] = CubeStore(root)
        return self._stores[root]

    @contextmanager
    def caches_in(self, folder: str | Path):
        """As :meth:`Detector.caches_in`; the cube stores opened under ``folder`` are forgotten after the block."""
        try:
            with super().caches_in(folder):
                yield self
        finally:
            root = Path(os.path.expanduser(str(folder)))
            for store in [r for r in self._stores if root == r or root in r.parents]:
                del self._stores[store]

    @staticmethod
    def _video_key(item: VideoItem) -> str:
        """A cube-store key: the item id and a hash of its resolved path, content stamp and length (ids need not be
        unique, and a path may be rewritten with another video)."""
        record = [str(Path(item.path).resolve()), item.num_frames, content_stamp(item.path)]
        return f"{safe_name(item.id)}-{_digest(record)[:8]}"

    # -- boxes ----------------------------------------------------------------------------------------------------
    def vec_boxes(self, item: VideoItem) -> list[np.ndarray] | None:
        """The VEC boxes of an item's frames, or ``None`` when it is not a video of a split with a box file."""
        files = getattr(self._box_source, "files", None)  # (boxes: vec)
        return None if files is None else files.boxes_for(item.id, item.path, item.num_frames)

    def _cubes(self, item: VideoItem) -> tuple[CubeStore, str]:
        """Cut (or find cached) the cubes of one video; returns its store and key. The box source that serves the
        video (VEC boxes when configured and known for it, else motion boxes, with one warning) names the store;
        boxes are computed only for a video not in it yet."""
        from vadkit.io import open_video_frames

        if item.path is None:
            raise ValueError(f"video {item.id}: no path (STATE reads frames from a video file or frame folder)")
        source = self._box_source.for_video(item.id, item.path, item.num_frames)
        store, key = self._store(source), self._video_key(item)
        if key in store:
            return store, key
        with open_video_frames(item.path, item.num_frames, item.id) as video:
            boxes = source.boxes(video, self.cache_root, self._stream)
            flow = flow_for_video(video, self.cache_root / "flow", self.flow_settings)
            store.add_video(key, video, boxes, flow)
        return store, key

    # -- the training loop's hooks ------------------------------------------------------------------------------
    def _prepare(self, train: list[VideoItem], rng: np.random.Generator) -> tuple[list, np.ndarray]:
        """Cut (or find cached) the training cubes; ``(pool, chosen)``: ``(dataset, row)`` of every training cube with
        motion, and the (subsampled) rows trained on."""
        a = self.args
        stores: dict[Path, tuple[CubeStore, list[str]]] = {}
        with progress_bar("cutting training cubes", self._progress) as bar:
            task = bar.add_task("cubes", total=len(train), info="")
            for item in train:
                store, key = self._cubes(item)
                stores.setdefault(store.root, (store, []))[1].append(key)
                bar.advance(task)
        datasets = [CubeDataset(store, keys, min_motion=a["min_motion"]) for store, keys in stores.values()]
        pool = [(d, i) for d in datasets for i in range(len(d))]  # (dataset, row) of every training cube
        if not pool:
            raise ValueError(f"the training videos gave no cube with motion > {a['min_motion']}")
        chosen = np.arange(len(pool))
        if a["max_cubes"] is not None and a["max_cubes"] < len(pool):
            chosen = np.sort(rng.choice(len(pool), a["max_cubes"], replace=False))
        return pool, chosen

    def _fit(self, train: list[VideoItem], progress: bool) -> None:
        self._progress = progress
        super()._fit(train, progress)

    def _steps_per_epoch(self, data) -> int:
        return math.ceil(len(data[1]) / self.args["batch_size"])

    def _planned_steps(self, data) -> int:
        return self._steps_per_epoch(data) * self.args["epochs"]

    def _batches(self, data, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        pool, chosen = data
        a = self.args
        self._seen = 0
        for _ in range(a["epochs"]):
            order = chosen[rng.permutation(len(chosen))]
            for first in range(0, len(order), a["batch_size"]):
                raw, flow = self._batch(pool, order[first:first + a["batch_size"]])
                self._seen += len(raw)
                yield raw, flow

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        raw, flow = batch
        a = self.args
        return state_loss(self.model(raw), raw, flow, a["raw_weight"], a["flow_weight"])

    def _optimiser(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.args["lr"], eps=self.args["adam_eps"])

    def _schedule_extra(self) -> dict:
        return {"cubes": self._seen}

    def _calibrate(self, data, rng: np.random.Generator) -> None:
        """In eval mode: the perturbed errors of ``stats_cubes`` training cubes give the z-score statistics, the
        score of frames without objects (the lowest object score seen) and the threshold."""
        pool, chosen = data
        a = self.args
        self.model.eval()
        measured = chosen[np.sort(rng.permutation(len(chosen))[:a["stats_cubes"]])]
        e_raw, e_flow = self._errors(pool, measured)
        self.stats_ = {"mu_raw": float(e_raw.mean()), "sd_raw": float(e_raw.std()),
                       "mu_flow": float(e_flow.mean()), "sd_flow": float(e_flow.std()),
                       "training_cubes": int(len(pool)), "used_cubes": int(len(chosen)),
                       "stats_cubes": int(len(measured))}
        for name in ("sd_raw", "sd_flow"):
            if not self.stats_[name] > 0:
                raise ValueError(f"the training errors have {name} = {self.stats_[name]}; measure more cubes "
                                 f"(stats_cubes) to z-score with")
        training_scores = self._combine(e_raw, e_flow)
        self.stats_["empty"] = float(training_scores.min())
        self.threshold_ = quantile_threshold(training_scores, self.THRESHOLD_QUANTILE, "training cube scores")

    def _batch(self, pool: list, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Cubes ``indices`` of the pool: raw ``(B, 21, 32, 32)`` in [0, 1], flow ``(B, 7, 2, 32, 32)``."""
        parts, where = [], []
        for dataset in dict.fromkeys(pool[i][0] for i in indices):  # each dataset once, in first-seen order
            positions = [k for k, i in enumerate(indices) if pool[i][0] is dataset]
            parts.append(dataset.batch([pool[indices[k]][1] for k in positions]))
            where.extend(positions)
        raw = torch.cat([p[0] for p in parts])  # (B, 21, 32, 32)
        flow = torch.cat([p[1] for p in parts])  # (B, 7, 2, 32, 32)
        order = torch.from_numpy(np.argsort(np.asarray(where)))
        return raw[order], flow[order]

    # -- runtimes -------------------------------------------------------------------------------------------------
    def networks(self) -> dict:
        from vadkit.features.backends import ExportSpec
        from vadkit.models.recon.state import StateOutput

        model = self.torch_network("model")
        example = torch.zeros(2, 21, 32, 32)  # (B, l*3, 32, 32) raw cubes, as the cube store gives them
        return {"model": ExportSpec(model, (example,), ["cubes"], ["raw", "flow"], {"cubes": {0: "cubes"}},
                                    wrap=lambda outs: StateOutput(*outs))}

    def backend_note(self, backend: str) -> str | None:
        if backend not in ("torch", "auto") and self.args["eps"]:
            return (f"STATE's perturbed scoring (eps={self.args['eps']}) takes a gradient with respect to the input, "
                    f"which inference runtimes do not compute: it scores with torch (the exported network serves "
                    f"eps=0 scoring and deployment)")
        return None

    # -- scoring --------------------------------------------------------------------------------------------------
    def _errors(self, pool: list, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Perturbed errors ``(E_raw, E_flow)``, each ``(n,)`` float64, of the pool's cubes ``indices``."""
        a = self.args
        raws, flows = [], []
        for first in range(0, len(indices), a["score_batch"]):
            raw, flow = self._batch(pool, indices[first:first + a["score_batch"]])
            e_raw, e_flow = perturbed_errors(self.model, self.tensor(raw), self.tensor(flow), a["eps"],
                                             a["raw_weight"], a["flow_weight"])
            raws.append(e_raw.double().cpu().numpy())
            flows.append(e_flow.double().cpu().numpy())
        if not raws:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(raws), np.concatenate(flows)

    def _combine(self, e_raw: np.ndarray, e_flow: np.ndarray) -> np.ndarray:
        """Object scores ``w_r * (E_raw - μ_raw) / σ_raw + w_o * (E_flow - μ_flow) / σ_flow``, ``(n,)``."""
        s, a = self.stats_, self.args
        return (a["w_raw"] * (e_raw - s["mu_raw"]) / s["sd_raw"]
                + a["w_flow"] * (e_flow - s["mu_flow"]) / s["sd_flow"])

    def object_scores(self, item: VideoItem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every object of a video: ``(frame (n,) int32, xyxy (n, 4), score (n,))``."""
        self._check_fitted()
        self.model.eval()
        with torch_threads(self.args["threads"]):
            store, key = self._cubes(item)
            dataset = CubeDataset(store, [key], min_motion=None)
            pool = [(dataset, i) for i in range(len(dataset))]
            e_raw, e_flow = self._errors(pool, np.arange(len(pool)))
        return dataset.index.frame, dataset.index.xyxy, self._combine(e_raw, e_flow)

    def _score(self, item: VideoItem) -> np.ndarray:
        """``(num_frames,)`` frame scores: max object score per frame; frames without objects get the lowest
        object score seen on the training cubes."""
        frames, _, scores = self.object_scores(item)
        return frame_scores(frames, scores, item.num_frames, self.stats_["empty"])

    # -- persistence ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "stats": dict(self.stats_), "schedule": dict(self.schedule_)}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.stats_ = dict(state["stats"])
        self.schedule_ = dict(state.get("schedule", {}))
