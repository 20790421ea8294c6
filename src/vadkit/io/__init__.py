"""Video input/output: one interface for video files and frame folders, and an mp4 writer."""

from vadkit.io.video import (
    DEFAULT_FOLDER_FPS,
    FRAME_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FrameFolderSource,
    OpenCVSource,
    PyAVSource,
    VideoNotFoundError,
    VideoReadError,
    VideoSource,
    is_video_file,
    list_frame_files,
    natural_key,
    open_video,
    open_video_frames,
    to_gray,
    write_video,
)

__all__ = [
    "DEFAULT_FOLDER_FPS", "FRAME_EXTENSIONS", "VIDEO_EXTENSIONS", "FrameFolderSource", "OpenCVSource",
    "PyAVSource", "VideoNotFoundError", "VideoReadError", "VideoSource", "is_video_file", "list_frame_files",
    "natural_key", "open_video", "open_video_frames", "to_gray", "write_video",
]
