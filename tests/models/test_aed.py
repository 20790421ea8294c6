"""AED / AED_T and their ConvLSTM: shapes, exact parameter count, gate order, gradients."""

import math

import pytest
import torch

import vadkit.models.weak.aed as aed_module
from vadkit.losses import aed_loss
from vadkit.models import MODELS
from vadkit.models.layers.convlstm import ConvLSTM, ConvLSTMCell
from vadkit.models.weak.aed import AED, features_to_maps

AED_NAMES = [name for name in MODELS.list() if MODELS.get(name).__module__ == aed_module.__name__]
SMALL = dict(feature_dim=64, hidden=8, num_classes=3, window=3, embed_dim=32, head_dim=16)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registered_names():
    assert sorted(AED_NAMES) == ["aed", "aed_t"]
    assert len(MODELS.get("aed")(**SMALL).convlstm.cells) == 1
    assert len(MODELS.get("aed_t")(**SMALL).convlstm.cells) == 2


def test_aed_t_shapes_of_the_paper_configuration():
    torch.manual_seed(0)
    model = MODELS.get("aed_t")(feature_dim=2048, window=5, num_classes=14).eval()
    with torch.no_grad():
        out = model(torch.randn(60, 5, 2048))
    assert out["logits"].shape == (60, 14)
    assert out["frame_scores"].shape == (60, 80)
    assert torch.isfinite(out["logits"]).all()
    assert ((out["frame_scores"] > 0) & (out["frame_scores"] < 1)).all()


def test_aed_t_parameter_count_is_exact():
    model = AED(feature_dim=2048, num_layers=2, window=5, num_classes=14)
    convlstm_layer = (128 + 128) * 4 * 128 * 3 * 3 + 4 * 128  # 1,180,160 each
    fc_down = 2048 * 1024 + 1024
    classifier = 1024 * 512 + 512 * 14
    regressor = 1024 * 512 + 512 * 80
    assert _count(model.convlstm) == 2 * convlstm_layer
    assert _count(model.fc_down) == fc_down
    assert _count(model.classifier) == classifier
    assert _count(model.regressor) == regressor
    assert _count(model) == 5_555_200


@pytest.mark.parametrize("feature_dim", [1024, 2048])
def test_one_layer_aed_takes_rgb_and_combine_features(feature_dim):
    model = MODELS.get("aed")(feature_dim=feature_dim, window=5, num_classes=2)
    assert model.convlstm.cells[0].in_channels == feature_dim // 16
    out = model(torch.randn(2, 5, feature_dim))
    assert out["logits"].shape == (2, 2) and out["frame_scores"].shape == (2, 80)


@pytest.mark.parametrize("name", AED_NAMES)
def test_every_parameter_receives_a_gradient(name):
    torch.manual_seed(0)
    model = MODELS.get(name)(**SMALL).train()
    out = model(torch.randn(4, 3, 64))
    assert out["frame_scores"].shape == (4, 48)
    loss = aed_loss(out["logits"], out["frame_scores"], torch.tensor([0, 1, 2, 0]), torch.rand(4, 48).round())
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, f"{param_name}: bad gradient"


def test_features_fold_row_major_into_4x4_maps():
    x = torch.arange(2 * 3 * 64, dtype=torch.float32).reshape(2, 3, 64)
    maps = features_to_maps(x)
    assert maps.shape == (2, 3, 4, 4, 4)
    for c, r, k in [(0, 0, 0), (1, 2, 3), (3, 3, 1)]:
        assert maps[1, 2, c, r, k] == x[1, 2, 16 * c + 4 * r + k]


def test_errors_name_expected_and_found():
    with pytest.raises(ValueError, match="divisible by 16.*1000"):
        AED(feature_dim=1000)
    with pytest.raises(ValueError, match="divisible by 16.*F=20"):
        features_to_maps(torch.zeros(1, 2, 20))
    model = AED(**SMALL)
    with pytest.raises(ValueError, match=r"\(B, 3, 64\) \(batch-first\), got \(3, 2, 64\)"):
        model(torch.zeros(3, 2, 64))


def test_convlstm_cell_gate_order_is_in_forget_out_cell():
    cell = ConvLSTMCell(2, 1, kernel_size=3)
    with torch.no_grad():
        cell.gates.weight.zero_()
        cell.gates.bias.copy_(torch.tensor([0.3, -0.7, 1.1, 0.5]))  # in, forget, out, cell
    h0, c0 = torch.full((1, 1, 2, 2), 0.2), torch.full((1, 1, 2, 2), -0.4)
    h, c = cell(torch.randn(1, 2, 2, 2), (h0, c0))

    def sigmoid(v):
        return 1 / (1 + math.exp(-v))

    c_expected = sigmoid(-0.7) * -0.4 + sigmoid(0.3) * math.tanh(0.5)
    h_expected = sigmoid(1.1) * math.tanh(c_expected)
    assert torch.allclose(c, torch.full_like(c, c_expected), atol=1e-6)
    assert torch.allclose(h, torch.full_like(h, h_expected), atol=1e-6)


def test_convlstm_unrolls_stacked_cells():
    torch.manual_seed(0)
    layer = ConvLSTM(3, 5, num_layers=2)
    x = torch.randn(2, 4, 3, 4, 4)
    outputs, states = layer(x)
    assert outputs.shape == (2, 4, 5, 4, 4)
    state0 = state1 = None
    for t in range(4):
        state0 = layer.cells[0](x[:, t], state0)
        state1 = layer.cells[1](state0[0], state1)
        assert torch.allclose(outputs[:, t], state1[0], atol=1e-6)
    assert torch.allclose(states[0][1], state0[1], atol=1e-6)
    assert torch.allclose(states[1][0], outputs[:, -1])


def test_convlstm_rejects_even_kernels_and_wrong_inputs():
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(2, 2, kernel_size=2)
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        ConvLSTM(2, 2)(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\), got \(1, 3, 4, 4\)"):
        ConvLSTMCell(2, 2)(torch.zeros(1, 3, 4, 4))
