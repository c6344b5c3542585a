"""Attentive Normalization (Li, Sun and Wu, ECCV 2020) as LOGO-CAP uses it.

A BatchNorm without affine parameters whose per-channel scale and shift are
mixtures of ``num_mixtures`` learned affine pairs. The mixture weights
``lambda`` come from the input *before* normalisation: the per-channel
spatial mean divided by the standard deviation, a 1x1 conv to the mixture
count and a hard sigmoid (not normalised to sum to one).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class AttentiveNorm2d(nn.Module):
    """Attentive Normalization for (M, C, H, W) inputs.

    out = (lambda @ weight) * BN(x) + (lambda @ bias), with
    lambda = relu6(conv1x1(mean(x) / sqrt(var(x) + eps_attention)) + 3) / 6.

    Args:
        num_features (int): C.
        num_mixtures (int): number of affine pairs mixed.
        eps (float): BatchNorm epsilon.
        momentum (float): BatchNorm momentum.
        eps_attention (float): added to the spatial variance.
    """

    def __init__(self,
                 num_features: int,
                 num_mixtures: int = 20,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 eps_attention: float = 1e-3):
        super().__init__()
        self.num_features = num_features
        self.num_mixtures = num_mixtures
        self.eps_attention = eps_attention
        self.norm = nn.BatchNorm2d(
            num_features, eps=eps, momentum=momentum, affine=False)
        self.attention = nn.Conv2d(
            num_features, num_mixtures, kernel_size=1, bias=False)
        self.weight = nn.Parameter(torch.empty(num_mixtures, num_features))
        self.bias = nn.Parameter(torch.empty(num_mixtures, num_features))
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.normal_(self.weight, 1.0, 0.1)
        nn.init.normal_(self.bias, 0.0, 0.1)
        nn.init.kaiming_normal_(
            self.attention.weight, mode='fan_out', nonlinearity='relu')

    def mixture_weights(self, x: Tensor) -> Tensor:
        """lambda: (M, num_mixtures) in [0, 1] from the un-normalised x."""
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=True)
        y = mean * torch.rsqrt(var + self.eps_attention)
        return F.relu6(self.attention(y) + 3).div(6).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        lam = self.mixture_weights(x)
        gamma = lam @ self.weight  # (M, C)
        beta = lam @ self.bias
        return gamma[..., None, None] * self.norm(x) + beta[..., None, None]
