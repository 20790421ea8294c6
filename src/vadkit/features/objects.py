"""The names of ``vadkit.features.objects`` before its split by concern into :mod:`vadkit.features.boxes` (kept so
that old imports work; new code imports from the modules of :mod:`vadkit.features.boxes`)."""

from vadkit.features.boxes.box_detectors import HogPeopleDetector, OnnxDetector, parse_detections
from vadkit.features.boxes.core import (DATASET_THRESHOLDS, MAX_BOX_FRAMES, BoxThresholds, Boxes, as_boxes, box_areas,
                                        box_thresholds, filter_detections, remove_covered_boxes)
from vadkit.features.boxes.files import BoxFileError, SplitBoxFiles, load_boxes, save_boxes, split_by_video
from vadkit.features.boxes.regions import (BACKGROUND_DIFFERENCE, BACKGROUND_SAMPLES, REGIONS, RunningBackground,
                                           background_boxes, frame_boxes, frame_contexts, median_background,
                                           motion_boxes, motion_mask)
from vadkit.features.boxes.safe_pickle import UnsafePickleError, load_object_array
from vadkit.features.boxes.video import CACHE_VERSION, Detector, detected_boxes, extract_boxes

__all__ = [
    "BACKGROUND_DIFFERENCE", "BACKGROUND_SAMPLES", "CACHE_VERSION", "DATASET_THRESHOLDS", "MAX_BOX_FRAMES", "REGIONS",
    "BoxFileError", "BoxThresholds", "Boxes", "Detector", "HogPeopleDetector", "OnnxDetector", "RunningBackground",
    "SplitBoxFiles", "UnsafePickleError", "as_boxes", "background_boxes", "box_areas", "box_thresholds",
    "detected_boxes", "extract_boxes", "filter_detections", "frame_boxes", "frame_contexts", "load_boxes",
    "load_object_array", "median_background", "motion_boxes", "motion_mask", "parse_detections",
    "remove_covered_boxes", "save_boxes", "split_by_video",
]
