"""LOGO-CAP (CVPR 2022) for MMPose 1.x.

Importing this package (configs do it through ``custom_imports``) registers
the codec, head, losses and transforms into MMPose's registries and makes
MMEngine checkpoints loadable under torch >= 2.6.
"""
from .utils import torchvision_compat  # noqa: F401  (before mmpose imports)
from .utils.checkpoint_compat import register_safe_globals
from .version import __version__

register_safe_globals()

from . import codecs, datasets, models  # noqa: E402,F401

__all__ = ["__version__", "codecs", "datasets", "models"]
