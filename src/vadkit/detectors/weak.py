"""Training and scoring of the weak family on snippet features: AR-Net (k-max MIL + center loss) and AED / AED_T
(multi-task window classifier + per-frame regression).

Both sample, every step, ``S`` abnormal and ``S`` normal training videos (without replacement while enough exist).
Model selection never looks at the test split: training runs a fixed number of steps and the last weights are kept.
The originals' sampling bugs are fixed (see ``docs/deviations.md``): the last crop start can be drawn, the AED
anomaly-window retry crops from the full video each try, and AED test windows are contiguous.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch

from vadkit.detectors.base import VideoItem, number_arg, register_detector
from vadkit.detectors.loop import TrainableDetector
from vadkit.device import seeded
from vadkit.losses import aed_loss, weak_loss
from vadkit.models import get_model
from vadkit.features.geometry import snippets_to_frames, windows_to_frames


# ---------------------------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------------------------
def uniform_resample(features: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``length`` of the ``N > length`` snippets: position ``i`` draws one index from its share
    ``[floor(i*N/length), floor((i+1)*N/length))`` (AR-Net's abnormal-video sampling, last share included)."""
    n = features.shape[0]
    edges = np.floor(np.arange(length + 1) * n / length).astype(int)  # (length+1,)
    picks = [int(rng.integers(edges[i], max(edges[i] + 1, edges[i + 1]))) for i in range(length)]
    return features[picks]


def random_crop(features: np.ndarray, length: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A contiguous run of ``length`` snippets starting at ``r ~ U{0 … N-length}`` (every start possible)."""
    start = int(rng.integers(0, features.shape[0] - length + 1))
    return features[start:start + length], start


def pad_to(features: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad ``(N, F)`` to ``(length, F)`` at the end."""
    out = np.zeros((length, features.shape[1]), dtype=np.float32)
    out[:features.shape[0]] = features
    return out


def sample_balanced(abnormal: Sequence, normal: Sequence, per_class: int, rng: np.random.Generator) -> tuple[list, list]:
    """``per_class`` videos of each kind, without replacement (with replacement only when too few exist)."""
    def draw(pool):
        replace = len(pool) < per_class
        return [pool[i] for i in rng.choice(len(pool), size=per_class, replace=replace)]

    return draw(abnormal), draw(normal)


def _split_by_label(train: list[VideoItem]) -> tuple[list[VideoItem], list[VideoItem]]:
    abnormal = [v for v in train if v.label == 1]
    normal = [v for v in train if v.label == 0]
    if not abnormal or not normal:
        raise ValueError(f"weakly-supervised training needs abnormal and normal training videos; got "
                         f"{len(abnormal)} abnormal and {len(normal)} normal (is the split one-class?)")
    return abnormal, normal


def snippet_features(item: VideoItem) -> np.ndarray:
    """The item's ``(N, F)`` float32 snippet features, read from the item itself (never from a cache)."""
    features = np.asarray(item.features(), dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"video {item.id}: expected snippet features (N, F), got shape {features.shape}")
    return features


class _FeatureCache:
    """Loads each training video's features once, for one ``fit``: training draws from the same videos every step.
    It is emptied when training ends, so nothing keyed by an id outlives the call (scoring reads the item's own
    features: two videos scored under one id get their own scores)."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, item: VideoItem) -> np.ndarray:
        if item.id not in self._cache:
            self._cache[item.id] = snippet_features(item)
        return self._cache[item.id]

    def clear(self) -> None:
        self._cache.clear()


class _WeakDetector(TrainableDetector):
    """Shared parts: the model, balanced batches for the training loop, the threshold, persistence of the weights.

    Threshold: a stated fixed value for probabilities, 0.5 (the outputs are sigmoid scores); nothing is measured.
    """

    state_types = {"model": ((dict,), True), "schedule": ((dict,), False)}
    threshold_rule = "fixed 0.5 (the scores are sigmoid probabilities)"

    def __init__(self, model: str, model_args: dict | None = None, steps: int = 1000, lr: float = 1e-4,
                 weight_decay: float = 5e-4, per_class: int = 4, seed: int = 0, log_every: int = 20,
                 threads: int | None = None, **extra) -> None:
        super().__init__(model=model, model_args=dict(model_args or {}), steps=steps, lr=lr,
                         weight_decay=weight_decay, per_class=per_class, seed=seed, log_every=log_every,
                         threads=threads, **extra)
        self.args.update(lr=number_arg(lr, "lr"), weight_decay=number_arg(weight_decay, "weight_decay"))
        if steps < 0 or per_class < 1:
            raise ValueError(f"steps must be >= 0 and per_class >= 1, got {steps} and {per_class}")
        with seeded(seed):  # initial weights from the detector's own seed; the process's generator is left alone
            self.model = get_model(model, **self.args["model_args"])
        self._features = _FeatureCache()

    # -- the training loop's hooks ----------------------------------------------------------------------------
    def _run(self, train: list[VideoItem], progress: bool, **options):
        try:
            return super()._run(train, progress, **options)
        finally:
            self._features.clear()  # the cache lives for one training run only

    def _prepare(self, train: list[VideoItem], rng: np.random.Generator) -> tuple[list, list]:
        return _split_by_label(train)

    def _planned_steps(self, data) -> int:
        return self.args["steps"]

    def _batches(self, data, rng: np.random.Generator) -> Iterator:
        """Every step: ``per_class`` abnormal and normal videos, then the model inputs drawn from them."""
        abnormal, normal = data
        while True:
            batch_a, batch_n = sample_balanced(abnormal, normal, self.args["per_class"], rng)
            yield self._inputs(batch_a + batch_n, rng)

    def _optimiser(self) -> torch.optim.Optimizer:
        a = self.args
        return torch.optim.Adam(self.model.parameters(), lr=a["lr"], weight_decay=a["weight_decay"])

    def _calibrate(self, data, rng: np.random.Generator) -> None:
        self.threshold_ = 0.5

    def _inputs(self, items: list[VideoItem], rng: np.random.Generator):
        raise NotImplementedError

    def _frames_per_snippet(self) -> int:
        """Frames per snippet of the training features; windows of snippets assume non-overlapping snippets."""
        geometry = self.geometry
        if geometry.stride != geometry.snippet_len:
            raise ValueError(f"{self.name} needs non-overlapping snippets (stride == snippet length), but its features "
                             f"have snippet length {geometry.snippet_len} and stride {geometry.stride}")
        return geometry.snippet_len

    # -- persistence ------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "schedule": dict(getattr(self, "schedule_", {}))}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.schedule_ = dict(state.get("schedule", {}))


# ---------------------------------------------------------------------------------------------------------------
# AR-Net
# ---------------------------------------------------------------------------------------------------------------
@register_detector("arnet")
class ARNetDetector(_WeakDetector):
    """AR-Net on snippet features: dynamic k-max MIL + center loss; any of the six variants (``model``).

    Args:
        model: ``arnet_single`` (published), ``arnet_mean``, ``arnet_sequence``, ``arnet_concat``, ``arnet_lstm``,
            ``arnet_bas``.
        model_args: the model's constructor arguments (``feature_dim`` must match the features).
        max_seqlen: training sequences are cut (normal: random crop; abnormal: jittered uniform resampling) or
            zero-padded to this many snippets.
        k: k of the dynamic k-max MIL (``ceil(T/k)`` top scores per video).
        lambda_mil, lambda_center: loss weights (paper: 1 and 20).
        tail: how frames after the last full snippet are scored (``extend`` / ``drop``).
    """

    name = "arnet"
    scoring_kind = "snippets"
    export_layout = "batch-of-one"  # one whole video of snippets per call

    def __init__(self, model: str = "arnet_single", model_args: dict | None = None, steps: int = 1000,
                 lr: float = 1e-4, weight_decay: float = 5e-4, per_class: int = 4, max_seqlen: int = 300,
                 k: int = 4, lambda_mil: float = 1.0, lambda_center: float = 20.0, tail: str = "extend",
                 seed: int = 0, log_every: int = 20, threads: int | None = 1) -> None:
        super().__init__(model=model, model_args=model_args, steps=steps, lr=lr, weight_decay=weight_decay,
                         per_class=per_class, seed=seed, log_every=log_every, threads=threads,
                         max_seqlen=max_seqlen, k=k, lambda_mil=lambda_mil, lambda_center=lambda_center, tail=tail)

    def _sequence(self, item: VideoItem, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        features = self._features(item)
        length = self.args["max_seqlen"]
        if features.shape[0] > length:
            chosen = uniform_resample(features, length, rng) if item.label == 1 else random_crop(features, length, rng)[0]
            return chosen, length
        return pad_to(features, length), features.shape[0]

    def _inputs(self, items: list[VideoItem], rng: np.random.Generator):
        sequences, lengths = zip(*(self._sequence(v, rng) for v in items))
        longest = max(lengths)
        x = torch.from_numpy(np.stack(sequences)[:, :longest])  # (2S, T, F), cut to the longest real sequence
        seq_len = torch.tensor(lengths, dtype=torch.long)
        labels = torch.tensor([float(v.label) for v in items])
        return x, seq_len, labels

    def _loss(self, batch) -> torch.Tensor:
        x, seq_len, labels = batch
        outputs = self.model(x, seq_len)
        a = self.args
        return weak_loss(outputs, seq_len, labels, k=a["k"], lambda_mil=a["lambda_mil"], lambda_center=a["lambda_center"])

    def networks(self) -> dict:
        from vadkit.features.backends import dict_spec

        model = self.torch_network("model")
        example = torch.zeros(1, 8, model.feature_dim)  # (1, N, F): one video of N snippets
        return {"model": dict_spec(model, (example,), ["features"], ["scores"],
                                   {"features": {1: "snippets"}})}

    @torch.inference_mode()
    def snippet_scores(self, features: np.ndarray) -> np.ndarray:
        x = self.tensor(np.asarray(features, np.float32))[None]  # (1, N, F)
        return self.model(x)["scores"][0].cpu().numpy()

    def _score(self, item: VideoItem) -> np.ndarray:
        scores = self.snippet_scores(snippet_features(item))
        g = self.geometry
        return snippets_to_frames(scores, item.num_frames, g.snippet_len, g.stride, tail=self.args["tail"])


# ---------------------------------------------------------------------------------------------------------------
# AED / AED_T
# ---------------------------------------------------------------------------------------------------------------
TEST_PADDINGS = ("zeros", "repeat")


@register_detector("aed")
class AEDDetector(_WeakDetector):
    """AED (``model: aed``, one ConvLSTM layer) or AED_T (``aed_t``, two) on windows of ``L`` snippets.

    Training windows are random; an abnormal video's window is redrawn (up to ``retries`` times, each from the full
    video) until it holds an anomalous frame. Scoring runs every stride-1 window and takes, per frame, the max over
    the windows covering it; the video class is the argmax of the mean window logits.

    Args:
        model_args: must give ``window`` (= L), ``num_classes`` and ``feature_dim`` consistent with the data.
        lambda_cls, lambda_reg: multi-task loss weights (seeds: 1 and 10).
        retries: anomaly-window redraws.
        test_padding: how a test video is padded into windows. ``repeat`` (default, the seeds' test code): padded
            to a multiple of L with copies of its last snippet. ``zeros``: a video shorter than L is zero-padded at
            the end to one window, as training windows are, and a longer one gives its ``N - L + 1`` windows
            unpadded. On Ped2 (5 split seeds, same weights) ``zeros`` scored lower (docs/results.md).
    """

    name = "aed"
    scoring_kind = "windows"
    classifier = True

    def __init__(self, model: str = "aed_t", model_args: dict | None = None, steps: int = 1000, lr: float = 5e-5,
                 weight_decay: float = 5e-4, per_class: int = 4, lambda_cls: float = 1.0, lambda_reg: float = 10.0,
                 retries: int = 11, tail: str = "extend", test_padding: str = "repeat", seed: int = 0,
                 log_every: int = 20, threads: int | None = 1) -> None:
        if test_padding not in TEST_PADDINGS:
            raise ValueError(f"test_padding must be one of {TEST_PADDINGS}, got {test_padding!r}")
        super().__init__(model=model, model_args=model_args, steps=steps, lr=lr, weight_decay=weight_decay,
                         per_class=per_class, seed=seed, log_every=log_every, threads=threads,
                         lambda_cls=lambda_cls, lambda_reg=lambda_reg, retries=retries, tail=tail,
                         test_padding=test_padding)
        self.window = int(self.model.window)

    def _frame_labels(self, item: VideoItem) -> np.ndarray:
        if item.frame_labels is not None:
            return np.asarray(item.frame_labels, dtype=np.float32)
        return np.full(item.num_frames, float(item.label == 1), dtype=np.float32)  # video label on every frame

    def _training_window(self, item: VideoItem, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        features = self._features(item)
        labels = self._frame_labels(item)
        length, fps = self.window, self._frames_per_snippet()
        start = 0
        if features.shape[0] > length:
            for _ in range(self.args["retries"] if item.label == 1 else 1):
                _, start = random_crop(features, length, rng)  # always from the full video
                if item.label != 1 or labels[fps * start: fps * (start + length)].any():
                    break
        window = pad_to(features[start:start + length], length)  # (L, F)
        target = np.zeros(fps * length, dtype=np.float32)
        chunk = labels[fps * start: fps * (start + length)]
        target[:chunk.size] = chunk
        return window, target

    def _inputs(self, items: list[VideoItem], rng: np.random.Generator):
        windows, targets = zip(*(self._training_window(v, rng) for v in items))
        classes = torch.tensor([v.class_index for v in items], dtype=torch.long)
        return torch.from_numpy(np.stack(windows)), classes, torch.from_numpy(np.stack(targets))

    def _loss(self, batch) -> torch.Tensor:
        windows, classes, targets = batch
        out = self.model(windows)  # (2S, L, F) -> logits (2S, C), frames (2S, fps*L)
        return aed_loss(out["logits"], out["frame_scores"], classes, targets, self.args["lambda_cls"],
                        self.args["lambda_reg"])

    def networks(self) -> dict:
        from vadkit.features.backends import dict_spec

        model = self.torch_network("model")
        example = torch.zeros(2, self.window, model.feature_dim)  # (W, L, F) windows
        return {"model": dict_spec(model, (example,), ["windows"], ["logits", "frame_scores"],
                                   {"windows": {0: "windows"}})}

    @torch.inference_mode()
    def _windows(self, features: np.ndarray) -> tuple[dict, int]:
        """Every stride-1 window of the video, padded as ``test_padding`` says."""
        n, length = features.shape[0], self.window
        if self.args["test_padding"] == "zeros":
            padded = pad_to(features, max(length, n))  # (max(L, N), F), zeros after the video as in training
        else:
            padded_n = max(length, math.ceil(n / length) * length)
            padded = np.concatenate([features, np.repeat(features[-1:], padded_n - n, axis=0)])  # (N', F)
        windows = np.stack([padded[i:i + length] for i in range(len(padded) - length + 1)])  # (W, L, F) contiguous
        out = self.model(self.tensor(windows))
        return {k: v.cpu() for k, v in out.items()}, n

    def _score(self, item: VideoItem) -> np.ndarray:
        out, real = self._windows(snippet_features(item))
        return windows_to_frames(out["frame_scores"].numpy(), item.num_frames, self._frames_per_snippet(),
                                 real_snippets=real, tail=self.args["tail"])

    def predict_class(self, item: VideoItem) -> int:
        """Video-level class: argmax of the mean window logits."""
        self._check_fitted()
        out, _ = self._windows(snippet_features(item))
        return int(out["logits"].mean(dim=0).argmax())
