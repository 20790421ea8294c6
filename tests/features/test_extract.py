"""Snippet extraction end to end on a synthetic video, with the real Kinetics-400 I3D weights."""

import numpy as np
import pytest
import torch

from vadkit.features.extract import (ExtractionSettings, SnippetExtractor, count_snippets, crop_boxes, extract_videos,
                                     iter_snippets, make_crops, to_network_input)
from vadkit.features.store import FeatureStore, StoreMismatchError
from vadkit.io import open_video, write_video


def synthetic_video(path, n=40, h=60, w=80):
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 90, np.uint8)
        f[20:40, (2 * i) % (w - 20):(2 * i) % (w - 20) + 20] = (230, 40, 40)
        frames.append(f)
    return write_video(path, frames, fps=20)


def test_snippet_counts_and_short_videos():
    s = ExtractionSettings()
    assert [count_snippets(n, s) for n in (0, 5, 16, 31, 32, 180)] == [0, 1, 1, 1, 2, 11]
    assert count_snippets(40, ExtractionSettings(stride=8)) == 4


def test_iter_snippets_order_and_padding(tmp_path):
    path = synthetic_video(tmp_path / "v.mp4", n=20)
    snippets = list(iter_snippets(open_video(path), ExtractionSettings(snippet_len=8, stride=8)))
    assert len(snippets) == 2 and snippets[0].shape == (1, 8, 224, 224, 3)
    short = synthetic_video(tmp_path / "s.mp4", n=5)
    (only,) = list(iter_snippets(open_video(short), ExtractionSettings()))
    assert only.shape == (1, 16, 224, 224, 3)
    assert np.array_equal(only[0, 4], only[0, 15])  # the last frame repeated


def test_crops():
    assert crop_boxes(256, 256, 1) == [(16, 16)]
    assert crop_boxes(256, 300, 5) == [(0, 0), (0, 76), (32, 0), (32, 76), (16, 38)]
    snippet = np.arange(2 * 256 * 256 * 3, dtype=np.int64).reshape(2, 256, 256, 3) % 251
    ten = make_crops(snippet.astype(np.uint8), 10)
    assert ten.shape == (10, 2, 224, 224, 3)
    assert np.array_equal(ten[5], ten[0][:, :, ::-1])
    x = to_network_input(np.full((1, 2, 4, 4, 3), 255, np.uint8), "unit", "rgb")
    assert x.shape == (1, 3, 2, 4, 4) and float(x.max()) == 1.0
    assert float(to_network_input(np.full((1, 2, 4, 4, 3), 255, np.uint8), "legacy", "rgb").max()) == 255.0


@pytest.fixture(scope="module")
def extractor():
    torch.set_num_threads(2)
    return SnippetExtractor(ExtractionSettings(), batch_size=2)


def test_extract_synthetic_video_end_to_end(tmp_path, extractor):
    path = synthetic_video(tmp_path / "v.mp4", n=40)
    report = extract_videos([("v", path)], tmp_path / "store", extractor, progress=False)
    assert report["done"] == ["v"]
    store = FeatureStore(tmp_path / "store")
    features = store.load("v")
    assert features.shape == (2, 1024) and np.isfinite(features).all() and features.std() > 0
    assert store.videos["v"]["num_frames"] == 40
    assert store.settings["weights_sha256"] and store.settings["input_range"] == "unit"
    # the same frames give the same features (deterministic), a second run does no work
    again = extract_videos([("v", path)], tmp_path / "store", extractor, progress=False)
    assert again["done"] == [] and again["skipped"] == ["v"]
    # features differ between the two snippets of a moving square, and from a constant video
    assert not np.allclose(features[0], features[1])


def test_store_with_other_settings_is_refused(tmp_path, extractor):
    path = synthetic_video(tmp_path / "v.mp4", n=16)
    extract_videos([("v", path)], tmp_path / "store", extractor, progress=False)
    legacy = SnippetExtractor.__new__(SnippetExtractor)
    legacy.__dict__.update(extractor.__dict__, settings=ExtractionSettings(input_range="legacy"))
    with pytest.raises(StoreMismatchError, match="input_range: store has 'unit', requested 'legacy'"):
        extract_videos([("v", path)], tmp_path / "store", legacy, progress=False)


def test_flow_without_checkpoint_is_a_clear_error():
    with pytest.raises(ValueError, match="two-channel I3D checkpoint"):
        SnippetExtractor(ExtractionSettings(modality="flow"))


def test_bad_settings():
    with pytest.raises(ValueError, match="crops must be 1, 5 or 10"):
        ExtractionSettings(crops=3)
    with pytest.raises(ValueError, match="input_range"):
        ExtractionSettings(input_range="0-1")


def test_background_decoding_stops_when_the_consumer_stops():
    """A consumer that stops early (here: after two items) leaves no decoding thread behind."""
    import threading

    from vadkit.features.extract import _background

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    items = _background(endless(), maxsize=2)
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert not any(t.name == "vadkit-decode" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 6  # the thread stopped, bounded by the queue size


def test_background_decoding_reraises_the_decoder_error():
    from vadkit.features.extract import _background

    def broken():
        yield 1
        raise OSError("corrupt packet")

    items = _background(broken())
    assert next(items) == 1
    with pytest.raises(OSError, match="corrupt packet"):
        next(items)
