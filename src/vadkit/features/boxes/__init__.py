"""Object boxes per frame for the object-centric detectors (STATE, the objects detector), after VEC's
"obj_det_with_motion": a frame's boxes are its appearance boxes (a detector's, or a box file's) and the regions no
appearance box covers (motion or background). One module per concern:

- :mod:`~vadkit.features.boxes.core`: thresholds (:class:`BoxThresholds`, per dataset) and box geometry;
- :mod:`~vadkit.features.boxes.regions`: motion boxes, background boxes (a video's median frame, or a stream's
  :class:`RunningBackground`), one frame's boxes (:func:`frame_boxes`);
- :mod:`~vadkit.features.boxes.video`: a whole video's boxes, streamed and cached (:func:`extract_boxes`,
  :func:`detected_boxes`);
- :mod:`~vadkit.features.boxes.files`: box files (``.npz``, VEC's ``.npy``) and per-split box files;
- :mod:`~vadkit.features.boxes.safe_pickle`: the restricted unpickler VEC's ``.npy`` object arrays are read with;
- :mod:`~vadkit.features.boxes.box_detectors`: a user's ONNX detector and OpenCV's HOG people detector (the shipped
  YOLOX-Nano is :mod:`vadkit.features.yolox`);
- :mod:`~vadkit.features.boxes.sources`: the one box-source interface the detectors use (:func:`make_box_source`).
"""
