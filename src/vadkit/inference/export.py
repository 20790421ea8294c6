"""``vadkit export``: a fitted model as ONNX (or OpenVINO IR) files that score without PyTorch.

The export folder holds:

- ``i3d.onnx`` (feature detectors): the I3D feature network for the detector's extraction settings, fixed snippet
  length and crop size, dynamic batch; input ``clips`` ``(B, C, T, 224, 224)`` float32, output ``features``
  ``(B, 1024)``;
- ``detector-<name>.onnx``: each network the detector scores through (AR-Net, AED, sEnDec, STATE's auto-encoder,
  the k-NN scorer with its memory bank as a constant);
- ``detector-arrays.npz``: the detector's fitted arrays beyond network weights (the k-NN memory bank and mean, the
  object detector's densities and calibration);
- ``i3d.xml``/``.bin`` and ``detector-*.xml``/``.bin`` with ``--format openvino`` (fp32 weights);
- ``vadkit-export.json``: preprocessing, snippet geometry, the scoring recipe, the fitted threshold and its rule,
  the protocol card, each file's inputs/outputs and sha256, and the parity measured at export against PyTorch;
- ``score.py``: a scorer that needs only numpy, onnxruntime, PyAV and OpenCV (:mod:`vadkit.inference.onnx_scorer`).

The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vadkit.features.backends import (BACKENDS, PARITY_BOUND, SCORE_PARITY, ExportSpec, export_onnx, onnx_to_openvino,
                                      open_session, relative_error, require, versions)
from vadkit.inference.bundle import LoadedModel, resolve_model
from vadkit.io.files import atomic_write_json, json_safe, sha256_file
from vadkit.scoring import DEFAULT_SMOOTHING_SIGMA

FORMATS = ("onnx", "openvino")
EXPORT_FILE = "vadkit-export.json"


def export_model(model: str | Path | LoadedModel, out_dir: str | Path, fmt: str = "onnx", *, smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA,
                 min_event_frames: int = 8, merge_gap: int = 5, overwrite: bool = False) -> dict:
    """Export ``model`` into ``out_dir`` (see the module docstring); returns the ``vadkit-export.json`` content.

    Raises:
        ValueError: an unknown format, or ``out_dir`` exists and ``overwrite`` is false.
        BackendError: ``openvino`` requested but not installed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    require("onnxruntime")  # the parity check runs the export
    if fmt == "openvino":
        require("openvino")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ValueError(f"{out_dir} exists: choose a new folder (or pass overwrite)")
    loaded = model if isinstance(model, LoadedModel) else resolve_model(model, backend="torch")
    detector = loaded.detector
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp:
        staging = Path(tmp) / "export"
        staging.mkdir()
        networks: dict[str, dict] = {}
        if detector.inputs == "features":
            extractor = loaded.extractor()
            networks["features"] = _write_network(extractor.export_spec(), staging, "i3d", fmt,
                                                  probe=extractor.probe(), bound=PARITY_BOUND)
        for attribute, spec in detector.networks().items():
            entry = _write_network(spec, staging, f"detector-{attribute}", fmt, probe=None, bound=SCORE_PARITY)
            entry["layout"] = detector.export_layout
            networks["detector" if "detector" not in networks else f"detector-{attribute}"] = entry
        arrays = _arrays(detector)
        if arrays:
            np.savez(staging / "detector-arrays.npz", **{k.replace("/", "__"): v for k, v in arrays.items()})
        shutil.copyfile(Path(__file__).with_name("onnx_scorer.py"), staging / "score.py")
        spec = _description(loaded, networks, sorted(arrays), smoothing_sigma, min_event_frames, merge_gap, fmt)
        atomic_write_json(staging / EXPORT_FILE, spec)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    return spec


def _write_network(spec: ExportSpec, folder: Path, name: str, fmt: str, probe: torch.Tensor | None,
                   bound: float) -> dict:
    """Export one network, check it against torch on ``probe`` (default: the spec's example) and describe it."""
    onnx_path = export_onnx(spec, folder / f"{name}.onnx")
    entry = {"onnx": onnx_path.name, "inputs": list(spec.input_names), "outputs": list(spec.output_names),
             "dynamic": {k: {str(a): n for a, n in v.items()} for k, v in spec.dynamic.items()},
             "example_shapes": [list(x.shape) for x in spec.inputs], "sha256": {onnx_path.name: sha256_file(onnx_path)}}
    files = {"onnxruntime": onnx_path}
    if fmt == "openvino":
        xml = onnx_to_openvino(onnx_path, folder / f"{name}.xml")
        entry["openvino"] = xml.name
        entry["sha256"].update({xml.name: sha256_file(xml), xml.with_suffix(".bin").name:
                                sha256_file(xml.with_suffix(".bin"))})
        files["openvino"] = xml
    inputs = (probe,) if probe is not None else tuple(torch.rand_like(x) for x in spec.inputs)
    with torch.inference_mode():
        reference = spec.exported(*inputs)
    reference = [reference] if isinstance(reference, torch.Tensor) else list(reference)
    entry["parity"] = {}
    for backend, path in files.items():
        outputs = open_session(path, backend)([x.numpy() for x in inputs])
        error = max(relative_error(o, r.numpy()) for o, r in zip(outputs, reference))
        if not error < max(bound, 1e-5):
            raise RuntimeError(f"the exported {name} on {backend} differs from PyTorch by {error:.2e} (relative; "
                               f"bound {bound:g}): not exported")
        entry["parity"][backend] = {"relative_error": error, "bound": bound,
                                    "input": "real UCSD Ped2 snippets (the demo clip)" if probe is not None
                                    else "random inputs of the example shapes"}
    return entry


def _arrays(detector) -> dict[str, np.ndarray]:
    """The fitted arrays of the detector's state (the k-NN memory bank and mean, the object detector's densities and
    calibration, normalisation statistics), flattened to ``a/b/c`` names; network weights are in the ONNX files."""
    out: dict[str, np.ndarray] = {}

    def walk(value, name: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}/{key}" if name else str(key))
        elif isinstance(value, torch.Tensor):
            out[name] = value.detach().cpu().numpy()
        elif isinstance(value, np.ndarray) and value.dtype != object:
            out[name] = value

    state = dict(detector.state())
    for network in detector.networks():
        state.pop(network, None)  # weights: exported as graphs
    walk(state, "")
    return out


def _description(loaded: LoadedModel, networks: dict, arrays: list[str], smoothing_sigma: float,
                 min_event_frames: int, merge_gap: int, fmt: str) -> dict:
    from vadkit.features.extract import CROP_SIZE, ExtractionSettings

    d = loaded.detector
    preprocessing = None
    if d.inputs == "features":
        trained = d.extraction_ or {}
        settings = ExtractionSettings(**{k: v for k, v in trained.items() if k in ExtractionSettings.__dataclass_fields__})
        preprocessing = {"decode": "PyAV, RGB 24-bit", "resize": settings.resize, "resize_size": settings.resize_size,
                         "interpolation": "bilinear (OpenCV INTER_LINEAR)", "crop_size": CROP_SIZE,
                         "crops": settings.crops, "input_range": settings.input_range,
                         "snippet_len": settings.snippet_len, "stride": settings.stride,
                         "short_video": "one snippet, padded by repeating the last frame"}
    return json_safe({
        "format": "vadkit-export", "version": 1, "exported": time.strftime("%Y-%m-%dT%H:%M:%S"), "formats": [fmt],
        "detector": d.name, "args": d.args, "source": loaded.source, "threshold": d.threshold_,
        "threshold_rule": d.threshold_rule, "protocol": d.protocol_, "trained_on": loaded.trained_on,
        "preprocessing": preprocessing,
        "scoring": {"kind": d.scoring_kind, "crops": d.crops_, "tail": d.args.get("tail", "extend"),
                    "smoothing_sigma": smoothing_sigma, "min_event_frames": min_event_frames, "merge_gap": merge_gap,
                    "higher_is_abnormal": True},
        "networks": networks,
        "arrays": {"file": "detector-arrays.npz", "names": arrays, "naming": "state keys joined by '__'"}
        if arrays else None,
        "runtimes": {b: v for b, v in versions().items() if b in BACKENDS},
        "standalone": "python score.py VIDEO (numpy, onnxruntime, av, opencv-python-headless)"
                      if d.scoring_kind == "snippets" else
                      "vadkit score --model <the model file> --backend onnxruntime|openvino",
    })
