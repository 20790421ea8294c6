"""AED / AED_T (Wan et al., IET Image Processing 2021): a ConvLSTM over a window of I3D snippets with two heads.

Fully supervised multi-task model (seed-systems §2.3):

1. each snippet vector ``(F,)`` becomes a pseudo-spatial map ``(F/16, 4, 4)``: channel ``c`` holds feature
   dimensions ``16c .. 16c+15`` in row-major order (for ``combine`` features channels ``0..63`` are RGB and
   ``64..127`` flow);
2. ``num_layers`` stacked ConvLSTM cells (hidden 128, 3x3) run over the ``L = window`` snippets;
3. the last layer's final hidden map is flattened (``128*4*4 = 2048``) and goes through
   ``fc_down: Linear(2048 -> 1024) + ReLU``;
4. classification head ``Linear(1024 -> 512, no bias) -> ReLU -> Linear(512 -> C, no bias)`` gives logits;
5. regression head ``Linear(1024 -> 512, no bias) -> ReLU -> Linear(512 -> 16*L, no bias) -> sigmoid`` gives
   one anomaly score per frame of the window.

``aed`` is the one-layer model, ``aed_t`` the two-layer one used in the paper. The original one-layer model
assumed 8192-d inputs; here both work with any ``F`` divisible by 16 (1024 for rgb/flow, 2048 for combine).
Weights keep PyTorch's default initialisation, as in the original.
"""

from __future__ import annotations

from torch import Tensor, nn

from vadkit.models import register_model
from vadkit.models.layers.convlstm import ConvLSTM

MAP_SIDE = 4
"""Each snippet vector is folded into ``(F/16, 4, 4)`` maps."""


def features_to_maps(x: Tensor) -> Tensor:
    """Fold snippet features into pseudo-spatial maps.

    Args:
        x: ``(B, L, F)`` with ``F`` divisible by 16.

    Returns:
        ``(B, L, F/16, 4, 4)``; ``maps[b, t, c, r, k] == x[b, t, 16*c + 4*r + k]``.
    """
    if x.dim() != 3:
        raise ValueError(f"expected features (B, L, F), got shape {tuple(x.shape)}")
    batch, length, dim = x.shape
    cells = MAP_SIDE * MAP_SIDE
    if dim % cells != 0:
        raise ValueError(f"feature dimension must be divisible by {cells} to fold into 4x4 maps, got F={dim}")
    return x.reshape(batch, length, dim // cells, MAP_SIDE, MAP_SIDE)  # (B, L, F/16, 4, 4)


def _mlp_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim, bias=False),
        nn.ReLU(),
        nn.Linear(hidden_dim, out_dim, bias=False),
    )


class AED(nn.Module):
    """ConvLSTM window model with a video-class head and a per-frame anomaly-score head.

    Args:
        feature_dim: snippet feature size ``F`` (must be divisible by 16).
        num_layers: stacked ConvLSTM layers (1 = AED, 2 = AED_T).
        hidden: ConvLSTM hidden channels.
        num_classes: classes ``C`` of the classification head.
        window: snippets per input window ``L``.
        frames_per_snippet: frames summarised by one snippet (16 for I3D); the regression head predicts
            ``frames_per_snippet * window`` scores.
        embed_dim: output size of ``fc_down``.
        head_dim: hidden size of both heads.
    """

    def __init__(
        self,
        feature_dim: int = 2048,
        num_layers: int = 2,
        hidden: int = 128,
        num_classes: int = 2,
        window: int = 10,
        frames_per_snippet: int = 16,
        embed_dim: int = 1024,
        head_dim: int = 512,
    ) -> None:
        super().__init__()
        cells = MAP_SIDE * MAP_SIDE
        if feature_dim % cells != 0:
            raise ValueError(f"feature_dim must be divisible by {cells} to fold into 4x4 maps, got {feature_dim}")
        if window < 1 or frames_per_snippet < 1 or num_classes < 1:
            raise ValueError(
                f"window, frames_per_snippet and num_classes must be >= 1, got "
                f"{window}, {frames_per_snippet}, {num_classes}"
            )
        self.feature_dim = feature_dim
        self.window = window
        self.frames_per_snippet = frames_per_snippet
        self.num_classes = num_classes
        self.convlstm = ConvLSTM(feature_dim // cells, hidden, num_layers=num_layers, kernel_size=3)
        self.fc_down = nn.Sequential(nn.Linear(hidden * cells, embed_dim), nn.ReLU())
        self.classifier = _mlp_head(embed_dim, head_dim, num_classes)
        self.regressor = _mlp_head(embed_dim, head_dim, frames_per_snippet * window)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, L, F)`` snippet windows -> ``(B, embed_dim)`` window embeddings."""
        if x.dim() != 3 or x.shape[1:] != (self.window, self.feature_dim):
            raise ValueError(
                f"expected windows (B, {self.window}, {self.feature_dim}) (batch-first), got {tuple(x.shape)}"
            )
        maps = features_to_maps(x)  # (B, L, F/16, 4, 4)
        _, states = self.convlstm(maps)
        h_last = states[-1][0]  # (B, hid, 4, 4), last layer's final hidden state
        return self.fc_down(h_last.flatten(1))  # (B, hid*16) -> (B, embed_dim)

    def forward_head(self, features: Tensor) -> dict[str, Tensor]:
        """``(B, embed_dim)`` -> ``{"logits": (B, C), "frame_scores": (B, 16*L)}``."""
        return {
            "logits": self.classifier(features),
            "frame_scores": self.regressor(features).sigmoid(),
        }

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Args: ``x`` ``(B, L, F)``, batch-first windows of ``L = window`` snippets.

        Returns a dict with ``"logits"`` ``(B, C)`` (video class, before softmax), ``"frame_scores"``
        ``(B, frames_per_snippet * L)`` in (0, 1) (higher = more abnormal; frame ``j`` of the window belongs
        to snippet ``j // frames_per_snippet``) and ``"features"`` ``(B, embed_dim)``.
        """
        features = self.forward_features(x)
        return {**self.forward_head(features), "features": features}


@register_model("aed")
def aed(**kwargs) -> AED:
    """AED: one ConvLSTM layer."""
    return AED(num_layers=1, **kwargs)


@register_model("aed_t")
def aed_t(**kwargs) -> AED:
    """AED_T: two stacked ConvLSTM layers (the model of the paper)."""
    return AED(num_layers=2, **kwargs)
