"""sEnDec: parameter counts, shapes, gradients, temporal semantics, Keras ConvLSTM, and parity with the Keras checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vadkit.models import get_model, list_models
from vadkit.models.layers.keras_convlstm import KerasConvLSTM2d, keras_hard_sigmoid
from vadkit.models.recon.sendec import SEnDec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PARITY_TOLERANCE = 1e-4


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_registered_and_parameter_counts():
    assert "sendec" in list_models()
    checkpoint_config = get_model("sendec", in_channels=3, out_channels=1)
    assert isinstance(checkpoint_config, SEnDec)
    assert _trainable(checkpoint_config) == 223_265  # the released checkpoint / paper's 0.224 M
    assert _trainable(SEnDec(in_channels=3)) == 223_265 + 1_154  # out_channels defaults to in_channels
    running = sum(b.numel() for name, b in checkpoint_config.named_buffers() if "running" in name)
    assert running == 512


def test_forward_shape_range_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = SEnDec(in_channels=3)
    x = torch.rand(2, 3, 4, 64, 96)
    y = model(x)
    assert y.shape == (2, 3, 4, 64, 96)
    assert torch.isfinite(y).all() and (y > 0).all() and (y < 1).all()
    torch.nn.functional.mse_loss(y, x).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_grayscale_and_other_clip_lengths():
    model = SEnDec(in_channels=1, clip_length=2, dropout=0.3).eval()
    assert model(torch.rand(1, 1, 2, 32, 48)).shape == (1, 1, 2, 32, 48)
    assert model.dropout.p == 0.3


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 4, 60, 96), "divisible by 16"),
        ((1, 3, 4, 64, 90), "divisible by 16"),
        ((1, 1, 4, 64, 96), "3 input channels"),
        ((3, 4, 64, 96), r"\(B, C, T, H, W\)"),
    ],
)
def test_rejects_bad_inputs(shape, message):
    with pytest.raises(ValueError, match=message):
        SEnDec(in_channels=3)(torch.zeros(shape))


def test_rejects_wrong_clip_length_and_bad_arguments():
    with pytest.raises(ValueError, match="clip length T=4"):
        SEnDec(clip_length=4)(torch.zeros(1, 3, 2, 32, 32))
    with pytest.raises(ValueError, match="dropout"):
        SEnDec(dropout=1.0)


def test_output_at_t_sees_frames_up_to_t_plus_one_only():
    # encoder transposed convs and the ConvLSTM are causal, the head looks one frame ahead
    torch.manual_seed(0)
    model = SEnDec(in_channels=3).eval()
    x = torch.rand(1, 3, 4, 32, 48)
    changed = x.clone()
    changed[:, :, 3] = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        diff = (model(x) - model(changed)).abs().amax(dim=(0, 1, 3, 4))  # (T,)
    assert diff[0] == 0 and diff[1] == 0
    assert diff[2] > 0 and diff[3] > 0


def test_keras_hard_sigmoid_is_keras2():
    z = torch.tensor([-3.0, -2.5, 0.0, 1.0, 2.5, 3.0])
    assert keras_hard_sigmoid(z).tolist() == pytest.approx([0.0, 0.0, 0.5, 0.7, 1.0, 1.0])


def test_convlstm_recurrence_by_hand():
    # one channel, 1x1 kernels: every pixel runs the scalar Keras LSTM equations
    cell = KerasConvLSTM2d(1, 1, kernel_size=1, activation="relu")
    w = [0.5, -1.0, 2.0, 1.5]  # input weights, gate order i, f, c, o
    b = [0.1, 1.0, 0.0, -0.2]  # forget bias 1 (unit_forget_bias)
    u = [0.3, 0.2, -0.5, 1.0]  # recurrent weights
    with torch.no_grad():
        cell.input_conv.weight.copy_(torch.tensor(w).view(4, 1, 1, 1))
        cell.input_conv.bias.copy_(torch.tensor(b))
        cell.recurrent_conv.weight.copy_(torch.tensor(u).view(4, 1, 1, 1))
    xs = [1.0, 0.6]
    hard = lambda z: min(max(0.2 * z + 0.5, 0.0), 1.0)  # noqa: E731
    relu = lambda z: max(z, 0.0)  # noqa: E731
    h = c = 0.0
    expected = []
    for x in xs:
        i, f, g, o = (w[k] * x + b[k] + u[k] * h for k in range(4))
        c = hard(f) * c + hard(i) * relu(g)
        h = hard(o) * relu(c)
        expected.append(h)
    out = cell(torch.tensor(xs).view(1, 1, 2, 1, 1))
    assert out.shape == (1, 1, 2, 1, 1)
    assert out.flatten().tolist() == pytest.approx(expected, abs=1e-6)


def test_convlstm_defaults_and_strided_shape():
    cell = KerasConvLSTM2d(32, 16, stride=2, activation="relu")
    assert cell.input_conv.bias[16:32].tolist() == [1.0] * 16  # forget bias 1
    assert cell.input_conv.bias[:16].abs().sum() == 0
    assert cell(torch.rand(2, 32, 3, 30, 40)).shape == (2, 16, 3, 15, 20)
    last = KerasConvLSTM2d(4, 2, return_sequences=False)
    assert last(torch.rand(1, 4, 3, 5, 5)).shape == (1, 2, 5, 5)


# ---------------------------------------------------------------------- Keras checkpoint


@pytest.fixture(scope="module")
def checkpoint(shared_data: Path) -> Path:
    path = shared_data / "sendec_keras" / "anomaly_mdel.h5"
    if not path.is_file():
        pytest.skip(f"sEnDec Keras checkpoint not found at {path}")
    return path


@pytest.fixture(scope="module")
def keras_model(checkpoint: Path) -> SEnDec:
    return SEnDec.from_keras_h5(checkpoint)


def test_keras_import_reads_the_configuration(keras_model: SEnDec):
    assert (keras_model.in_channels, keras_model.out_channels) == (3, 1)
    assert keras_model.dropout.p == pytest.approx(0.3)
    assert not keras_model.training
    assert _trainable(keras_model) == 223_265
    # the checkpoint's ConvLSTM forget bias is still at its initial 1.0
    torch.testing.assert_close(keras_model.bottleneck.input_conv.bias[16:32], torch.ones(16))


@pytest.mark.parametrize("name", ["sendec_t1.npz", "sendec_t4.npz"])
def test_keras_parity(keras_model: SEnDec, name: str):
    # made by tests/fixtures/make_sendec_fixture.py with TensorFlow 2.15 on real Ped2 frames
    data = np.load(FIXTURES / name)
    x = torch.from_numpy(data["frames"]).float().div(255).permute(3, 0, 1, 2)[None]  # (T,H,W,3) -> (1,3,T,H,W)
    captured = {}
    hook = keras_model.bottleneck.register_forward_hook(lambda m, i, out: captured.setdefault("lstm", out))
    try:
        with torch.no_grad():
            y = keras_model(x)
    finally:
        hook.remove()
    recon = torch.from_numpy(data["recon"]).permute(3, 0, 1, 2)[None]  # (T,H,W,C) -> (1,C,T,H,W)
    lstm = torch.from_numpy(data["bottleneck"]).permute(3, 0, 1, 2)[None]
    assert y.shape == recon.shape
    assert (y - recon).abs().max().item() < PARITY_TOLERANCE
    assert (captured["lstm"] - lstm).abs().max().item() < PARITY_TOLERANCE
    assert recon.std() > 0.1  # the reference is not a constant image


def test_keras_import_maps_by_graph_not_names(checkpoint: Path, tmp_path: Path):
    import h5py

    copy = tmp_path / "swapped.h5"
    shutil.copyfile(checkpoint, copy)
    with h5py.File(copy, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        layers = {layer["name"]: layer for layer in config["config"]["layers"]}
        nodes = layers["concatenate_3"]["inbound_nodes"][0]
        nodes.reverse()  # skip ++ up instead of up ++ skip: a different network with the same names
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="Concatenate"):
        SEnDec.from_keras_h5(copy)
