from .oks_kernel_loss import OKSKernelLoss, oks_kernel_targets

__all__ = ['OKSKernelLoss', 'oks_kernel_targets']
