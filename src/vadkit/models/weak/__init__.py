"""Weakly / fully supervised detectors over I3D snippet features: AR-Net variants and AED / AED_T.

Importing this package registers ``arnet_single, arnet_mean, arnet_sequence, arnet_concat, arnet_lstm,
arnet_bas, aed, aed_t`` in ``vadkit.models``.
"""

from vadkit.models.weak.aed import AED, features_to_maps
from vadkit.models.weak.arnet import VARIANTS, ARNet

__all__ = ["AED", "ARNet", "VARIANTS", "features_to_maps"]
