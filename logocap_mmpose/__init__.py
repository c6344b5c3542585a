"""LOGO-CAP (CVPR 2022) for MMPose 1.x.

Importing this package (configs do it through ``custom_imports``) registers
the codec, head, losses, transforms and training hooks into MMPose's registries, makes
MMEngine checkpoints loadable under torch >= 2.6 and lets MMEngine's
distributed launchers run on machines without CUDA
(``utils/dist_compat.py``; inert where CUDA is available).
"""
from .utils import torchvision_compat  # noqa: F401  (before mmpose imports)
from .utils.checkpoint_compat import register_safe_globals
from .utils.dist_compat import enable_cpu_distributed
from .version import __version__

register_safe_globals()
enable_cpu_distributed()

from . import codecs, datasets, engine, models  # noqa: E402,F401

__all__ = ["__version__", "codecs", "datasets", "engine", "models"]
