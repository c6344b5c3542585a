from .checkpoint_compat import register_safe_globals
from .dist_compat import enable_cpu_distributed
from .torchvision_compat import ensure_torchvision_ops

__all__ = [
    'register_safe_globals', 'enable_cpu_distributed', 'ensure_torchvision_ops'
]
