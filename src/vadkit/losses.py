"""Training losses of the weak detectors (AR-Net family, AED).

All functions are pure: tensors in, a scalar tensor out. Shapes: ``B`` videos (or windows), ``T`` snippets per
padded row, ``seq_len[b]`` = number of real (unpadded) snippets of video ``b``; positions ``t >= seq_len[b]``
are padding and never influence any loss. Video ``labels`` are ``1`` (abnormal) or ``0`` (normal).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor


def sequence_mask(seq_len: Tensor | None, batch: int, length: int, device: torch.device | None = None) -> Tensor:
    """Which positions of a padded ``(B, T)`` batch are real.

    Args:
        seq_len: ``(B,)`` integer lengths in ``[1, T]``, or ``None`` (every row is full).
        batch: ``B``; length: ``T``; device: where the mask lives (default: ``seq_len``'s device or CPU).

    Returns:
        ``(B, T)`` bool, ``True`` at ``t < seq_len[b]``.
    """
    if seq_len is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    seq_len = torch.as_tensor(seq_len, device=device)
    if seq_len.shape != (batch,):
        raise ValueError(f"expected seq_len of shape ({batch},), got {tuple(seq_len.shape)}")
    if seq_len.dtype.is_floating_point or seq_len.dtype == torch.bool:
        raise ValueError(f"expected integer seq_len, got dtype {seq_len.dtype}")
    if batch and (int(seq_len.min()) < 1 or int(seq_len.max()) > length):
        raise ValueError(
            f"seq_len must lie in [1, {length}] (the padded length), got min {int(seq_len.min())}, "
            f"max {int(seq_len.max())}"
        )
    steps = torch.arange(length, device=seq_len.device)
    return steps[None, :] < seq_len[:, None]  # (B, T)


def _check_scores(name: str, scores: Tensor) -> tuple[int, int]:
    if scores.dim() != 2:
        raise ValueError(f"expected {name} of shape (B, T), got {tuple(scores.shape)}")
    return scores.shape[0], scores.shape[1]


def _check_labels(labels: Tensor, batch: int, like: Tensor) -> Tensor:
    labels = torch.as_tensor(labels, device=like.device)
    if labels.shape != (batch,):
        raise ValueError(f"expected video labels of shape ({batch},), got {tuple(labels.shape)}")
    return labels.to(like.dtype)


def kmax_mil_loss(scores: Tensor, seq_len: Tensor | None, labels: Tensor, k: int = 4) -> Tensor:
    """Dynamic k-max multiple-instance loss (AR-Net ``KMXMILL_individual``).

    For each video the ``k_b = ceil(seq_len[b] / k)`` highest *real* scores are selected and each is pushed
    towards the video label with binary cross-entropy. The loss is the mean over all selected instances of
    the batch, so a video weighs in proportion to its ``k_b``.

    Args:
        scores: ``(B, T)`` snippet scores in [0, 1].
        seq_len: ``(B,)`` real lengths, or ``None`` for full rows.
        labels: ``(B,)`` video labels in [0, 1].
        k: divisor of the length (``k=4``: the top quarter of every video).

    Returns:
        scalar tensor.
    """
    batch, length = _check_scores("scores", scores)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    labels = _check_labels(labels, batch, scores)
    mask = sequence_mask(seq_len, batch, length, scores.device)  # (B, T)
    k_b = (mask.sum(dim=1) + k - 1) // k  # (B,) ceil(T_b / k) >= 1
    # Padding is ranked below every real score (real scores are >= 0), so the first k_b ranks are real.
    ranked = torch.where(mask, scores, torch.full_like(scores, -1.0)).sort(dim=1, descending=True).values
    top = ranked[:, : int(k_b.max())]  # (B, K)
    selected = torch.arange(top.shape[1], device=scores.device)[None, :] < k_b[:, None]  # (B, K)
    safe = torch.where(selected, top, torch.full_like(top, 0.5))  # unselected slots: any valid probability
    bce = F.binary_cross_entropy(safe, labels[:, None].expand_as(safe), reduction="none")  # (B, K)
    return (bce * selected).sum() / selected.sum()


def _masked_variance(scores: Tensor, mask: Tensor) -> Tensor:
    """Unbiased variance of each row over its real positions; ``0`` for rows with one real position.

    ``(B, T)`` scores and mask -> ``(B,)``.
    """
    count = mask.sum(dim=1).to(scores.dtype)  # (B,)
    real = torch.where(mask, scores, torch.zeros_like(scores))  # padding (even NaN) -> 0
    mean = real.sum(dim=1) / count  # (B,)
    squared = torch.where(mask, (real - mean[:, None]) ** 2, torch.zeros_like(scores))  # (B, T)
    return squared.sum(dim=1) / (count - 1).clamp(min=1)


def center_loss(scores: Tensor, seq_len: Tensor | None, labels: Tensor) -> Tensor:
    """AR-Net centre loss: pull the scores of each normal video towards their own mean.

    For every normal video (label 0) the unbiased variance (denominator ``T_b - 1``, like ``torch.var``) of its
    ``T_b = seq_len[b]`` real scores; padded positions never enter (the original code included them). A video
    with a single real snippet has variance ``0`` by definition (``torch.var`` would give NaN). The loss is the
    mean over the normal videos of the batch, and ``0`` (still attached to the graph) when there are none.

    Args:
        scores: ``(B, T)``; seq_len: ``(B,)`` or ``None``; labels: ``(B,)`` video labels.

    Returns:
        scalar tensor.
    """
    batch, length = _check_scores("scores", scores)
    labels = _check_labels(labels, batch, scores)
    mask = sequence_mask(seq_len, batch, length, scores.device)
    variance = _masked_variance(scores, mask)  # (B,)
    normal = (labels == 0).to(scores.dtype)  # (B,)
    return (variance * normal).sum() / normal.sum().clamp(min=1)


def arnet_loss(
    scores: Tensor,
    seq_len: Tensor | None,
    labels: Tensor,
    *,
    k: int = 4,
    lambda_mil: float = 1.0,
    lambda_center: float = 20.0,
) -> Tensor:
    """AR-Net objective ``lambda_mil * kmax_mil_loss + lambda_center * center_loss`` (paper: 1 and 20).

    Args: ``scores`` ``(B, T)``, ``seq_len`` ``(B,)`` or ``None``, ``labels`` ``(B,)``. Returns a scalar.
    """
    mil = kmax_mil_loss(scores, seq_len, labels, k=k)
    return lambda_mil * mil + lambda_center * center_loss(scores, seq_len, labels)


def topk_mean_pool(values: Tensor, seq_len: Tensor | None, k: int = 4) -> Tensor:
    """Mean of the ``k_b = ceil(seq_len[b] / k)`` largest real values of every video, per channel.

    Args:
        values: ``(B, T, C)``; seq_len: ``(B,)`` or ``None``; k: length divisor.

    Returns:
        ``(B, C)``.
    """
    if values.dim() != 3:
        raise ValueError(f"expected values of shape (B, T, C), got {tuple(values.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    batch, length, _ = values.shape
    mask = sequence_mask(seq_len, batch, length, values.device)[..., None]  # (B, T, 1)
    k_b = (mask.sum(dim=1) + k - 1) // k  # (B, 1)
    ranked = values.masked_fill(~mask, float("-inf")).sort(dim=1, descending=True).values  # (B, T, C)
    top = ranked[:, : int(k_b.max())]  # (B, K, C), padding (-inf) only past k_b
    selected = torch.arange(top.shape[1], device=values.device)[None, :, None] < k_b[:, None, :]  # (B, K, 1)
    return torch.where(selected, top, torch.zeros_like(top)).sum(dim=1) / k_b  # (B, C)


BAS_OUTPUT_KEYS = ("scores", "cas", "base_cas", "attention")
"""Entries of an ``arnet_bas`` output dict that :func:`bas_loss` reads: ``scores`` and ``attention`` ``(B, T)``,
``cas`` and ``base_cas`` ``(B, T, 2)`` logits ordered ``[anomaly, background]``."""


def bas_loss(
    outputs: Mapping[str, Tensor],
    seq_len: Tensor | None,
    labels: Tensor,
    *,
    k: int = 4,
    lambda_mil: float = 1.0,
    lambda_center: float = 0.0,
    lambda_attention: float = 1e-4,
) -> Tensor:
    """Loss of the AR-Net BaS variant (Background Suppression, Lee et al. AAAI 2020, adapted).

    Normal content is BaS-Net's "background": present in every video; anomaly is the only foreground class.
    Video-level class scores are the top-``k_b`` mean of each branch's class-activation logits
    (:func:`topk_mean_pool`, ``k_b = ceil(T_b / k)``), turned into probabilities by a softmax over
    ``[anomaly, background]``:

    - ``L_base``: cross-entropy of the base branch against ``[y, 1] / (1 + y)`` (background in every video),
      mean over all videos;
    - ``L_suppressed``: cross-entropy of the suppressed branch against ``[1, 0]`` (the attention removed the
      background) for abnormal videos, mean over them, ``0`` if there are none. A normal video has no target
      here (BaS-Net's normalised label ``[0, 0]`` contributes nothing), it only trains the base branch;
    - ``L_attention``: mean attention over the real snippets of each video, mean over videos (L1 sparsity);
    - AR-Net's :func:`kmax_mil_loss` and :func:`center_loss` on the per-snippet ``"scores"``.

    ``L = L_base + L_suppressed + lambda_attention * L_attention + lambda_mil * L_MIL + lambda_center * L_C``.

    The centre loss is off by default: zeroing the attention makes a normal video's suppressed scores constant,
    so the centre term rewards collapsing the attention, and on separable synthetic data it did (attention ~0,
    snippet AUC ~0.7), while without it the snippet and attention AUCs were ~0.99.

    Args:
        outputs: dict with the keys of ``BAS_OUTPUT_KEYS``.
        seq_len: ``(B,)`` or ``None``; labels: ``(B,)`` video labels.

    Returns:
        scalar tensor.
    """
    missing = [key for key in BAS_OUTPUT_KEYS if key not in outputs]
    if missing:
        raise KeyError(f"bas_loss needs outputs {BAS_OUTPUT_KEYS}; missing {missing}")
    scores = outputs["scores"]
    batch, length = _check_scores("scores", scores)
    labels = _check_labels(labels, batch, scores)
    for key in ("cas", "base_cas"):
        if outputs[key].shape != (batch, length, 2):
            raise ValueError(f"expected {key} of shape ({batch}, {length}, 2), got {tuple(outputs[key].shape)}")

    base_log_probs = torch.log_softmax(topk_mean_pool(outputs["base_cas"], seq_len, k), dim=1)  # (B, 2)
    base_target = torch.stack([labels, torch.ones_like(labels)], dim=1) / (1 + labels[:, None])  # (B, 2)
    base = -(base_target * base_log_probs).sum(dim=1).mean()

    suppressed_log_probs = torch.log_softmax(topk_mean_pool(outputs["cas"], seq_len, k), dim=1)  # (B, 2)
    suppressed = -(suppressed_log_probs[:, 0] * labels).sum() / labels.sum().clamp(min=1)

    mask = sequence_mask(seq_len, batch, length, scores.device)
    attention = torch.where(mask, outputs["attention"], torch.zeros_like(scores))
    sparsity = (attention.sum(dim=1) / mask.sum(dim=1)).mean()

    total = base + suppressed + lambda_attention * sparsity + lambda_mil * kmax_mil_loss(scores, seq_len, labels, k)
    if lambda_center:
        total = total + lambda_center * center_loss(scores, seq_len, labels)
    return total


def weak_loss(
    outputs: Mapping[str, Tensor],
    seq_len: Tensor | None,
    labels: Tensor,
    *,
    k: int = 4,
    lambda_mil: float = 1.0,
    lambda_center: float | None = None,
    lambda_attention: float = 1e-4,
) -> Tensor:
    """One loss for every AR-Net variant, so one training loop serves them all.

    ``outputs`` is the dict an ``ARNet`` returns: :func:`bas_loss` when it carries an ``"attention"`` entry
    (variant ``bas``), otherwise :func:`arnet_loss` on ``outputs["scores"]`` (``lambda_attention`` unused).
    ``lambda_center=None`` takes each loss's own default (20 for AR-Net, 0 for BaS).
    """
    center = {} if lambda_center is None else {"lambda_center": lambda_center}
    if "attention" in outputs:
        return bas_loss(
            outputs, seq_len, labels, k=k, lambda_mil=lambda_mil, lambda_attention=lambda_attention, **center
        )
    return arnet_loss(outputs["scores"], seq_len, labels, k=k, lambda_mil=lambda_mil, **center)


def aed_loss(
    logits: Tensor,
    frame_scores: Tensor,
    video_class: Tensor,
    frame_labels: Tensor,
    lambda_cls: float = 1.0,
    lambda_reg: float = 10.0,
) -> Tensor:
    """AED multi-task loss ``lambda_cls * CE(logits, class) + lambda_reg * SmoothL1(frame_scores, labels)``.

    Both terms are means (cross-entropy over the ``B`` windows, Smooth-L1 with ``beta=1`` over all ``B * N``
    frame scores); the scores are the sigmoid outputs, the labels 0/1 per frame.

    Args:
        logits: ``(B, C)``; frame_scores: ``(B, N)`` with ``N = 16 * L``;
        video_class: ``(B,)`` integer classes; frame_labels: ``(B, N)``.

    Returns:
        scalar tensor.
    """
    if logits.dim() != 2:
        raise ValueError(f"expected logits of shape (B, C), got {tuple(logits.shape)}")
    batch = logits.shape[0]
    if video_class.shape != (batch,):
        raise ValueError(f"expected video_class of shape ({batch},), got {tuple(video_class.shape)}")
    if frame_scores.dim() != 2 or frame_scores.shape[0] != batch:
        raise ValueError(f"expected frame_scores of shape ({batch}, N), got {tuple(frame_scores.shape)}")
    if frame_labels.shape != frame_scores.shape:
        raise ValueError(
            f"frame_labels shape {tuple(frame_labels.shape)} does not match frame_scores {tuple(frame_scores.shape)}"
        )
    classification = F.cross_entropy(logits, video_class.long())
    regression = F.smooth_l1_loss(frame_scores, frame_labels.to(frame_scores.dtype), beta=1.0)
    return lambda_cls * classification + lambda_reg * regression
