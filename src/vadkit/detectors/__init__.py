"""Detectors: the contract every method keeps (:mod:`vadkit.detectors.base`), the one training loop
(:mod:`vadkit.detectors.loop`) and one module per detector, registered by name:

- ``knn``: k-NN distance of I3D snippet features to normal training snippets (one-class, ``vadkit fit-normal``);
- ``arnet`` / ``aed``: the weakly-supervised family on snippet features (:mod:`vadkit.detectors.weak`);
- ``sendec``: a 3D-CNN + ConvLSTM autoencoder on frames (:mod:`vadkit.detectors.sendec`);
- ``state``: an attention autoencoder on object cubes with perturbed scoring (:mod:`vadkit.detectors.state`).
"""

from vadkit.detectors.base import (DETECTORS, Detector, FrameObjects, FrameScores, ModelFileError, NotFittedError,
                                   VideoItem, build_detector, collapse_crops, list_detectors, load_detector,
                                   read_model_file, register_detector)

__all__ = ["DETECTORS", "Detector", "FrameObjects", "FrameScores", "ModelFileError", "NotFittedError", "VideoItem",
           "build_detector", "collapse_crops", "list_detectors", "load_detector", "read_model_file",
           "register_detector"]
