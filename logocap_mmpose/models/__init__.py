from .adaptation import contextual_adaptation, top2_decode
from .attentive_norm import AttentiveNorm2d
from .backbones import *  # noqa: F401,F403
from .heads import LOGOCAPHead
from .losses import OKSKernelLoss, oks_kernel_targets
from .message_passing import ConvMessagePassing
from .pose_estimator import LOGOCAPPoseEstimator

__all__ = [
    'AttentiveNorm2d', 'ConvMessagePassing', 'LOGOCAPHead',
    'LOGOCAPPoseEstimator', 'OKSKernelLoss', 'contextual_adaptation',
    'oks_kernel_targets', 'top2_decode'
]
