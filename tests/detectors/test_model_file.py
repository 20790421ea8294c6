"""The one model file: loading admits tensors and plain data only, so a model file can never execute code."""

import io
import pickle

import pytest
import torch
from typer.testing import CliRunner

from vadkit.detectors import ModelFileError, load_detector, read_model_file


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file that would run code when loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_file(path, marker):
    buffer = io.BytesIO()
    torch.save({"format": "vadkit-detector", "version": 2, "detector": "knn", "args": {}, "state": Payload(marker)},
               buffer)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_model_file_that_would_execute_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = evil_file(tmp_path / "model.pt", marker)
    refused = r"refused: loading it could run code, as it holds pickled Python objects .*GLOBAL io.open\)"
    with pytest.raises(ModelFileError, match=refused):
        load_detector(path)
    assert not marker.exists()  # nothing ran
    torch.load(path, weights_only=False)  # the same bytes do run code through a plain unpickler: the test can fail
    assert marker.exists()


def test_other_files_get_one_clear_error(tmp_path):
    (tmp_path / "noise.pt").write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="not a vadkit model file"):
        read_model_file(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ModelFileError, match="expected a dict with format 'vadkit-detector'"):
        read_model_file(tmp_path / "plain.pt")
    with open(tmp_path / "pickle.pt", "wb") as handle:
        pickle.dump({"format": "vadkit-detector"}, handle)
    with pytest.raises(ModelFileError):
        read_model_file(tmp_path / "pickle.pt")
    with pytest.raises(FileNotFoundError, match="no model file"):
        read_model_file(tmp_path / "missing.pt")


def test_vadkit_score_refuses_it_in_one_line(tmp_path):
    from vadkit.cli import app

    marker = tmp_path / "pwned"
    path = evil_file(tmp_path / "model.pt", marker)
    result = CliRunner().invoke(app, ["score", str(tmp_path), "--model", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "refused" in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_frame_scores_mark_a_dropped_tail_and_refuse_a_hole():
    import numpy as np

    from vadkit.detectors import Detector, VideoItem

    class Fixed(Detector):
        name, inputs, threshold_rule = "fixed-test", "frames", "fixed 1"

        def __init__(self, values):
            super().__init__()
            self.values = np.asarray(values, dtype=np.float64)

        def _fit(self, train, progress):
            self.threshold_ = 1.0

        def _score(self, item):
            return self.values

    item = VideoItem(id="v", num_frames=4)
    scores = Fixed([0.5, 2.0, np.nan, np.nan]).fit([item]).score(item)
    assert scores.scored.tolist() == [True, True, False, False]
    assert scores.abnormal().tolist() == [False, True, False, False]
    with pytest.raises(RuntimeError, match="2 non-finite scores for video v .first at frame 1"):
        Fixed([0.5, np.nan, np.inf, 1.0]).fit([item]).score(item)
