"""The device option: resolution in one place, the one clear line where CUDA is missing, precision as a recorded
choice the feature store refuses to mix, device-free model files. Tests marked ``gpu`` run where torch sees a CUDA
device (``bench/gpu_check.sh``) and are skipped with the reason elsewhere."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vadkit.cli import app
from vadkit.detectors import Detector, VideoItem, build_detector
from vadkit.device import (DeviceError, check_precision, precision_scope, resolve_device, to_cpu, to_device,
                           training_scope)
from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
from vadkit.features.store import FeatureStore, StoreMismatchError
from vadkit.io import write_video

NO_CUDA = not torch.cuda.is_available()
F = 64


def test_auto_is_the_cpu_where_torch_sees_no_gpu_and_cuda_where_it_does():
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected and str(resolve_device(None)) == expected
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(" CPU ") == torch.device("cpu")


def test_a_name_that_is_no_device_is_refused_with_the_choices():
    for bad in ("gpu", "cuda:x", "tpu", "cuda:-1"):
        with pytest.raises(ValueError, match=r"auto\|cpu\|cuda\|cuda:N"):
            resolve_device(bad)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: the missing-CUDA message cannot be shown")
def test_cuda_without_a_gpu_names_the_torch_build_and_how_to_install_one():
    for asked in ("cuda", "cuda:1"):
        with pytest.raises(DeviceError) as err:
            resolve_device(asked)
        message = str(err.value)
        assert f"--device {asked}" in message and torch.__version__ in message
        assert "install a CUDA build of torch" in message and "make install-cuda" in message
        assert "\n" not in message


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: the missing-CUDA message cannot be shown")
def test_every_command_says_it_in_one_line_and_exits_1(tmp_path):
    runner = CliRunner()
    demo = "src/vadkit/assets/demo/ped2_test004.mp4"
    for args in (["score", demo, "--device", "cuda", "--out", str(tmp_path / "s")],
                 ["extract", demo, "--out", str(tmp_path / "f"), "--device", "cuda"],
                 ["fit-normal", demo, "--out", str(tmp_path / "r"), "--device", "cuda:0"],
                 ["watch", demo, "--out", str(tmp_path / "w"), "--device", "cuda"],
                 ["train", "configs/arnet_ped2.yaml", "--device", "cuda"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: --device cuda"), (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()  # refused before any work


def test_every_command_that_runs_a_network_takes_device():
    runner = CliRunner()
    for command in ("extract", "train", "evaluate", "score", "fit-normal", "watch", "serve"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--device" in result.output, command


def test_precision_is_checked_against_the_device():
    assert check_precision("fp32", "cpu") == "fp32" and check_precision("bf16", "cpu") == "bf16"
    for precision in ("tf32", "fp16"):
        with pytest.raises(ValueError, match="CUDA device only"):
            check_precision(precision, "cpu")
        with pytest.raises(ValueError, match="CUDA device only"):
            SnippetExtractor(ExtractionSettings(precision=precision), device="cpu")
    with pytest.raises(ValueError, match="fp32, tf32, bf16, fp16"):
        ExtractionSettings(precision="int8")


def test_precision_scope_switches_tf32_off_for_fp32_on_cuda_and_restores_it():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with precision_scope("fp32", "cuda"):
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with precision_scope("tf32", "cuda"):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with precision_scope("fp32", "cpu"):  # nothing to switch on the CPU
            assert torch.backends.cudnn.allow_tf32
        with pytest.raises(RuntimeError):
            with precision_scope("fp32", "cuda"):
                raise RuntimeError("an error inside the block")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        before = torch.backends.cudnn.benchmark
        with training_scope("cuda"):
            assert torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.benchmark == before
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_bf16_autocast_runs_on_the_cpu():
    layer = torch.nn.Linear(8, 4)
    with precision_scope("bf16", "cpu"):
        assert layer(torch.ones(2, 8)).dtype == torch.bfloat16
    assert layer(torch.ones(2, 8)).dtype == torch.float32


def test_to_device_and_to_cpu_walk_nested_batches():
    batch = (torch.ones(2), [torch.zeros(1), 3], {"a": torch.ones(1)})
    assert to_device(batch, "cpu") is batch  # the CPU path copies nothing
    moved = to_cpu(batch)
    assert isinstance(moved, tuple) and isinstance(moved[1], list) and isinstance(moved[2], dict)
    assert moved[1][1] == 3 and torch.equal(moved[0], batch[0])


def test_a_store_refuses_features_of_another_precision(tmp_path):
    fp32 = {**asdict(ExtractionSettings()), "weights_sha256": "x"}
    FeatureStore(tmp_path, fp32).write("v", np.zeros((2, 4), np.float32), num_frames=32, fps=10.0, device="cpu",
                                       precision="fp32")
    FeatureStore(tmp_path, fp32)  # the same precision from another device is welcome: devices agree within 1e-4
    with pytest.raises(StoreMismatchError, match="precision"):
        FeatureStore(tmp_path, {**fp32, "precision": "bf16"})


def _tiny_video(tmp_path, n=40, seed=0):
    rng = np.random.default_rng(seed)
    frames = [np.full((96, 128, 3), 40, np.uint8) for _ in range(n)]
    for t, frame in enumerate(frames):
        frame[20:50, (3 * t) % 90:(3 * t) % 90 + 20] = rng.integers(150, 255, 3)
    return write_video(tmp_path / f"v{seed}.mp4", frames, fps=10)


def test_several_decode_workers_give_the_features_of_one_and_record_the_device(tmp_path):
    videos = [(f"v{i}", _tiny_video(tmp_path, 40 + 16 * i, seed=i)) for i in range(3)]
    extractor = SnippetExtractor(ExtractionSettings(), batch_size=3, backend="torch", device="cpu")
    one = extract_videos(videos, tmp_path / "one", extractor, progress=False, decode_workers=1)
    three = extract_videos(videos, tmp_path / "three", extractor, progress=False, decode_workers=3)
    assert one["device"] == "cpu" and three["decode_workers"] == 3 and sorted(three["done"]) == ["v0", "v1", "v2"]
    a, b = FeatureStore(tmp_path / "one"), FeatureStore(tmp_path / "three")
    for vid, _ in videos:
        x, y = a.load(vid), b.load(vid)
        assert x.shape == y.shape
        assert np.linalg.norm(x - y) / np.linalg.norm(x) < 1e-4  # only the batches' composition differs
        entry = b.videos[vid]
        assert entry["device"] == "cpu" and entry["precision"] == "fp32" and entry["torch"] == torch.__version__


def _weak_items(rng, n=6) -> list[VideoItem]:
    from vadkit.features.extract import ExtractionSettings as Settings

    items = []
    for i in range(n):
        feats = rng.normal(0, 1, (4, F)).astype(np.float32)
        if i % 2:
            feats[1:3, :8] += 4.0
        items.append(VideoItem(id=f"v{i}", num_frames=64, label=i % 2, load_features=lambda f=feats: f,
                               extraction=asdict(Settings())))
    return items


def _arnet(device: str = "cpu") -> Detector:
    detector = build_detector("arnet", model="arnet_single", model_args={"feature_dim": F, "hidden_dim": 8},
                              max_seqlen=8, steps=4, per_class=2, threads=1, seed=0)
    return detector.to_device(device)


def test_model_files_hold_cpu_tensors_and_no_device(tmp_path):
    items = _weak_items(np.random.default_rng(0))
    detector = _arnet().fit(items, progress=False)
    assert detector.device_ == "cpu" and detector.precision_ == "fp32"
    detector.save(tmp_path / "model.pt")
    saved = torch.load(tmp_path / "model.pt", map_location=None, weights_only=True)
    tensors = [v for v in saved["state"]["model"].values() if isinstance(v, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert "device" not in saved["args"]  # the device is where a model runs, not what it is
    again = Detector.load(tmp_path / "model.pt").to_device("cpu")
    np.testing.assert_allclose(again.score(items[1]).values, detector.score(items[1]).values, rtol=1e-6)


def test_k_nn_stays_on_the_cpu_and_says_so():
    knn = build_detector("knn", k=1)
    assert knn.to_device("cpu").device_ == "cpu" and knn.device_modules() == []
    with pytest.raises(ValueError, match="fp16 is for features only"):
        _arnet().to_device("cpu", precision="fp16")


# ---------------------------------------------------------------------------------------------------------------
# On a GPU (bench/gpu_check.sh)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_features_equal_the_cpu_s_at_fp32(tmp_path):
    video = _tiny_video(tmp_path, 48)
    from vadkit.io import open_video

    cpu = SnippetExtractor(ExtractionSettings(), batch_size=2, backend="torch", device="cpu")
    gpu = SnippetExtractor(ExtractionSettings(), batch_size=2, backend="torch", device="cuda")
    with open_video(video) as a, open_video(video) as b:
        x, y = cpu.extract(a), gpu.extract(b)
    assert gpu.backend == "torch" and str(gpu.device).startswith("cuda")
    rel = np.linalg.norm(x - y, axis=1) / np.linalg.norm(x, axis=1)
    assert rel.max() < 1e-4, rel.max()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["tf32", "bf16", "fp16"])
def test_gpu_faster_precisions_run_and_stay_close(tmp_path, precision):
    video = _tiny_video(tmp_path, 32)
    from vadkit.io import open_video

    ref = SnippetExtractor(ExtractionSettings(), batch_size=2, backend="torch", device="cuda")
    fast = SnippetExtractor(ExtractionSettings(precision=precision), batch_size=2, backend="torch", device="cuda")
    with open_video(video) as a, open_video(video) as b:
        x, y = ref.extract(a), fast.extract(b)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    assert (np.linalg.norm(x - y, axis=1) / np.linalg.norm(x, axis=1)).max() < 5e-2


@pytest.mark.gpu
def test_gpu_trained_model_loads_on_the_cpu_and_back(tmp_path):
    items = _weak_items(np.random.default_rng(1))
    detector = _arnet("cuda").fit(items, progress=False)
    assert detector.device_.startswith("cuda") and next(detector.model.parameters()).is_cuda
    on_gpu = detector.score(items[1]).values
    detector.save(tmp_path / "model.pt")
    saved = torch.load(tmp_path / "model.pt", map_location=None, weights_only=True)
    assert all(v.device.type == "cpu" for v in saved["state"]["model"].values() if isinstance(v, torch.Tensor))
    cpu = Detector.load(tmp_path / "model.pt")
    assert cpu.device_ == "cpu"
    np.testing.assert_allclose(cpu.score(items[1]).values, on_gpu, rtol=1e-4, atol=1e-6)
    back = Detector.load(tmp_path / "model.pt").to_device("cuda")
    np.testing.assert_allclose(back.score(items[1]).values, on_gpu, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
def test_gpu_cuda_index_past_the_last_device_is_one_clear_line():
    with pytest.raises(DeviceError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
