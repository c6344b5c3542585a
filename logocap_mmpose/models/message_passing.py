"""Convolutional message passing (CMP): local KEM features -> KAMs.

The stacked features of all K local KEMs (K*C channels on the S x S grid)
pass through three 3x3 conv-norm-ReLU blocks (BatchNorm, Attentive Norm,
BatchNorm) and a 1x1 conv to one KAM per keypoint. Each 3x3 conv mixes the
features of every keypoint, which is how keypoints exchange messages.

The layer order mirrors the authors' ``joints_mlp`` Sequential index by index
(0 conv, 1 BN, 3 conv, 4 AN, 6 conv, 7 BN, 9 conv), so their weights map
one-to-one.
"""
from typing import Optional, Sequence

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch import Tensor

from .attentive_norm import AttentiveNorm2d

ATTENTIVE_NORM_TYPES = ('AttentiveNorm', 'AttentiveNorm2d')


def build_cmp_norm(norm_cfg: dict, num_features: int) -> nn.Module:
    """A norm layer from config: ``dict(type='AttentiveNorm',
    num_mixtures=20)`` (Attentive Norm, see ``attentive_norm.py``) or any
    norm MMCV's ``build_norm_layer`` knows (``dict(type='BN')``, ...)."""
    cfg = dict(norm_cfg)
    kind = cfg.pop('type')
    if kind in ATTENTIVE_NORM_TYPES or kind is AttentiveNorm2d:
        return AttentiveNorm2d(num_features, **cfg)
    return build_norm_layer(dict(type=kind, **cfg), num_features)[1]


class ConvMessagePassing(nn.Module):
    """CMP producing raw (unclamped) KAMs.

    Args:
        in_channels (int): K * C, stacked local KEM feature channels.
        num_keypoints (int): K, one KAM each.
        channels (Sequence[int]): widths of the three 3x3 blocks.
        norm_cfg (dict, optional): norm of the second block; Attentive Norm
            with 20 mixtures when None (the paper). ``dict(type='BN')`` is
            the paper's Table 5 ablation.
    """

    def __init__(self,
                 in_channels: int,
                 num_keypoints: int,
                 channels: Sequence[int] = (512, 256, 128),
                 norm_cfg: Optional[dict] = None):
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f'CMP needs 3 block widths, got {channels}')
        if norm_cfg is None:
            norm_cfg = dict(type='AttentiveNorm', num_mixtures=20)
        c1, c2, c3 = channels
        self.hidden_channels = c3  # before the 1x1 output conv
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            build_cmp_norm(norm_cfg, c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
            nn.Conv2d(c3, num_keypoints, 1))

    def forward(self, local_kems: Tensor) -> Tensor:
        """(M, K*C, S, S) local KEM features -> (M, K, S, S) raw KAMs."""
        return self.layers(local_kems)
