"""Training hooks of LOGO-CAP, registered into MMPose's ``HOOKS``."""
from .hooks import EpochSeedHook, OKSGateMonitorHook

__all__ = ['EpochSeedHook', 'OKSGateMonitorHook']
