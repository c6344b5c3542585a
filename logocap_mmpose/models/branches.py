"""The dense branches of the head: 1x1 conv-norm-act stacks on the stride-4
features (heatmaps, offsets, embedding)."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer


def conv_branch(in_channels: int, mid_channels: int,
                out_channels: Optional[int], norm_cfg: dict,
                act_cfg: dict) -> nn.Sequential:
    """1x1 conv-norm-act, then a 1x1 conv to ``out_channels`` unless None.

    The indices 0-3 match the authors' ``transition_*`` (0-2) and
    ``final_layer_*`` (3) layers, so their weights map one-to-one.

    Args:
        in_channels (int): input channels.
        mid_channels (int): width of the conv-norm-act block.
        out_channels (int, optional): outputs of the last 1x1 conv; None
            ends the branch at the activation (the embedding).
        norm_cfg (dict): MMCV norm config, e.g. ``dict(type='BN')``.
        act_cfg (dict): MMCV activation config, e.g. ``dict(type='ReLU')``.
    """
    layers = [nn.Conv2d(in_channels, mid_channels, 1, bias=False),
              build_norm_layer(norm_cfg, mid_channels)[1],
              build_activation_layer(act_cfg)]
    if out_channels is not None:
        layers.append(nn.Conv2d(mid_channels, out_channels, 1))
    return nn.Sequential(*layers)
