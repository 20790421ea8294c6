"""Inference runtimes: the same network run by PyTorch, ONNX Runtime or OpenVINO, parity-checked.

A network is exported once to ONNX (PyTorch's ``torch.export``-based exporter; dynamic batch) and, for OpenVINO,
converted to its IR with full fp32 weights. The exported files are cached under ``$VADKIT_CACHE`` (default
``~/.cache/vadkit``) by a digest of the weights and the export settings, so a second run loads them at once.

:class:`ExportedNetwork` is called like the module it replaces (torch tensors in, the module's own output type
out), so a detector or the feature extractor swaps its network without other changes.

The I3D feature network's backend is chosen by :func:`choose_backend`: ``auto`` (the default) measures every
installed backend once per machine on a real UCSD Ped2 clip (the demo clip that ships with vadkit), keeps those whose
features stay within :data:`PARITY_BOUND` of PyTorch fp32, and takes the fastest; the measurement is cached
(``backends.json`` in the cache folder) and the choice is said in the output. A backend named explicitly must pass
the same parity check, or it is refused with the measured error. Only fp32 inference is offered: a feature store
therefore never mixes features that differ beyond the bound (a lower precision is a different ``precision``
setting, which the store refuses to mix).

ONNX Runtime and OpenVINO are optional (``pip install 'vadkit[onnx]'``); without them PyTorch is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vadkit.io.files import atomic_write_json

BACKENDS = ("torch", "onnxruntime", "openvino")
CHOICES = ("auto",) + BACKENDS
PARITY_BOUND = 1e-4  # relative error of I3D features against PyTorch fp32 (||a - b|| / ||b|| per snippet)
SCORE_PARITY = 1e-5  # exported detectors: frame scores equal within this (relative to the scores' scale)
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
INSTALL_HINT = "pip install 'vadkit[onnx]' (onnxruntime and openvino)"


class BackendError(RuntimeError):
    """A backend that is not installed, cannot run this network, or fails the parity check."""


def cache_dir() -> Path:
    """Where exported networks and the backend measurements live (``$VADKIT_CACHE`` or ``~/.cache/vadkit``)."""
    return Path(os.environ.get("VADKIT_CACHE") or Path.home() / ".cache" / "vadkit")


def installed_backends() -> list[str]:
    """The backends importable here, ``torch`` first."""
    return ["torch"] + [b for b, module in _MODULES.items() if importlib.util.find_spec(module) is not None]


def check_backend_name(backend: str) -> str:
    if backend not in CHOICES:
        raise ValueError(f"backend must be one of {', '.join(CHOICES)}, got {backend!r}")
    if backend not in ("auto", "torch") and backend not in installed_backends():
        raise BackendError(f"the {backend} backend is not installed: {INSTALL_HINT}")
    return backend


def versions() -> dict[str, str]:
    """Versions of the installed runtimes (part of every cache key)."""
    found = {"torch": torch.__version__}
    for backend, module in _MODULES.items():
        if importlib.util.find_spec(module) is not None:
            found[backend] = __import__(module).__version__
    return found


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX-BF16); elsewhere PyTorch emulates it,
    very slowly."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((ln for ln in handle if ln.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_id() -> str:
    """The CPU model and its flags, hashed: a measurement made on another CPU is not reused."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            lines = [ln for ln in handle if ln.startswith(("model name", "flags"))]
        cpu = "".join(dict.fromkeys(lines))  # first model name and flags lines
    except OSError:
        pass
    return hashlib.sha256(cpu.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ExportSpec:
    """What it takes to export a module and call the export like the module.

    Attributes:
        module: the network (eval mode), whose attributes the export keeps answering for.
        inputs: example input tensors, in ``forward``'s order.
        input_names, output_names: names in the ONNX graph.
        dynamic: per input, the axes whose size varies (e.g. ``{"clips": {0: "batch"}}``).
        wrap: turns the list of output tensors back into what ``module`` returns (default: the single tensor).
        graph: what is exported when it is not ``module`` itself (e.g. :class:`Outputs` around it).
    """

    module: torch.nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: Sequence[str]
    output_names: Sequence[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    wrap: Callable[[list[torch.Tensor]], Any] | None = None
    graph: torch.nn.Module | None = None

    @property
    def exported(self) -> torch.nn.Module:
        return self.graph if self.graph is not None else self.module

    def digest(self) -> str:
        """Weights, input shapes and names: equal digests export equal graphs."""
        h = hashlib.sha256()
        for name, value in sorted(self.exported.state_dict().items()):
            h.update(name.encode())
            h.update(value.detach().contiguous().cpu().numpy().tobytes())
        h.update(repr([(tuple(x.shape), str(x.dtype)) for x in self.inputs]).encode())
        h.update(repr((type(self.exported).__qualname__, getattr(self.exported, "keys", None), list(self.input_names), list(self.output_names),
                       sorted((k, sorted(v.items())) for k, v in self.dynamic.items()))).encode())
        h.update(json.dumps(versions(), sort_keys=True).encode())
        return h.hexdigest()[:20]


def export_onnx(spec: ExportSpec, path: str | Path) -> Path:
    """Export ``spec.module`` to one self-contained ONNX file at ``path`` (written to a temporary name, then
    renamed: an interrupted export never leaves a file that looks finished)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dims = {}
    names = {axis_name for axes in spec.dynamic.values() for axis_name in axes.values()}
    for axis_name in names:
        dims[axis_name] = torch.export.Dim(axis_name.replace("-", "_"), min=1, max=1 << 20)
    dynamic_shapes = tuple({axis: dims[n] for axis, n in spec.dynamic.get(name, {}).items()} or None
                           for name in spec.input_names)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        target = Path(tmp) / path.name
        with torch.no_grad(), _quiet():
            program = torch.onnx.export(spec.exported.eval(), spec.inputs, dynamo=True, external_data=False,
                                        input_names=list(spec.input_names), output_names=list(spec.output_names),
                                        dynamic_shapes=dynamic_shapes if dims else None, verbose=False)
        program.save(str(target), external_data=False)
        os.replace(target, path)
    return path


class Outputs(torch.nn.Module):
    """A one-input module whose output is a dict: exported as the tuple of ``keys`` (the graph's outputs, in that
    order)."""

    def __init__(self, module: torch.nn.Module, keys: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        self.keys = list(keys)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(x)
        return tuple(out[k] for k in self.keys)


def dict_spec(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], input_names: Sequence[str],
              keys: Sequence[str], dynamic: dict[str, dict[int, str]]) -> ExportSpec:
    """The spec of a module returning a dict, of which scoring reads ``keys``."""
    return ExportSpec(module, inputs, input_names, list(keys), dynamic,
                      wrap=lambda outs: dict(zip(keys, outs)), graph=Outputs(module, keys))


def onnx_to_openvino(onnx_path: str | Path, xml_path: str | Path) -> Path:
    """Convert an ONNX file to OpenVINO IR (``.xml`` + ``.bin``), weights kept in fp32."""
    require("openvino")
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=xml_path.parent, prefix=f".{xml_path.name}.") as tmp:
        target = Path(tmp) / xml_path.name
        ov.save_model(ov.convert_model(str(onnx_path)), str(target), compress_to_fp16=False)
        os.replace(target.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(target, xml_path)  # the .xml last: it is what marks the pair finished
    return xml_path


class _quiet:
    """Silence the exporter's progress lines (it prints to stdout)."""

    def __enter__(self):
        import contextlib
        import io
        import logging
        import warnings

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        self._logger = logging.getLogger("torch.onnx")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping ..." is not the user's concern
        return self

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
        return self._stack.__exit__(*exc)


def require(backend: str) -> None:
    if backend != "torch" and backend not in installed_backends():
        raise BackendError(f"the {backend} backend is not installed: {INSTALL_HINT}")


# ---------------------------------------------------------------------------------------------------------------
# Running an exported network
# ---------------------------------------------------------------------------------------------------------------
def open_session(path: str | Path, backend: str, threads: int | None = None):
    """A callable ``(list of float32 arrays) -> list of arrays`` for an exported file on ``backend``."""
    require(backend)
    threads = threads or torch.get_num_threads()
    if backend == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda arrays: session.run(None, dict(zip(names, arrays)))
    if backend == "openvino":
        import openvino as ov

        core = ov.Core()
        # f32 explicitly: on CPUs with bf16 or AMX, OpenVINO would otherwise infer in bf16
        compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                      {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                                       "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        outputs = compiled.outputs

        def run(arrays):
            result = request.infer(list(arrays))
            return [np.array(result[o]) for o in outputs]

        return run
    raise ValueError(f"no exported-network runtime for backend {backend!r}")


class ExportedNetwork:
    """Stands in for a module: called with tensors, returns what the module returns, computed by ``backend``.

    Attributes other than the call (``eval``, ``state_dict``, ``window``, …) are the original module's, so code
    that saves or inspects the network keeps working.
    """

    def __init__(self, spec: ExportSpec, backend: str, path: Path, threads: int | None = None) -> None:
        self.module = spec.module
        self.backend = backend
        self.path = path
        self._wrap = spec.wrap or (lambda outs: outs[0])
        self._run = open_session(path, backend, threads)

    def __call__(self, *inputs: torch.Tensor):
        arrays = [np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32) for x in inputs]
        return self._wrap([torch.from_numpy(np.asarray(o)) for o in self._run(arrays)])

    def __getattr__(self, name: str):
        return getattr(self.__dict__["module"], name)


def exported_network(spec: ExportSpec, backend: str, threads: int | None = None, label: str = "network"):
    """``spec.module`` itself for ``torch``; otherwise an :class:`ExportedNetwork` built from the cached export
    (made on first use)."""
    check_backend_name(backend)
    if backend == "torch":
        return spec.module
    return ExportedNetwork(spec, backend, exported_file(spec, backend, label), threads)


def exported_file(spec: ExportSpec, backend: str, label: str = "network") -> Path:
    """The cached export of ``spec`` for ``backend`` (ONNX for onnxruntime, IR for openvino), made when missing."""
    folder = cache_dir() / "exported"
    onnx_path = folder / f"{label}-{spec.digest()}.onnx"
    if not onnx_path.is_file():
        export_onnx(spec, onnx_path)
    if backend == "openvino":
        xml = onnx_path.with_suffix(".xml")
        if not (xml.is_file() and xml.with_suffix(".bin").is_file()):
            onnx_to_openvino(onnx_path, xml)
        return xml
    return onnx_path


# ---------------------------------------------------------------------------------------------------------------
# Parity and choice for the feature network
# ---------------------------------------------------------------------------------------------------------------
def relative_error(found: np.ndarray, reference: np.ndarray) -> float:
    """Largest per-row ``||found - reference|| / ||reference||``."""
    found = np.asarray(found, np.float64).reshape(len(reference), -1)
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    norms = np.maximum(np.linalg.norm(reference, axis=1), 1e-12)
    return float((np.linalg.norm(found - reference, axis=1) / norms).max())


def measure(runners: dict[str, Callable[[torch.Tensor], torch.Tensor]], probe: torch.Tensor,
            repeats: int = 2) -> dict[str, dict]:
    """Run each runner on ``probe`` (one warm-up, then ``repeats`` timed calls): seconds per call and relative
    error against the ``torch`` runner's output."""
    results: dict[str, dict] = {}
    reference = None
    for name, run in runners.items():
        with torch.inference_mode():
            out = run(probe).float().numpy()
            start = time.perf_counter()
            for _ in range(repeats):
                run(probe)
            seconds = (time.perf_counter() - start) / repeats
        if name == "torch":
            reference = out
        results[name] = {"seconds": seconds, "output": out}
    for name, row in results.items():
        row["relative_error"] = relative_error(row.pop("output"), reference) if reference is not None else 0.0
    return results


def choose_backend(requested: str, runners_for: Callable[[list[str]], dict], probe: Callable[[], torch.Tensor],
                   key: str, threads: int, refresh: bool = False) -> tuple[str, dict]:
    """Resolve ``requested`` (``auto`` or a backend) for one network on this machine.

    ``auto`` takes the fastest installed backend whose relative error is below :data:`PARITY_BOUND`; an explicit
    backend must pass the same check. Measurements are cached per machine, thread count, runtime versions and
    ``key`` (the network). Returns ``(backend, measurement)``.

    Raises:
        BackendError: the requested backend is missing or fails the parity check.
    """
    check_backend_name(requested)
    if requested == "torch":
        return "torch", {}
    candidates = installed_backends() if requested == "auto" else ["torch", requested]
    if candidates == ["torch"]:
        return "torch", {}
    book_path = cache_dir() / "backends.json"
    entry_key = f"{key}|{machine_id()}|threads={threads}|" + json.dumps(versions(), sort_keys=True)
    book = _read_json(book_path)
    entry = book.get(entry_key)
    if refresh or entry is None or any(c not in entry["backends"] for c in candidates):
        measured = measure(runners_for(candidates), probe())
        entry = {"backends": {**(entry or {}).get("backends", {}), **measured}, "parity_bound": PARITY_BOUND,
                 "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        book[entry_key] = entry
        atomic_write_json(book_path, book)
    rows = {b: entry["backends"][b] for b in candidates}
    passing = {b: r for b, r in rows.items() if r["relative_error"] < PARITY_BOUND}
    if requested != "auto":
        if requested not in passing:
            raise BackendError(f"the {requested} backend fails the parity check on this machine: relative error "
                               f"{rows[requested]['relative_error']:.2e} against PyTorch fp32 (bound {PARITY_BOUND:g})")
        return requested, rows
    return min(passing, key=lambda b: passing[b]["seconds"]), rows


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def copy_export(source: Path, destination: Path) -> None:
    """Copy an exported file (and an OpenVINO ``.bin`` beside an ``.xml``)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    if source.suffix == ".xml":
        shutil.copyfile(source.with_suffix(".bin"), destination.with_suffix(".bin"))


def describe(backend: str, measurement: dict) -> str:
    """One line on a choice: the backend, its measured error and its speed beside torch's."""
    row, torch_row = measurement.get(backend), measurement.get("torch")
    if not row or not torch_row:
        return f"backend {backend}"
    speed = torch_row["seconds"] / max(row["seconds"], 1e-12)
    others = ", ".join(f"{b} {torch_row['seconds'] / max(r['seconds'], 1e-12):.2f}x"
                       for b, r in measurement.items() if b not in (backend, "torch"))
    return (f"backend {backend}: I3D features within {row['relative_error']:.1e} of PyTorch fp32 "
            f"(bound {PARITY_BOUND:g}), {speed:.2f}x PyTorch's speed" + (f" (also measured: {others})" if others else "")
            + "; measured once on this machine")
