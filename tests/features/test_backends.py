"""Runtimes for the I3D feature network: parity on a real UCSD Ped2 clip, the choice of ``auto``, refusals, and what
the feature store records. (Detector networks: tests/detectors/test_contract.py; export: tests/test_export.py.)"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vadkit.features import backends
from vadkit.features.backends import PARITY_BOUND, BackendError, choose_backend, installed_backends, relative_error
from vadkit.features.weights import WeightsNotFoundError, find_kinetics400_weights

DEMO = backends.Path(backends.__file__).resolve().parents[1] / "assets" / "demo" / "ped2_test004.mp4"


def _weights():
    try:
        find_kinetics400_weights()
    except WeightsNotFoundError as err:
        pytest.skip(f"I3D weights not installed: {err}")


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VADKIT_CACHE", str(tmp_path_factory.getbasetemp() / "vadkit-cache"))


@pytest.fixture(scope="module")
def torch_features():
    _weights()
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor
    from vadkit.io import open_video

    return SnippetExtractor(ExtractionSettings(), backend="torch").extract(open_video(DEMO))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_i3d_features_match_pytorch_on_a_real_ped2_clip(backend, torch_features):
    """The whole demo clip (a UCSD Ped2 test clip, 11 snippets): relative error below 1e-4 for every snippet."""
    if backend not in installed_backends():
        pytest.skip(f"{backend} is not installed (pip install 'vadkit[onnx]')")
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor
    from vadkit.io import open_video

    extractor = SnippetExtractor(ExtractionSettings(), backend=backend)
    assert extractor.backend == backend
    found = extractor.extract(open_video(DEMO))
    assert found.shape == torch_features.shape == (11, 1024)
    assert relative_error(found, torch_features) < PARITY_BOUND
    assert not np.array_equal(found, torch_features)  # a different runtime really ran


def test_auto_takes_the_fastest_backend_that_passes_parity(tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "installed_backends", lambda: ["torch", "onnxruntime", "openvino"])
    probe = torch.ones(2, 3)

    def runners(names):
        def slow_exact(x):
            time.sleep(0.02)
            return x * 2

        def fast_exact(x):
            return x * 2

        def fastest_wrong(x):  # fastest, but its output is 1 % off
            return x * 2.02

        table = {"torch": slow_exact, "onnxruntime": fast_exact, "openvino": fastest_wrong}
        return {n: table[n] for n in names}

    chosen, rows = choose_backend("auto", runners, lambda: probe, key="test", threads=1)
    assert chosen == "onnxruntime"
    assert rows["openvino"]["relative_error"] == pytest.approx(0.01)
    with pytest.raises(BackendError, match="fails the parity check"):
        choose_backend("openvino", runners, lambda: probe, key="test", threads=1)
    # measured once: a second call reads the cache (runners that would fail are never called)
    assert choose_backend("auto", lambda names: 1 / 0, lambda: probe, key="test", threads=1)[0] == "onnxruntime"


def test_a_missing_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(backends, "installed_backends", lambda: ["torch"])
    with pytest.raises(BackendError, match=r"pip install 'vadkit\[onnx\]'"):
        backends.check_backend_name("openvino")
    with pytest.raises(ValueError, match="backend must be one of"):
        backends.check_backend_name("tensorrt")
    assert choose_backend("auto", lambda names: 1 / 0, lambda: None, key="k", threads=1) == ("torch", {})


def test_the_store_records_each_videos_backend_and_mixes_only_within_parity(tmp_path, torch_features):
    """Two backends into one store: allowed (both passed the parity check) and recorded per video; a bf16 extraction
    into the fp32 store is refused (a precision beyond the parity bound)."""
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor, extract_videos
    from vadkit.features.store import FeatureStore, StoreMismatchError

    other = next((b for b in installed_backends() if b != "torch"), None)
    if other is None:
        pytest.skip("no runtime beside torch installed (pip install 'vadkit[onnx]')")
    store = tmp_path / "store"
    extract_videos([("a", DEMO)], store, SnippetExtractor(ExtractionSettings(), backend="torch"), progress=False)
    extract_videos([("b", DEMO)], store, SnippetExtractor(ExtractionSettings(), backend=other), progress=False)
    opened = FeatureStore(store)
    assert opened.videos["a"]["backend"] == "torch" and opened.videos["b"]["backend"] == other
    assert relative_error(opened.load("b"), opened.load("a")) < PARITY_BOUND
    with pytest.raises(StoreMismatchError, match="precision"):
        extract_videos([("c", DEMO)], store, SnippetExtractor(ExtractionSettings(precision="bf16"), backend="torch"),
                       progress=False)


def test_bf16_runs_on_torch_only():
    _weights()
    from vadkit.features.extract import ExtractionSettings, SnippetExtractor

    with pytest.raises(ValueError, match="bf16 on device cpu runs on the torch backend only"):
        SnippetExtractor(ExtractionSettings(precision="bf16"), backend="onnxruntime")


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open
    for flags, expected in (("fpu avx2 fma", False), ("fpu avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"model name\t: X\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(info if p == "/proc/cpuinfo" else p, *a, **k))
        assert backends.native_bf16() is expected
