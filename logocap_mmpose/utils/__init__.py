from .checkpoint_compat import register_safe_globals
from .torchvision_compat import ensure_torchvision_ops

__all__ = ['register_safe_globals', 'ensure_torchvision_ops']
