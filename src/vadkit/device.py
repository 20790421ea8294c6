"""Where vadkit's networks run: the one place a ``--device`` is resolved, described and recorded.

``auto`` is the current CUDA device (cuda:0 unless ``torch.cuda.set_device`` says otherwise) when this PyTorch sees
one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` name one. Asking for CUDA where there is none is one clear error
naming the installed PyTorch build and how to install a CUDA build (README, "On a GPU").

Precision (:data:`PRECISIONS`) is a recorded choice, never implied by the device:

- ``fp32``: full float32; on CUDA with TF32 switched *off* for matmuls and cuDNN convolutions (PyTorch leaves it on
  for cuDNN by default), so features made on a GPU equal the CPU's within the backends' bound (1e-4 relative);
- ``tf32``: float32 storage, TensorFloat-32 arithmetic on CUDA (about 1e-3 relative error);
- ``bf16`` / ``fp16``: autocast to bfloat16 / float16 (bf16 also runs on the CPU, emulated where the CPU lacks it).

This module sits at the bottom with ``io`` and ``progress``: it imports nothing of vadkit.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

DEVICE_CHOICES = "auto|cpu|cuda|cuda:N"
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
CUDA_INSTALL = ("install a CUDA build of torch: `make install-cuda`, or `pip install torch --index-url "
                "https://download.pytorch.org/whl/cu128` in the venv (README, \"On a GPU\")")


class DeviceError(RuntimeError):
    """A device that this machine or this PyTorch build cannot give (a one-line user error)."""


def torch_build() -> str:
    """``torch 2.13.0+cpu (a CPU-only build)`` or ``torch 2.11.0 (built for CUDA 13.0)``."""
    cuda = torch.version.cuda
    return f"torch {torch.__version__} " + (f"(built for CUDA {cuda})" if cuda else "(a CPU-only build)")


def resolve_device(requested: str | torch.device | None = "auto") -> torch.device:
    """The device ``requested`` names on this machine.

    Raises:
        DeviceError: CUDA asked for where this PyTorch sees none, or a CUDA index that does not exist.
        ValueError: a name that is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """
    if isinstance(requested, torch.device):
        requested = str(requested)
    name = (requested or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"--device must be one of {DEVICE_CHOICES}, got {requested!r}")
    if not torch.cuda.is_available():
        why = ("this PyTorch has no CUDA support" if torch.version.cuda is None
               else "no CUDA GPU or driver is visible to it")
        raise DeviceError(f"--device {name}: {torch_build()} cannot run on CUDA ({why}); {CUDA_INSTALL}")
    index = int(name[5:]) if ":" in name else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
    return torch.device(f"cuda:{index}")


def describe_device(device: torch.device) -> str:
    """One line for the user: ``device cpu (torch 2.13.0+cpu, a CPU-only build; 2 threads)`` or the GPU's name."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"device {device} ({props.name}, {props.total_memory / 2**30:.0f} GiB; {torch_build()})")
    return f"device cpu ({torch_build()}; {torch.get_num_threads()} threads)"


def device_record(device: torch.device | str) -> dict:
    """What ``result.json``, the protocol card and the feature manifest say of the device."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": str(device), "device_name": name, "torch": torch.__version__}


def check_precision(precision: str, device: torch.device | str) -> str:
    """``precision`` if it runs on ``device``: ``tf32`` and ``fp16`` need CUDA (the CPU has no TF32, and its fp16
    autocast is slower than fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision in ("tf32", "fp16") and torch.device(device).type != "cuda":
        raise ValueError(f"precision {precision} runs on a CUDA device only (this run's device is {device}); use "
                         f"fp32 or bf16 on the CPU")
    return precision


@contextmanager
def precision_scope(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run a block at ``precision`` on ``device`` (see the module docstring); TF32 flags are restored after it."""
    device = torch.device(device)
    matmul = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn.allow_tf32
    try:
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
            torch.backends.cudnn.allow_tf32 = precision == "tf32"
        if precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            with torch.autocast(device.type, dtype=dtype):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


@contextmanager
def training_scope(device: torch.device | str) -> Iterator[None]:
    """cuDNN's autotuner on for a training run on CUDA (9x faster sEnDec steps on an H200), restored after it."""
    previous = torch.backends.cudnn.benchmark
    try:
        if torch.device(device).type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


@contextmanager
def thread_scope(threads: int | None) -> Iterator[None]:
    """Run a block with ``threads`` torch CPU threads (``None``: unchanged), then restore the previous count: no
    part of vadkit changes the process's thread count for good."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with torch's generators seeded with ``seed`` and give the process its own generators back after
    it: building a model or loading one never reseeds the caller's random numbers."""
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def to_device(value: Any, device: torch.device | str) -> Any:
    """``value`` with every tensor in it (tuples, lists and dicts walked) on ``device``; copies to a GPU are
    non-blocking from pinned memory. On the CPU it is ``value`` itself."""
    device = torch.device(device)
    if device.type == "cpu":
        return value
    if isinstance(value, torch.Tensor):
        if value.device.type == "cpu":
            value = value.pin_memory()
        return value.to(device, non_blocking=True)
    if isinstance(value, tuple):
        return tuple(to_device(v, device) for v in value)
    if isinstance(value, list):
        return [to_device(v, device) for v in value]
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor moved to the CPU (a model file never holds device tensors)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu() if value.device.type != "cpu" else value
    if isinstance(value, tuple):
        return tuple(to_cpu(v) for v in value)
    if isinstance(value, list):
        return [to_cpu(v) for v in value]
    if isinstance(value, dict):
        return type(value)((k, to_cpu(v)) for k, v in value.items())  # keeps an OrderedDict state dict one
    return value
