from .dense_losses import dense_losses
from .oks_kernel_loss import OKSKernelLoss, oks_kernel_targets, pose_oks
from .quality_loss import PoseQualityLoss, quality_loss
from .refinement_losses import refinement_losses

__all__ = [
    'OKSKernelLoss', 'PoseQualityLoss', 'dense_losses', 'oks_kernel_targets',
    'pose_oks', 'quality_loss', 'refinement_losses'
]
