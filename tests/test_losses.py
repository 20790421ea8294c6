"""Losses against hand-computed cases; padding never reaches a loss."""

import math

import pytest
import torch

from vadkit.losses import (
    aed_loss,
    arnet_loss,
    bas_loss,
    center_loss,
    kmax_mil_loss,
    sequence_mask,
    topk_mean_pool,
    weak_loss,
)


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_sequence_mask():
    mask = sequence_mask(torch.tensor([3, 1]), 2, 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]
    assert sequence_mask(None, 2, 3).all()


@pytest.mark.parametrize(
    "seq_len, match",
    [([0, 2], r"\[1, 4\]"), ([5, 2], r"\[1, 4\]"), ([1, 2, 3], r"\(2,\)"), ([1.0, 2.0], "integer")],
)
def test_sequence_mask_rejects_bad_lengths(seq_len, match):
    with pytest.raises(ValueError, match=match):
        sequence_mask(torch.tensor(seq_len), 2, 4)


# video 0: abnormal, 5 real snippets (+ a padded 0.99 that must never be picked);
# video 1: normal, 2 real snippets.
MIL_SCORES = torch.tensor([[0.9, 0.2, 0.6, 0.1, 0.5, 0.99], [0.3, 0.7, 0.95, 0.95, 0.95, 0.95]])
MIL_LEN = torch.tensor([5, 2])
MIL_LABELS = torch.tensor([1.0, 0.0])


def test_kmax_mil_hand_case():
    # k=4: k_0 = ceil(5/4) = 2 -> {0.9, 0.6} vs 1; k_1 = ceil(2/4) = 1 -> {0.7} vs 0; mean over 3 instances.
    expected = (_bce(0.9, 1) + _bce(0.6, 1) + _bce(0.7, 0)) / 3
    loss = kmax_mil_loss(MIL_SCORES, MIL_LEN, MIL_LABELS, k=4)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_kmax_mil_k1_takes_every_real_snippet():
    real = [0.9, 0.2, 0.6, 0.1, 0.5]
    expected = (sum(_bce(p, 1) for p in real) + _bce(0.3, 0) + _bce(0.7, 0)) / 7
    assert kmax_mil_loss(MIL_SCORES, MIL_LEN, MIL_LABELS, k=1).item() == pytest.approx(expected, rel=1e-6)


def test_kmax_mil_full_rows_when_no_lengths():
    scores = torch.tensor([[0.2, 0.8, 0.4]])
    # k=2: ceil(3/2) = 2 -> {0.8, 0.4} vs 0
    expected = (_bce(0.8, 0) + _bce(0.4, 0)) / 2
    assert kmax_mil_loss(scores, None, torch.tensor([0.0]), k=2).item() == pytest.approx(expected, rel=1e-6)


def test_kmax_mil_ignores_padding_values_and_gradients():
    scores = MIL_SCORES.clone().requires_grad_(True)
    loss = kmax_mil_loss(scores, MIL_LEN, MIL_LABELS)
    loss.backward()
    mask = sequence_mask(MIL_LEN, 2, 6)
    assert (scores.grad[~mask] == 0).all()
    other = MIL_SCORES.clone()
    other[~mask] = torch.rand(int((~mask).sum()))
    assert kmax_mil_loss(other, MIL_LEN, MIL_LABELS).item() == loss.item()


def test_kmax_mil_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        kmax_mil_loss(torch.rand(2, 3, 1), None, torch.zeros(2))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\)"):
        kmax_mil_loss(torch.rand(2, 3), None, torch.zeros(2, 1))
    with pytest.raises(ValueError, match="k must be"):
        kmax_mil_loss(torch.rand(2, 3), None, torch.zeros(2), k=0)


# video 0: normal, real [0.2, 0.4, 0.9]; video 1: abnormal (ignored); video 2: normal with one real snippet.
CENTER_SCORES = torch.tensor([[0.2, 0.4, 0.9, 0.7], [0.1, 0.9, 0.1, 0.9], [0.6, 0.0, 1.0, 0.3]])
CENTER_LEN = torch.tensor([3, 4, 1])
CENTER_LABELS = torch.tensor([0.0, 1.0, 0.0])


def test_center_loss_hand_case():
    # video 0: mean 0.5, squared deviations 0.09 + 0.01 + 0.16 = 0.26, unbiased / (3-1) = 0.13;
    # video 2: one snippet -> 0 by definition. Mean over the two normal videos: 0.065.
    loss = center_loss(CENTER_SCORES, CENTER_LEN, CENTER_LABELS)
    assert loss.item() == pytest.approx(0.065, rel=1e-6)
    assert torch.var(CENTER_SCORES[0, :3]).item() == pytest.approx(0.13, rel=1e-6)


def test_center_loss_ignores_padding_even_nan():
    base = center_loss(CENTER_SCORES, CENTER_LEN, CENTER_LABELS)
    mask = sequence_mask(CENTER_LEN, 3, 4)
    changed = CENTER_SCORES.clone()
    changed[~mask] = torch.tensor([5.0, -3.0, 2.0, float("nan")])
    changed.requires_grad_(True)
    loss = center_loss(changed, CENTER_LEN, CENTER_LABELS)
    assert loss.item() == pytest.approx(base.item(), rel=1e-7)
    loss.backward()
    assert torch.isfinite(changed.grad).all()
    assert (changed.grad[~mask] == 0).all()
    assert (changed.grad[1] == 0).all()  # abnormal video untouched


def test_center_loss_without_normal_videos_is_zero_and_differentiable():
    scores = torch.rand(2, 3, requires_grad=True)
    loss = center_loss(scores, None, torch.ones(2))
    assert loss.item() == 0.0
    loss.backward()


def test_arnet_loss_combines_terms():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.6, 0.0]])
    seq_len, labels = torch.tensor([3, 2]), torch.tensor([1.0, 0.0])
    # MIL k=4: ceil(3/4) = 1 -> 0.9 vs 1; ceil(2/4) = 1 -> 0.6 vs 0.
    mil = (_bce(0.9, 1) + _bce(0.6, 0)) / 2
    # centre: normal video [0.2, 0.6]: mean 0.4, (0.04 + 0.04) / 1 = 0.08.
    center = 0.08
    loss = arnet_loss(scores, seq_len, labels)
    assert loss.item() == pytest.approx(mil + 20 * center, rel=1e-6)
    loss = arnet_loss(scores, seq_len, labels, lambda_mil=0.5, lambda_center=2.0)
    assert loss.item() == pytest.approx(0.5 * mil + 2 * center, rel=1e-6)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _bas_outputs() -> dict[str, torch.Tensor]:
    # video 0 abnormal with 2 snippets, video 1 normal with 1 snippet (second column padding: 9.0).
    cas = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[0.5, 0.5], [9.0, 9.0]]])
    return {
        "scores": torch.sigmoid(cas[..., 0] - cas[..., 1]),
        "cas": cas,
        "base_cas": torch.tensor([[[2.0, 1.0], [0.0, 0.0]], [[-1.0, 1.0], [9.0, 9.0]]]),
        "attention": torch.tensor([[0.9, 0.1], [0.3, 0.99]]),
    }


def test_topk_mean_pool_hand_case():
    values = torch.tensor([[1.0, 5.0, 3.0, 2.0, 4.0], [7.0, 1.0, 9.0, 9.0, 9.0]])[..., None]  # (2, 5, 1)
    # k=2: video 0 (5 real) -> mean of top 3 = (5+4+3)/3; video 1 (2 real) -> top 1 = 7 (padding 9s ignored)
    pooled = topk_mean_pool(values, torch.tensor([5, 2]), k=2)
    assert pooled.shape == (2, 1)
    assert pooled[:, 0].tolist() == pytest.approx([4.0, 7.0])


def test_bas_loss_hand_case():
    seq_len, labels = torch.tensor([2, 1]), torch.tensor([1.0, 0.0])
    # k=4 -> k_b = 1: pooled logits are the per-channel maxima over real snippets.
    # base: video 0 pooled [2, 1] vs [0.5, 0.5]; video 1 pooled [-1, 1] vs [0, 1].
    base = (0.5 * (_softplus(-1.0) + _softplus(1.0)) + _softplus(-2.0)) / 2
    # suppressed: video 0 pooled [1, 2] vs [1, 0]; the normal video has no target.
    suppressed = _softplus(1.0)
    # MIL on the scores: video 0 top score sigmoid(1) vs 1, video 1 sigmoid(0) = 0.5 vs 0.
    mil = (_softplus(-1.0) + math.log(2.0)) / 2
    sparsity = ((0.9 + 0.1) / 2 + 0.3) / 2
    expected = base + suppressed + 1e-4 * sparsity + mil
    assert bas_loss(_bas_outputs(), seq_len, labels).item() == pytest.approx(expected, rel=1e-6)
    assert weak_loss(_bas_outputs(), seq_len, labels).item() == pytest.approx(expected, rel=1e-6)
    doubled_mil = bas_loss(_bas_outputs(), seq_len, labels, lambda_mil=2.0).item()
    assert doubled_mil == pytest.approx(expected + mil, rel=1e-6)


def test_bas_loss_names_missing_outputs():
    outputs = _bas_outputs()
    del outputs["attention"]
    with pytest.raises(KeyError, match="attention"):
        bas_loss(outputs, None, torch.tensor([1.0, 0.0]))


def test_weak_loss_is_arnet_loss_without_attention():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.6, 0.0]])
    seq_len, labels = torch.tensor([3, 2]), torch.tensor([1.0, 0.0])
    expected = arnet_loss(scores, seq_len, labels, k=2)
    assert weak_loss({"scores": scores}, seq_len, labels, k=2).item() == expected.item()


def test_aed_loss_hand_case():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    video_class = torch.tensor([0, 1])
    frame_scores = torch.tensor([[0.5, 0.9], [0.2, 0.0]])
    frame_labels = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    ce = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2
    smooth_l1 = (0.5 * 0.5**2 + 0.5 * 0.1**2 + 0.5 * 0.2**2 + 0.0) / 4  # all |d| < beta = 1
    loss = aed_loss(logits, frame_scores, video_class, frame_labels)
    assert loss.item() == pytest.approx(ce + 10 * smooth_l1, rel=1e-6)
    loss = aed_loss(logits, frame_scores, video_class, frame_labels, lambda_cls=2.0, lambda_reg=0.0)
    assert loss.item() == pytest.approx(2 * ce, rel=1e-6)


def test_aed_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="does not match"):
        aed_loss(torch.zeros(2, 3), torch.zeros(2, 16), torch.zeros(2, dtype=torch.long), torch.zeros(2, 32))
    with pytest.raises(ValueError, match=r"video_class of shape \(2,\)"):
        aed_loss(torch.zeros(2, 3), torch.zeros(2, 16), torch.zeros(3, dtype=torch.long), torch.zeros(2, 16))
