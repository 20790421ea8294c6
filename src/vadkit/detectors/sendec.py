"""Training and scoring of sEnDec (docs/seed-systems.md §4) on raw frames: one-class reconstruction.

Training reads only the (normal) training videos: RGB frames resized to ``height x width``, scaled to [0, 1], cut
into clips of ``clip_length`` consecutive frames that never cross a video boundary, and fitted with a pixel-wise
MSE loss. The schedule is fixed (``epochs``, optionally cut by a wall-clock budget ``max_minutes``); the last weights
are kept, and their BatchNorm statistics re-estimated on training clips. Nothing looks at the test split.

Scoring streams a video through sliding windows (``score_stride`` frames apart; the last window always ends at the
last frame). Each window gives per-frame error maps ``(x - x̂)²`` averaged over channels; a map becomes one number
by ``pooling`` (``mean``: the mean squared error over channels and pixels, the default; ``patch-max``: the largest
``patch x patch`` mean), optionally after z-scoring every pixel with its own training error statistics
(``pixel_normalisation``). Each frame gets the mean of the numbers of the windows that contain it. With
``normalisation="train-zscore"`` (causal, the default) that frame error is z-scored with the mean and standard
deviation of the same frame errors over the training frames; per-video min-max (non-causal) is applied by the engine
from ``eval.normalisation``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from vadkit.detectors.base import VideoItem, number_arg, quantile_threshold, register_detector, torch_threads
from vadkit.detectors.loop import TrainableDetector
from vadkit.device import seeded
from vadkit.models.recon.sendec import SEnDec

OPTIMIZERS = ("adadelta", "adam")
POOLINGS = ("mean", "patch-max")
SCORING_ARGS = ("score_stride", "score_batch", "pooling", "patch", "pixel_normalisation", "normalisation")
PIXEL_STD_FLOOR = 1e-6  # smallest per-pixel error standard deviation (a pixel never wrong in training)
DETECTOR_NORMALISATIONS = ("train-zscore", "none")
SIZE_MULTIPLE = 16  # sEnDec halves the resolution four times


# ---------------------------------------------------------------------------------------------------------------
# Clips and windows
# ---------------------------------------------------------------------------------------------------------------
def window_starts(num_frames: int, length: int, stride: int) -> list[int]:
    """Starts of the windows of ``length`` frames, ``stride`` apart, that cover a video of ``num_frames`` frames.

    The last window always ends at the last frame (so every frame is covered); a video shorter than ``length``
    gets one window starting at 0 (the caller shortens it to the video).
    """
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length} and {stride}")
    if stride > length:
        raise ValueError(f"a window stride of {stride} > the window length {length} would leave frames unscored")
    if num_frames < 1:
        return []
    last = max(0, num_frames - length)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def training_clips(num_frames: list[int], length: int, stride: int) -> np.ndarray:
    """``(N, 2)`` rows ``(video, start)`` of every training clip: ``length`` consecutive frames of one video,
    starts ``stride`` apart (``stride == length``: non-overlapping, the tail shorter than a clip is left out).
    Videos shorter than a clip give none."""
    rows = [(v, s) for v, n in enumerate(num_frames) if n >= length for s in range(0, n - length + 1, stride)]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def sliding_windows(frames: Iterable[np.ndarray], num_frames: int, length: int,
                    stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """Stream ``(start, clip)`` pairs, ``clip`` ``(min(length, num_frames), H, W, C)`` uint8, holding at most one
    window of frames in memory. ``frames`` yields the video's ``num_frames`` frames in order."""
    length = min(length, num_frames)
    source = iter(frames)
    buffer: deque[np.ndarray] = deque()
    first = 0  # index of buffer[0]
    for start in window_starts(num_frames, length, stride):
        while first < start:  # stride <= length: the frames dropped are all in the buffer
            buffer.popleft()
            first += 1
        while len(buffer) < length:
            try:
                buffer.append(next(source))
            except StopIteration:
                raise ValueError(f"the video ended after {first + len(buffer)} frames, expected {num_frames}") from None
        yield start, np.stack(buffer)


def to_clip_tensor(clips: np.ndarray) -> torch.Tensor:
    """``(B, T, H, W, C)`` uint8 -> ``(B, C, T, H, W)`` float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(clips)).float().div_(255.0)  # (B, T, H, W, C)
    return x.permute(0, 4, 1, 2, 3).contiguous()  # (B, C, T, H, W)


def pool_error_maps(maps: torch.Tensor, pooling: str = "mean", patch: int = 16) -> torch.Tensor:
    """``(B, T, H, W)`` per-pixel errors -> ``(B, T)`` frame errors.

    ``mean``: the mean over pixels (with channel-averaged maps: the mean squared error over channels and pixels).
    ``patch-max``: the largest mean over ``patch x patch`` squares placed ``patch // 2`` apart (a local anomaly is
    not diluted by the rest of the frame).
    """
    if pooling == "mean":
        return maps.mean(dim=(2, 3))
    if pooling != "patch-max":
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    b, t, h, w = maps.shape
    if patch > min(h, w):
        raise ValueError(f"patch {patch} is larger than the {h}x{w} frames")
    local = F.avg_pool2d(maps.reshape(b * t, 1, h, w), patch, stride=max(1, patch // 2))  # (B*T, 1, h', w')
    return local.amax(dim=(1, 2, 3)).reshape(b, t)


# ---------------------------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------------------------
@register_detector("sendec")
class SEnDecDetector(TrainableDetector):
    """sEnDec trained on normal frames; frame score = reconstruction error (higher = more abnormal).

    Args:
        clip_length: frames per clip ``T`` (notebook 4; the released checkpoint 1).
        height, width: frames are resized to this (multiples of 16; paper 240x320).
        in_channels: 3 (RGB) or 1 (grayscale); the reconstruction has as many channels.
        dropout: before the last convolution (paper 0.5).
        optimizer: ``adadelta`` (paper) or ``adam``.
        lr: learning rate (paper: Adadelta 1e-3, the Keras default; the released ``.h5`` saved Adadelta 1.0).
        rho, eps: Adadelta's decay and epsilon (Keras defaults 0.95, 1e-7); ``eps`` is also Adam's epsilon.
        batch_size: clips per step (paper 16).
        epochs: passes over the training clips (paper 50).
        max_minutes: wall-clock budget of the optimisation loop; training stops at the first step boundary past
            it (a fixed rule, never test-based). ``None``: no budget.
        clip_stride: frames between training clip starts; ``None`` = ``clip_length`` (non-overlapping, as the
            authors' notebook cuts clips).
        bn_clips: after training, the BatchNorm running statistics are re-estimated with the final weights from
            this many training clips (0: keep the running averages of training, Keras momentum 0.99).
        score_stride: frames between scoring windows (1 = every window; overlapping windows are averaged per frame).
        score_batch: windows per forward pass when scoring.
        pooling: how a frame's error map becomes one number: ``mean`` (the mean squared error over channels and
            pixels, docs/seed-systems.md §4.5) or ``patch-max`` (the largest ``patch x patch`` mean).
        patch: side of the ``patch-max`` squares, in pixels of the resized frames.
        pixel_normalisation: before pooling, z-score each pixel's error with that pixel's error mean and standard
            deviation over the training frames (causal; places that are always hard, such as textured background,
            stop dominating the frame error).
        normalisation: ``train-zscore`` (causal: training-set mean and std of the frame errors) or ``none``
            (raw error). Per-video min-max is the engine's ``eval.normalisation``.
        seed: seeds the weights, the clip order and dropout.
        threads: torch CPU threads during fit and score, restored afterwards (``None``: leave them).
        log_every: steps per row of the loss history.
    """

    name = "sendec"
    scoring_kind = "frames"
    inputs = "frames"
    state_types = {"model": ((dict,), True), "train_mean": ((int, float), True), "train_std": ((int, float), True),
                   "pixel_mean": ((torch.Tensor, type(None)), False), "pixel_std": ((torch.Tensor, type(None)), False),
                   "schedule": ((dict,), False)}
    threshold_rule = ("the 0.99 quantile of the training frames' scores (reconstruction errors, z-scored with the "
                      "training statistics when normalisation is train-zscore)")
    THRESHOLD_QUANTILE = 0.99

    def __init__(self, clip_length: int = 4, height: int = 240, width: int = 320, in_channels: int = 3,
                 dropout: float = 0.5, optimizer: str = "adadelta", lr: float = 1e-3, rho: float = 0.95,
                 eps: float = 1e-7, batch_size: int = 16, epochs: int = 50, max_minutes: float | None = None,
                 clip_stride: int | None = None, bn_clips: int = 256, score_stride: int = 1, score_batch: int = 8,
                 pooling: str = "mean", patch: int = 16, pixel_normalisation: bool = False,
                 normalisation: str = "train-zscore", seed: int = 0, threads: int | None = None,
                 log_every: int = 10) -> None:
        lr, rho, eps, dropout = (number_arg(v, k) for k, v in (("lr", lr), ("rho", rho), ("eps", eps), ("dropout", dropout)))
        max_minutes = None if max_minutes is None else number_arg(max_minutes, "max_minutes")
        super().__init__(clip_length=clip_length, height=height, width=width, in_channels=in_channels,
                         dropout=dropout, optimizer=optimizer, lr=lr, rho=rho, eps=eps, batch_size=batch_size,
                         epochs=epochs, max_minutes=max_minutes, clip_stride=clip_stride, bn_clips=bn_clips,
                         score_stride=score_stride, score_batch=score_batch, pooling=pooling, patch=patch,
                         pixel_normalisation=bool(pixel_normalisation), normalisation=normalisation, seed=seed,
                         threads=threads, log_every=log_every)
        self._check_args()
        with seeded(seed):  # initial weights from the detector's own seed; the process's generator is left alone
            self.model = SEnDec(in_channels=in_channels, dropout=dropout)
        self.train_mean_: float | None = None
        self.train_std_: float | None = None
        self.schedule_: dict = {}  # steps run, epochs reached, whether the time budget stopped training
        self._set_pixel_statistics(None, None)  # (H, W) per-pixel training error mean / std (pixel_normalisation)

    def _check_args(self) -> None:
        a = self.args
        if a["height"] % SIZE_MULTIPLE or a["width"] % SIZE_MULTIPLE or min(a["height"], a["width"]) < SIZE_MULTIPLE:
            raise ValueError(f"height and width must be positive multiples of {SIZE_MULTIPLE}, "
                             f"got {a['height']}x{a['width']} (e.g. 240x320 or 64x96)")
        if a["in_channels"] not in (1, 3):
            raise ValueError(f"in_channels must be 1 (gray) or 3 (RGB), got {a['in_channels']}")
        for key in ("clip_length", "batch_size", "score_stride", "score_batch", "patch", "log_every"):
            if a[key] < 1:
                raise ValueError(f"{key} must be >= 1, got {a[key]}")
        if a["score_stride"] > a["clip_length"]:
            raise ValueError(f"score_stride ({a['score_stride']}) must be <= clip_length ({a['clip_length']}) so "
                             f"that every frame is scored")
        if a["clip_stride"] is not None and a["clip_stride"] < 1:
            raise ValueError(f"clip_stride must be >= 1 or None, got {a['clip_stride']}")
        if a["epochs"] < 0 or a["bn_clips"] < 0:
            raise ValueError(f"epochs and bn_clips must be >= 0, got {a['epochs']} and {a['bn_clips']}")
        if a["max_minutes"] is not None and a["max_minutes"] <= 0:
            raise ValueError(f"max_minutes must be positive or None, got {a['max_minutes']}")
        if a["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {a['optimizer']!r}")
        if a["pooling"] not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {a['pooling']!r}")
        if a["pooling"] == "patch-max" and a["patch"] > min(a["height"], a["width"]):
            raise ValueError(f"patch ({a['patch']}) must fit in the {a['height']}x{a['width']} frames")
        if a["normalisation"] not in DETECTOR_NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {DETECTOR_NORMALISATIONS} (per-video min-max is "
                             f"eval.normalisation), got {a['normalisation']!r}")

    # -- frames ---------------------------------------------------------------------------------------------------
    def _open(self, item: VideoItem):
        from vadkit.io import open_video_frames

        if item.path is None:
            raise ValueError(f"video {item.id}: no path (sEnDec reads frames from a video file or frame folder)")
        a = self.args
        return open_video_frames(item.path, item.num_frames, item.id, size=(a["width"], a["height"]),
                                 gray=a["in_channels"] == 1)

    def _read_all(self, item: VideoItem) -> np.ndarray:
        """All frames of a video, resized: ``(N, H, W, C)`` uint8."""
        with self._open(item) as source:
            frames = source.read()  # (N, H, W, 3) or (N, H, W) gray
        return frames[..., None] if frames.ndim == 3 else frames  # (N, H, W, C)

    def _frames(self, item: VideoItem) -> Iterator[np.ndarray]:
        """Stream a video's resized frames ``(H, W, C)`` uint8."""
        with self._open(item) as source:
            for frame in source.frames():
                yield frame[..., None] if frame.ndim == 2 else frame  # (H, W, C)

    # -- training -------------------------------------------------------------------------------------------------
    def _optimiser(self) -> torch.optim.Optimizer:
        a = self.args
        if a["optimizer"] == "adadelta":
            return torch.optim.Adadelta(self.model.parameters(), lr=a["lr"], rho=a["rho"], eps=a["eps"])
        return torch.optim.Adam(self.model.parameters(), lr=a["lr"], eps=a["eps"])

    # -- the training loop's hooks ------------------------------------------------------------------------------
    def _prepare(self, train: list[VideoItem], rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
        """The training frames (all treated as normal), kept in RAM, and the clips cut from them."""
        videos = [self._read_all(item) for item in train]  # each (N, H, W, C) uint8
        length = self.args["clip_length"]
        clips = training_clips([v.shape[0] for v in videos], length, self.args["clip_stride"] or length)
        if len(clips) == 0:
            raise ValueError(f"no training video has {length} frames (clip_length); lengths: "
                             f"{[v.shape[0] for v in videos]}")
        return videos, clips

    def _steps_per_epoch(self, data) -> int:
        return math.ceil(len(data[1]) / self.args["batch_size"])

    def _planned_steps(self, data) -> int:
        return self._steps_per_epoch(data) * self.args["epochs"]

    def _batches(self, data, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        videos, clips = data
        a = self.args
        for _ in range(a["epochs"]):
            order = rng.permutation(len(clips))
            for first in range(0, len(order), a["batch_size"]):
                batch = clips[order[first:first + a["batch_size"]]]
                yield to_clip_tensor(np.stack([videos[v][s:s + a["clip_length"]] for v, s in batch]))  # (B,C,T,H,W)

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.model(x), x)

    def _calibrate(self, data, rng: np.random.Generator) -> None:
        """BatchNorm statistics of the final weights, then the training error statistics and the threshold."""
        videos, clips = data
        if self.args["bn_clips"]:
            self._recalibrate_batch_norm(videos, clips, rng)
        self._measure_statistics(videos)

    def _measure_statistics(self, videos: list[np.ndarray]) -> None:
        """With the final weights in eval mode: the per-pixel error statistics (``pixel_normalisation``), the mean
        and standard deviation of the frame errors over the training frames (the causal z-score), and the
        threshold: the ``THRESHOLD_QUANTILE`` quantile of the training frames' scores."""
        self.model.eval()
        if self.args["pixel_normalisation"]:
            self._set_pixel_statistics(*self._pixel_statistics(videos))
        errors = np.concatenate([self._frame_errors(iter(v), v.shape[0]) for v in videos])
        self.train_mean_, self.train_std_ = float(errors.mean()), float(errors.std())
        self.threshold_ = quantile_threshold(self._normalise(errors), self.THRESHOLD_QUANTILE, "training frame scores")

    def _normalise(self, errors: np.ndarray) -> np.ndarray:
        if self.args["normalisation"] != "train-zscore":
            return errors
        if not self.train_std_ > 0:
            raise ValueError(f"z-score needs a positive training standard deviation, got {self.train_std_}")
        return (np.asarray(errors, dtype=np.float64) - self.train_mean_) / self.train_std_

    def with_scoring(self, train: list[VideoItem], **changes) -> "SEnDecDetector":
        """A copy with the same weights and other scoring arguments (``SCORING_ARGS``), its training statistics
        measured again on ``train``. Compares scoring rules on one trained network without retraining."""
        self._check_fitted()
        unknown = sorted(set(changes) - set(SCORING_ARGS))
        if unknown:
            raise ValueError(f"with_scoring changes only {SCORING_ARGS}, got {unknown}")
        other = type(self)(**{**self.args, **changes})
        other.model.load_state_dict(self.model.state_dict())
        other.history, other.schedule_ = list(self.history), dict(self.schedule_)
        other.extraction_, other.crops_, other.protocol_ = self.extraction_, self.crops_, dict(self.protocol_)
        with torch_threads(other.args["threads"]):
            other._measure_statistics([other._read_all(item) for item in train])
        other.fitted_ = True
        return other

    @torch.no_grad()
    def _recalibrate_batch_norm(self, videos: list[np.ndarray], clips: np.ndarray, rng: np.random.Generator) -> None:
        """Re-estimate the BatchNorm running statistics of the final weights from ``bn_clips`` training clips
        (a plain average over batches). Keras' running averages (momentum 0.99) lag the weights by about a hundred
        steps, which matters when a time budget allows only a few hundred."""
        a = self.args
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.model.train()
        chosen = clips[rng.permutation(len(clips))[:a["bn_clips"]]]
        for first in range(0, len(chosen), a["batch_size"]):
            batch = chosen[first:first + a["batch_size"]]
            self.model(self.tensor(to_clip_tensor(np.stack([videos[v][s:s + a["clip_length"]] for v, s in batch]))))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum

    # -- runtimes -------------------------------------------------------------------------------------------------
    def networks(self) -> dict:
        from vadkit.features.backends import ExportSpec

        a = self.args
        example = torch.zeros(2, a["in_channels"], a["clip_length"], a["height"], a["width"])  # (B, C, T, H, W)
        return {"model": ExportSpec(self.torch_network("model"), (example,), ["clips"], ["reconstruction"],
                                    {"clips": {0: "batch"}})}

    # -- scoring --------------------------------------------------------------------------------------------------
    def _error_maps(self, frames: Iterable[np.ndarray], num_frames: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Stream ``(starts, maps)`` per batch of windows: ``maps (B, T, H, W)`` = ``(x - x̂)²`` averaged over
        channels, window ``i`` covering frames ``starts[i] … starts[i] + T - 1``."""
        a = self.args
        pending: list[tuple[int, np.ndarray]] = []
        windows = sliding_windows(frames, num_frames, a["clip_length"], a["score_stride"])
        for start, clip in windows:
            pending.append((start, clip))
            if len(pending) == a["score_batch"]:
                yield self._batch_maps(pending)
                pending = []
        if pending:
            yield self._batch_maps(pending)

    def _batch_maps(self, pending: list[tuple[int, np.ndarray]]) -> tuple[list[int], torch.Tensor]:
        x = self.tensor(to_clip_tensor(np.stack([clip for _, clip in pending])))  # (B, C, T, H, W)
        return [start for start, _ in pending], (x - self.model(x)).pow(2).mean(dim=1)  # (B, T, H, W)

    def _pool(self, maps: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W)`` error maps -> ``(B, T)`` frame errors (after the optional per-pixel z-score)."""
        a = self.args
        if a["pixel_normalisation"]:
            maps = (maps - self._pixel_mean.to(maps.device)) / self._pixel_std.to(maps.device)  # (B, T, H, W), over (H, W)
        return pool_error_maps(maps, a["pooling"], a["patch"])

    @torch.inference_mode()
    def _frame_errors(self, frames: Iterable[np.ndarray], num_frames: int) -> np.ndarray:
        """``(num_frames,)`` raw frame errors: pooled per window and frame, averaged over the windows containing
        the frame."""
        total = np.zeros(num_frames, dtype=np.float64)
        count = np.zeros(num_frames, dtype=np.int64)
        for starts, maps in self._error_maps(frames, num_frames):
            for start, row in zip(starts, self._pool(maps).double().cpu().numpy()):  # row: (T,)
                total[start:start + row.size] += row
                count[start:start + row.size] += 1
        if num_frames and not count.all():
            raise RuntimeError(f"{int((count == 0).sum())} frames were not covered by a scoring window")
        return total / np.maximum(count, 1)

    @torch.inference_mode()
    def _pixel_statistics(self, videos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation ``(H, W)`` of each pixel's error over every (window, frame) of ``videos``."""
        total = torch.zeros(self.args["height"], self.args["width"], dtype=torch.float64)
        squares, n = torch.zeros_like(total), 0
        for video in videos:
            for _, maps in self._error_maps(iter(video), video.shape[0]):
                maps = maps.double().cpu().flatten(0, 1)  # (B*T, H, W)
                total += maps.sum(0)
                squares += maps.pow(2).sum(0)
                n += maps.shape[0]
        mean = total / n
        std = (squares / n - mean.pow(2)).clamp_min(0).sqrt().clamp_min(PIXEL_STD_FLOOR)
        return mean.float().numpy(), std.float().numpy()

    def _set_pixel_statistics(self, mean: np.ndarray | None, std: np.ndarray | None) -> None:
        self.pixel_mean_, self.pixel_std_ = mean, std
        self._pixel_mean = None if mean is None else torch.from_numpy(np.asarray(mean, np.float32))
        self._pixel_std = None if std is None else torch.from_numpy(np.asarray(std, np.float32))

    def raw_errors(self, item: VideoItem) -> np.ndarray:
        """``(num_frames,)`` raw per-frame reconstruction errors of a video (no frame-level normalisation)."""
        self._check_fitted()
        self.model.eval()
        with torch_threads(self.args["threads"]):
            return self._frame_errors(self._frames(item), item.num_frames)

    def _score(self, item: VideoItem) -> np.ndarray:
        """``(num_frames,)`` frame scores: the reconstruction error, z-scored with training statistics by default."""
        return self._normalise(self.raw_errors(item))

    # -- persistence ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        def tensor(array):
            return None if array is None else torch.from_numpy(np.asarray(array, np.float32))

        return {"model": self.model.state_dict(), "train_mean": self.train_mean_, "train_std": self.train_std_,
                "pixel_mean": tensor(self.pixel_mean_), "pixel_std": tensor(self.pixel_std_), "schedule": self.schedule_}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.train_mean_, self.train_std_ = state["train_mean"], state["train_std"]
        self.schedule_ = dict(state.get("schedule", {}))
        def array(value):
            return None if value is None else np.asarray(value, np.float32)

        self._set_pixel_statistics(array(state.get("pixel_mean")), array(state.get("pixel_std")))
        if self.args["pixel_normalisation"] and self.pixel_mean_ is None:
            raise ValueError("this sEnDec detector scores with pixel_normalisation but its state has no per-pixel "
                             "training statistics")
