"""vadkit: video anomaly detection on one honest evaluation core."""

__version__ = "0.1.0"
