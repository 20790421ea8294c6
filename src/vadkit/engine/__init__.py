"""engine: configs, run folders, training runs and their evaluation, schedule selection, seed repeats.

The one training loop every trainable detector goes through is :func:`vadkit.detectors.loop.train_loop` (it sits
beside the contract because a detector's ``fit`` runs it); it is re-exported here.
"""

from vadkit.detectors.loop import TrainableDetector, train_loop

__all__ = ["TrainableDetector", "train_loop"]
