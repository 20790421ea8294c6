"""AR-Net (Wan et al., ICME 2020): weakly supervised snippet scorers over I3D features, six variants.

Every variant maps padded snippet features ``(B, T, F)`` and real lengths ``seq_len`` ``(B,)`` to one anomaly
score per snippet, ``(B, T)`` in (0, 1), higher = more abnormal. A variant is an *encoder* ``(B, T, F) ->
(B, T, H)`` followed by the same head (dropout, then ``Linear(H -> 1)`` and a sigmoid; ``bas`` has a two-class
head), see seed-systems §3.3:

- ``single`` (the published AR-Net): ``Linear(F -> H) + ReLU``.
- ``mean``: three temporal ``Conv1d(F -> H)`` branches, kernels 1/3/5, each + ReLU, averaged.
- ``sequence``: the same branches ``x1, x2, x3`` fused as ``ReLU(conv1(x1 + ReLU(conv1(x3 + x2))))`` with
  1x1 convolutions.
- ``concat``: the branches concatenated to ``3H`` then ``Linear(3H -> H) + ReLU`` (the original applied
  ``Linear(F -> F)`` to ``3F`` channels, a shape error).
- ``lstm``: a unidirectional ``LSTM(F -> H)``, run on packed sequences so padding never reaches real steps.
- ``bas``: BaS-Net adapted to anomaly detection, see :class:`ARNet`.

``H = hidden_dim`` defaults to ``F``. Linear and convolution weights are Xavier-uniform with zero biases (LSTM
weights keep PyTorch's default). Dropout acts only in ``model.train()`` mode.

Padding. Every forward first sets the padded positions ``t >= seq_len[b]`` of the input to zero. The pointwise
(``single``) and packed (``lstm``) variants never mix time steps; the convolution variants (``mean``,
``sequence``, ``concat``, ``bas``) zero-pad their own borders, so with zeroed padding the real positions of a
padded row get exactly the scores the video would get alone: padding contents cannot change real scores.
(Near its end a video's last two snippets see zeros through the width-5/3 kernels, the same edge effect
as at its start.) Scores at padded positions are defined but meaningless; every loss ignores them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vadkit.losses import sequence_mask
from vadkit.models import register_model

BRANCH_KERNELS = (1, 3, 5)
LEAKY_SLOPE = 0.2  # BaS-Net's LeakyReLU slope


def _conv_over_time(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """Apply a ``Conv1d`` along time to ``(B, T, C)`` -> ``(B, T, C')``."""
    return conv(x.transpose(1, 2)).transpose(1, 2)  # (B, C, T) -> (B, C', T) -> (B, T, C')


class _PointwiseEncoder(nn.Module):
    """``Linear(F -> H) + ReLU`` on every snippet independently."""

    def __init__(self, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(feature_dim, hidden_dim)

    def forward(self, x: Tensor, seq_len: Tensor) -> Tensor:
        return torch.relu(self.fc(x))  # (B, T, H)


class _MeanFusion(nn.Module):
    """Average the branches."""

    def __init__(self, hidden_dim: int) -> None:  # same signature as the other fusions; nothing to learn
        super().__init__()

    def forward(self, branches: list[Tensor]) -> Tensor:
        return torch.stack(branches, dim=0).mean(dim=0)  # (3, B, T, H) -> (B, T, H)


class _SequenceFusion(nn.Module):
    """``ReLU(conv1(x1 + ReLU(conv1(x3 + x2))))`` with two 1x1 convolutions (``Linear`` per snippet)."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.fuse_wide = nn.Linear(hidden_dim, hidden_dim)
        self.fuse_narrow = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, branches: list[Tensor]) -> Tensor:
        x1, x2, x3 = branches
        x = torch.relu(self.fuse_wide(x3 + x2))
        return torch.relu(self.fuse_narrow(x1 + x))  # (B, T, H)


class _ConcatFusion(nn.Module):
    """Concatenate the branches to ``3H`` and project back with ``Linear(3H -> H) + ReLU``."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(len(BRANCH_KERNELS) * hidden_dim, hidden_dim)

    def forward(self, branches: list[Tensor]) -> Tensor:
        return torch.relu(self.project(torch.cat(branches, dim=-1)))  # (B, T, 3H) -> (B, T, H)


class _MultiScaleEncoder(nn.Module):
    """Three temporal ``Conv1d(F -> H)`` branches (kernels 1/3/5, same length) + ReLU, then a fusion."""

    def __init__(self, feature_dim: int, hidden_dim: int, fusion: type[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv1d(feature_dim, hidden_dim, kernel, padding=kernel // 2) for kernel in BRANCH_KERNELS
        )
        self.fusion = fusion(hidden_dim)

    def forward(self, x: Tensor, seq_len: Tensor) -> Tensor:
        branches = [torch.relu(_conv_over_time(x, conv)) for conv in self.branches]  # 3 x (B, T, H)
        return self.fusion(branches)


class _LSTMEncoder(nn.Module):
    """Unidirectional ``LSTM(F -> H)`` over packed sequences; padded steps output zeros."""

    def __init__(self, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(feature_dim, hidden_dim, batch_first=True)

    def forward(self, x: Tensor, seq_len: Tensor) -> Tensor:
        packed = pack_padded_sequence(x, seq_len.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out  # (B, T, H)


class _TemporalConvEncoder(nn.Module):
    """BaS-Net CAS trunk: ``Conv1d(F -> H, kernel 3) + LeakyReLU``."""

    def __init__(self, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(feature_dim, hidden_dim, 3, padding=1)

    def forward(self, x: Tensor, seq_len: Tensor) -> Tensor:
        return nn.functional.leaky_relu(_conv_over_time(x, self.conv), LEAKY_SLOPE)  # (B, T, H)


_ENCODERS: dict[str, Callable[[int, int], nn.Module]] = {
    "single": _PointwiseEncoder,
    "mean": lambda f, h: _MultiScaleEncoder(f, h, _MeanFusion),
    "sequence": lambda f, h: _MultiScaleEncoder(f, h, _SequenceFusion),
    "concat": lambda f, h: _MultiScaleEncoder(f, h, _ConcatFusion),
    "lstm": _LSTMEncoder,
    "bas": _TemporalConvEncoder,
}
VARIANTS = tuple(_ENCODERS)


def _filter_module(feature_dim: int, attention_dim: int) -> nn.Sequential:
    """BaS-Net filter: per-snippet ``F -> attention_dim -> 1`` logit (1x1 convolutions = ``Linear``)."""
    return nn.Sequential(
        nn.Linear(feature_dim, attention_dim),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Linear(attention_dim, 1),
    )


class ARNet(nn.Module):
    """AR-Net snippet scorer; ``variant`` picks the temporal encoder (see the module docstring).

    Args:
        feature_dim: snippet feature size ``F`` (2048 for I3D rgb+flow, 1024 for one stream).
        variant: one of ``single, mean, sequence, concat, lstm, bas``.
        dropout: dropout probability before the score layer (train mode only).
        hidden_dim: embedding size ``H``; ``None`` means ``F`` (as in the original).
        attention_dim: hidden size of the BaS filter module (``bas`` only).

    Variant ``bas`` (BaS-Net, Lee et al. AAAI 2020, adapted). Normal content plays the role of BaS-Net's
    background: present in every video, while only abnormal videos contain the "foreground" (anomaly):

    - a *filter module* (per-snippet ``F -> attention_dim -> 1``, LeakyReLU, sigmoid) gives a foreground
      attention ``a``, ``(B, T)`` in (0, 1);
    - the *CAS module* (``Conv1d(F -> H, k=3)`` + LeakyReLU, dropout, ``Linear(H -> 2)``), shared by both
      branches, gives per-snippet class-activation logits ``[anomaly, background]``;
    - the *base branch* runs the CAS on ``x``, the *suppressed branch* on ``x * a``.

    ``"scores"`` is the suppressed branch's per-snippet softmax probability of the anomaly class,
    ``sigmoid(cas[..., 0] - cas[..., 1])``. :func:`vadkit.losses.bas_loss` trains it (BaS-Net's video-level
    base/suppressed losses, attention sparsity, plus AR-Net's k-max MIL on ``"scores"``);
    :func:`vadkit.losses.weak_loss` picks that loss from the outputs, so one training loop serves every variant.
    """

    def __init__(
        self,
        feature_dim: int = 2048,
        variant: str = "single",
        dropout: float = 0.7,
        hidden_dim: int | None = None,
        attention_dim: int = 512,
    ) -> None:
        super().__init__()
        if variant not in _ENCODERS:
            raise ValueError(f"unknown AR-Net variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        hidden_dim = feature_dim if hidden_dim is None else hidden_dim
        self.feature_dim = feature_dim
        self.variant = variant
        self.encoder = _ENCODERS[variant](feature_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        is_bas = variant == "bas"
        self.head = nn.Linear(hidden_dim, 2 if is_bas else 1)  # bas: [anomaly, background]
        self.filter = _filter_module(feature_dim, attention_dim) if is_bas else None
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _prepare(self, x: Tensor, seq_len: Tensor | None) -> tuple[Tensor, Tensor]:
        """Validate inputs, zero the padding. Returns ``x`` ``(B, T, F)`` and ``seq_len`` ``(B,)`` long."""
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"expected snippet features (B, T, {self.feature_dim}), got {tuple(x.shape)}")
        batch, length, _ = x.shape
        if length == 0:
            raise ValueError("expected at least one snippet per video, got T=0")
        mask = sequence_mask(seq_len, batch, length, x.device)  # (B, T), validates seq_len
        x = torch.where(mask[..., None], x, torch.zeros_like(x))  # (B, T, F), padding -> 0
        return x, mask.sum(dim=1)

    def _cas(self, x: Tensor, seq_len: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder + head: ``(B, T, F)`` -> ``(B, T, H)`` embeddings and ``(B, T, outputs)`` logits."""
        features = self.encoder(x, seq_len)  # (B, T, H)
        return features, self.head(self.dropout(features))

    def forward(self, x: Tensor, seq_len: Tensor | None = None) -> dict[str, Tensor]:
        """Score every snippet.

        Args:
            x: ``(B, T, F)`` snippet features, zero-padded or not past ``seq_len``.
            seq_len: ``(B,)`` integer real lengths in ``[1, T]``; ``None`` means every row is full.

        Returns:
            ``"scores"`` ``(B, T)`` in (0, 1), higher = more abnormal; ``"features"`` ``(B, T, H)``, the
            embedding the score layer reads. Variant ``bas`` adds ``"attention"`` ``(B, T)``, the
            class-activation logits ``"cas"`` (suppressed branch) and ``"base_cas"``, each ``(B, T, 2)``
            ordered ``[anomaly, background]``, and ``"base_scores"`` ``(B, T)``.
        """
        x, seq_len = self._prepare(x, seq_len)
        if self.filter is None:
            features, logits = self._cas(x, seq_len)
            return {"scores": torch.sigmoid(logits[..., 0]), "features": features}
        attention = torch.sigmoid(self.filter(x))  # (B, T, 1)
        _, base_cas = self._cas(x, seq_len)  # (B, T, 2)
        features, cas = self._cas(x * attention, seq_len)  # (B, T, H), (B, T, 2)
        return {
            "scores": _anomaly_probability(cas),
            "features": features,
            "cas": cas,
            "base_cas": base_cas,
            "base_scores": _anomaly_probability(base_cas),
            "attention": attention[..., 0],
        }


def _anomaly_probability(cas: Tensor) -> Tensor:
    """Two-class softmax per snippet: ``(B, T, 2)`` logits ``[anomaly, background]`` -> ``(B, T)`` P(anomaly)."""
    return torch.sigmoid(cas[..., 0] - cas[..., 1])


@register_model("arnet_single")
def arnet_single(**kwargs) -> ARNet:
    """The published AR-Net: a two-layer per-snippet MLP."""
    return ARNet(variant="single", **kwargs)


@register_model("arnet_mean")
def arnet_mean(**kwargs) -> ARNet:
    """Three temporal convolution branches, averaged."""
    return ARNet(variant="mean", **kwargs)


@register_model("arnet_sequence")
def arnet_sequence(**kwargs) -> ARNet:
    """Three temporal convolution branches, fused in sequence."""
    return ARNet(variant="sequence", **kwargs)


@register_model("arnet_concat")
def arnet_concat(**kwargs) -> ARNet:
    """Three temporal convolution branches, concatenated and projected."""
    return ARNet(variant="concat", **kwargs)


@register_model("arnet_lstm")
def arnet_lstm(**kwargs) -> ARNet:
    """Unidirectional LSTM over the real snippets."""
    return ARNet(variant="lstm", **kwargs)


@register_model("arnet_bas")
def arnet_bas(**kwargs) -> ARNet:
    """BaS-Net adapted: foreground attention, base and suppressed branches."""
    return ARNet(variant="bas", **kwargs)
