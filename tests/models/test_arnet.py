"""AR-Net: every registered variant by contract (timm-style), padding invariance, a tiny training run."""

import pytest
import torch
from sklearn.metrics import roc_auc_score

import vadkit.models.weak.arnet as arnet_module
from vadkit.losses import weak_loss
from vadkit.models import MODELS
from vadkit.models.weak.arnet import VARIANTS, ARNet

ARNET_NAMES = [name for name in MODELS.list() if MODELS.get(name).__module__ == arnet_module.__name__]
F, T = 24, 7
SEQ_LEN = torch.tensor([7, 4, 1])
LABELS = torch.tensor([1.0, 0.0, 0.0])


def _model(name: str, **kwargs) -> ARNet:
    torch.manual_seed(0)
    return MODELS.get(name)(feature_dim=F, **kwargs)


def _inputs(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(SEQ_LEN), T, F, generator=generator)
    mask = torch.arange(T)[None, :] < SEQ_LEN[:, None]
    return x * mask[..., None]  # zero padding, as the loaders produce


def test_every_variant_is_registered():
    assert sorted(ARNET_NAMES) == sorted(f"arnet_{variant}" for variant in VARIANTS)
    assert len(VARIANTS) == 6


@pytest.mark.parametrize("name", ARNET_NAMES)
def test_forward_shapes_range_and_no_nan(name):
    model = _model(name, hidden_dim=16).eval()
    out = model(_inputs(), SEQ_LEN)
    scores = out["scores"]
    assert scores.shape == (3, T)
    assert out["features"].shape == (3, T, 16)
    assert torch.isfinite(scores).all() and torch.isfinite(out["features"]).all()
    assert ((scores > 0) & (scores < 1)).all()
    if name == "arnet_bas":
        assert out["cas"].shape == out["base_cas"].shape == (3, T, 2)
        assert out["attention"].shape == out["base_scores"].shape == (3, T)
        assert ((out["attention"] > 0) & (out["attention"] < 1)).all()
        assert torch.allclose(scores, torch.softmax(out["cas"], dim=-1)[..., 0], atol=1e-6)


@pytest.mark.parametrize("name", ARNET_NAMES)
def test_every_parameter_receives_a_gradient(name):
    model = _model(name).train()
    out = model(_inputs(), SEQ_LEN)
    weak_loss(out, SEQ_LEN, LABELS).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{param_name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{param_name} has an all-zero gradient"


@pytest.mark.parametrize("name", ARNET_NAMES)
def test_padding_does_not_change_real_scores(name):
    """Holds for every variant: the input padding is zeroed, convolutions then see the same zero border a
    video has alone, and the LSTM runs on packed sequences."""
    model = _model(name).eval()
    x = _inputs()
    mask = torch.arange(T)[None, :] < SEQ_LEN[:, None]
    garbage = torch.where(mask[..., None], x, 100 * torch.randn_like(x))
    with torch.no_grad():
        clean = model(x, SEQ_LEN)["scores"]
        dirty = model(garbage, SEQ_LEN)["scores"]
        assert torch.allclose(clean[mask], dirty[mask], atol=1e-6)
        for b, length in enumerate(SEQ_LEN.tolist()):
            alone = model(x[b : b + 1, :length])["scores"][0]
            assert torch.allclose(clean[b, :length], alone, atol=1e-5), f"video {b} differs from its solo run"


@pytest.mark.parametrize("name", ["arnet_mean", "arnet_sequence", "arnet_concat"])
def test_conv_variants_mix_neighbouring_snippets(name):
    """The temporal variants really are temporal: changing one snippet moves its neighbours' scores."""
    model = _model(name).eval()
    x = _inputs()
    moved = x.clone()
    moved[0, 3] += 1.0
    with torch.no_grad():
        delta = (model(moved, SEQ_LEN)["scores"] - model(x, SEQ_LEN)["scores"])[0].abs()
    assert delta[2] > 0 and delta[4] > 0 and delta[0] == 0


def test_no_seq_len_means_full_rows():
    model = _model("arnet_lstm").eval()
    x = torch.randn(2, T, F)
    with torch.no_grad():
        assert torch.equal(model(x)["scores"], model(x, torch.tensor([T, T]))["scores"])


@pytest.mark.parametrize("name", ["arnet_single", "arnet_mean"])
def test_dropout_only_in_train_mode(name):
    model = _model(name, dropout=0.5)
    x = _inputs()
    model.eval()
    assert torch.equal(model(x, SEQ_LEN)["scores"], model(x, SEQ_LEN)["scores"])
    model.train()
    assert not torch.equal(model(x, SEQ_LEN)["scores"], model(x, SEQ_LEN)["scores"])


def test_single_matches_the_published_architecture():
    model = ARNet(feature_dim=2048)  # variant "single"
    assert sum(p.numel() for p in model.parameters()) == 2048 * 2048 + 2048 + 2048 + 1  # 4,198,401
    model = _model("arnet_single")
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            assert (module.bias == 0).all()
            bound = (6 / (module.in_features + module.out_features)) ** 0.5  # Xavier-uniform
            assert module.weight.abs().max() <= bound


def test_concat_projects_three_branches():
    model = _model("arnet_concat", hidden_dim=10)
    assert model.encoder.fusion.project.in_features == 30
    assert model(_inputs(), SEQ_LEN)["scores"].shape == (3, T)


def test_errors_name_expected_and_found():
    with pytest.raises(ValueError, match="expected one of: single, mean, sequence, concat, lstm, bas"):
        ARNet(feature_dim=F, variant="bidirectional")
    model = _model("arnet_single")
    with pytest.raises(ValueError, match=r"\(B, T, 24\), got \(3, 7, 5\)"):
        model(torch.zeros(3, T, 5))
    with pytest.raises(ValueError, match=r"\[1, 7\]"):
        model(_inputs(), torch.tensor([8, 1, 1]))
    with pytest.raises(ValueError, match="integer"):
        model(_inputs(), torch.tensor([7.0, 1.0, 1.0]))


def _synthetic_batch(generator, n_videos, direction):
    """Half abnormal videos with a 4-snippet anomaly (features shifted along ``direction``), half normal."""
    length = 20
    labels = torch.tensor([1.0, 0.0]).repeat(n_videos // 2)
    seq_len = torch.randint(length // 2, length + 1, (n_videos,), generator=generator)
    truth = torch.zeros(n_videos, length)
    for b in range(n_videos):
        if labels[b] == 1:
            start = int(torch.randint(0, int(seq_len[b]) - 3, (1,), generator=generator))
            truth[b, start : start + 4] = 1
    x = torch.randn(n_videos, length, direction.numel(), generator=generator) + 4.0 * truth[..., None] * direction
    mask = torch.arange(length)[None, :] < seq_len[:, None]
    return x * mask[..., None], seq_len, labels, truth, mask


def test_tiny_training_ranks_abnormal_snippets_higher():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(32, generator=generator), dim=0)
    model = MODELS.get("arnet_single")(feature_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(50):
        x, seq_len, labels, _, _ = _synthetic_batch(generator, 16, direction)
        loss = weak_loss(model(x, seq_len), seq_len, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, seq_len, labels, truth, mask = _synthetic_batch(generator, 32, direction)
    with torch.no_grad():
        scores = model(x, seq_len)["scores"]
    abnormal, normal = scores[mask & (truth == 1)], scores[mask & (truth == 0)]
    assert abnormal.mean() > normal.mean() + 0.1
    assert roc_auc_score(truth[mask].numpy(), scores[mask].numpy()) > 0.95
