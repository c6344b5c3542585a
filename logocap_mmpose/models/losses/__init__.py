from .dense_losses import dense_losses
from .oks_kernel_loss import OKSKernelLoss, oks_kernel_targets
from .refinement_losses import refinement_losses

__all__ = [
    'OKSKernelLoss', 'dense_losses', 'oks_kernel_targets', 'refinement_losses'
]
