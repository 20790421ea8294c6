"""STATE: shapes of both configurations, attention over key frames, loss, and the test-time perturbation."""

from __future__ import annotations

import pytest
import torch

from vadkit.models import get_model, list_models
from vadkit.models.layers.conv_attention import (
    ConvAttentionHead,
    ConvTransformerEncoder,
    ConvTransformerLayer,
    SineFramePositions,
)
from vadkit.models.recon.state import STATE, cube_errors, perturb_step, perturbed_errors, state_loss, state_objective


def tiny(**overrides) -> STATE:
    config = dict(hidden=(4, 8, 8), heads=2, layers=1, norm_groups=2)
    config.update(overrides)
    return STATE(**config)


def test_registered():
    assert {"state", "state_cpu"} <= set(list_models())


def test_full_size_configuration_shapes_and_parameter_count():
    torch.manual_seed(0)
    model = get_model("state")
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 21, 32, 32))
    assert out.raw.shape == (2, 7, 3, 32, 32) and out.flow.shape == (2, 7, 2, 32, 32)
    assert torch.isfinite(out.raw).all() and torch.isfinite(out.flow).all()
    # the spec counts ≈1.66 M per branch including the original's unused template layer (261,124) and unused
    # per-head feed-forwards (4 x 9,248 per layer); without them a branch has 1,284,047 parameters
    per_branch = sum(p.numel() for p in model.raw_branch.parameters())
    assert per_branch == 1_656_147 - 261_124 - 3 * 4 * 9_248
    assert sum(p.numel() for p in model.raw_branch.encoder.parameters()) == 287_904
    assert sum(p.numel() for p in model.raw_branch.decoder.parameters()) == 323_427


def test_cpu_configuration_shapes():
    model = get_model("state_cpu")
    assert model.hidden == (16, 32, 64) and len(model.raw_branch.transformer.layers) == 2
    out = model(torch.rand(3, 7, 3, 32, 32))
    assert out.raw.shape == (3, 7, 3, 32, 32) and out.flow.shape == (3, 7, 2, 32, 32)


def test_wrong_input_shape_is_named():
    with pytest.raises(ValueError, match=r"expected input \(B, 21, H, W\)"):
        tiny()(torch.rand(2, 20, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        tiny()(torch.rand(2, 21, 30, 30))


def test_attention_weights_sum_to_one_over_key_frames():
    torch.manual_seed(0)
    head = ConvAttentionHead(channels=8)
    x = torch.randn(2, 7, 8, 8, 8)
    out, weights = head(x, torch.randn(7, 8))
    assert out.shape == x.shape and weights.shape == (2, 7, 7, 8, 8)  # (B, query, key, H, W)
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(2, 7, 8, 8))
    assert (weights >= 0).all()
    encoder = ConvTransformerEncoder(channels=16, heads=4, layers=2, norm_groups=4)
    maps = encoder.attention_maps(torch.randn(1, 7, 16, 8, 8))
    assert len(maps) == 2 and len(maps[0]) == 4
    for w in (w for layer in maps for w in layer):
        torch.testing.assert_close(w.sum(dim=2), torch.ones(1, 7, 8, 8))


def test_fast_pair_scores_equal_the_convolution_of_the_concatenated_pair():
    """The head computes conv([Q_i; K_j]) as conv_q(Q_i) + conv_k(K_j): check against the literal pairwise form."""
    torch.manual_seed(1)
    head = ConvAttentionHead(channels=4)
    x, pos = torch.randn(1, 3, 4, 6, 6), torch.randn(3, 4)
    _, weights = head(x, pos)
    frames = x[0]
    q = torch.nn.functional.leaky_relu(head.query(frames), 0.2) + pos[:, :, None, None]
    k = torch.nn.functional.leaky_relu(head.key_value(frames), 0.2) + pos[:, :, None, None]
    logits = torch.stack([torch.stack([head.score(torch.cat([q[i], k[j]])[None])[0, 0] for j in range(3)])
                          for i in range(3)])  # (query, key, H, W)
    expected = torch.softmax(torch.nn.functional.leaky_relu(logits, 0.2), dim=1)
    torch.testing.assert_close(weights[0], expected)


def test_attention_mixes_frames_and_positions_matter():
    torch.manual_seed(0)
    layer = ConvTransformerLayer(channels=8, heads=2, norm_groups=2)
    x = torch.randn(1, 5, 8, 4, 4)
    y = layer(x)
    x2 = x.clone()
    x2[0, 4] += 1.0  # change only the last frame
    assert not torch.allclose(layer(x2)[0, 0], y[0, 0])  # frame 0's output depends on frame 4
    encoder = ConvTransformerEncoder(channels=8, heads=2, layers=1, norm_groups=2)
    torch.nn.init.normal_(encoder.positions.embedding.weight)
    assert not torch.allclose(encoder(x), encoder(x.flip(1)).flip(1))  # order matters with positions


def test_sine_positions_sines_first_then_cosines():
    table = SineFramePositions(dim=4, max_frames=3)(3)
    p = torch.arange(3.0)
    omega = torch.tensor([1.0, 10000 ** (-2 / 4)])  # dims 0,1 -> 1 ; dims 2,3 -> 10000^(-2*1/4)
    expected = 0.5 * torch.stack([torch.sin(p * omega[0]), torch.sin(p * omega[1]),
                                  torch.cos(p * omega[0]), torch.cos(p * omega[1])], dim=1)
    torch.testing.assert_close(table, expected)
    with pytest.raises(ValueError, match="covers 1..3 frames"):
        SineFramePositions(dim=4, max_frames=3)(4)


def test_every_parameter_gets_a_gradient_from_the_loss():
    torch.manual_seed(0)
    model = tiny(layers=2)
    raw, flow = torch.rand(2, 21, 32, 32), torch.randn(2, 7, 2, 32, 32)
    state_loss(model(raw), raw, flow).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_loss_is_the_weighted_sum_of_element_mean_squared_errors():
    torch.manual_seed(0)
    model = tiny()
    raw, flow = torch.rand(2, 21, 32, 32), torch.randn(2, 14, 32, 32)
    out = model(raw)
    mse_raw = ((out.raw - raw.reshape(2, 7, 3, 32, 32)) ** 2).mean()
    mse_flow = ((out.flow - flow.reshape(2, 7, 2, 32, 32)) ** 2).mean()
    torch.testing.assert_close(state_loss(out, raw, flow, 0.3, 2.0), 0.3 * mse_raw + 2.0 * mse_flow)
    e_raw, e_flow = cube_errors(out, raw, flow)
    assert e_raw.shape == (2,)
    torch.testing.assert_close(e_raw.mean() / (21 * 32 * 32), mse_raw)


def test_perturbation_step_lowers_the_error():
    torch.manual_seed(0)
    model = tiny(hidden=(8, 16, 16))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, eps=1e-7)
    raw, flow = torch.rand(8, 21, 32, 32), 0.5 * torch.randn(8, 7, 2, 32, 32)
    for _ in range(3):  # a few steps so that BatchNorm statistics and outputs are not those of a blank model
        optimizer.zero_grad()
        state_loss(model(raw), raw, flow).backward()
        optimizer.step()
    optimizer.zero_grad()  # parameter gradients back to None
    model.eval()
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        j_before = state_objective(model(raw), raw, flow)
    perturbed = perturb_step(model, raw, flow, eps=1e-3)
    assert perturbed.shape == raw.shape and not perturbed.requires_grad
    torch.testing.assert_close((perturbed - raw).abs().max(), torch.tensor(1e-3))
    with torch.no_grad():
        j_after = state_objective(model(perturbed), perturbed, flow)
    assert j_after < j_before
    uphill = 2 * raw - perturbed  # the opposite step raises it: the sign is the one that lowers the error
    with torch.no_grad():
        assert state_objective(model(uphill), uphill, flow) > j_before
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the model is untouched
    assert all(p.grad is None for p in model.parameters())  # no parameter gradients were made
    e_raw, e_flow = perturbed_errors(model, raw, flow, eps=1e-3)
    e_raw0, e_flow0 = perturbed_errors(model, raw, flow, eps=0)
    assert (e_raw + e_flow).sum() < (e_raw0 + e_flow0).sum()
