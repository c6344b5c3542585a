"""Test-time fusion of BatchNorm into the convolution before it.

At test time a BatchNorm after a convolution is a fixed per-channel affine
map, so it can be folded into the convolution's weights and bias: one pass
over the feature map less per pair, the same output up to float rounding.

Pairs are found by registration order, as MMCV's ``fuse_conv_bn`` does, but
stricter: a BatchNorm is folded only into the ``nn.Conv2d`` registered
*immediately* before it in the same parent, with matching channels. MMCV's
helper folds into the last ``Conv2d`` seen however many other modules lie
between: on MMPose's DEKR head it pairs the BatchNorm after a deformable
conv (a ``DeformConv2d`` is no ``Conv2d``) with the 102-channel offset conv
in front of it and stops with a shape error (with the DEKR configs
here). This rule fuses 52 of DEKR-EfficientNet's 54 BatchNorms
(309 of 311 with HRNet-W32) and keeps its outputs. That every pair is a
real conv -> BN pair of the forward pass is checked per config by comparing
outputs before and after fusion
(``tests/test_models/test_inference_speed.py``).

:class:`~logocap_mmpose.models.LOGOCAPPoseEstimator` fuses itself on its
first prediction when ``test_cfg.fuse_conv_bn`` is True (the default) and
the model only predicts: it has never been put in training mode with
``model.train()``. MMPose's ``init_model`` and ``MMPoseInferencer`` build a
model and call ``model.eval()``, MMEngine's test loop (``tools/test.py``)
calls ``model.eval()``, so those fuse; ``Runner.train`` calls
``model.train()`` before any step, so a training run, its validation, its
checkpoints and a resume never see a fused model.

timm's ``BatchNormAct2d`` (the norm of timm backbones such as the CPU
configs' EfficientNet-Lite0) applies its dropout and activation after
normalising: folded, it is replaced by those two modules, not by
``nn.Identity``. Any other BatchNorm with submodules is left alone.

A fused model has fewer BatchNorm layers: putting it back into training
mode or loading a state dict into it raises :class:`FusedModelError`
(rebuild the model, or set ``test_cfg.fuse_conv_bn=False``).
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class FusedModelError(RuntimeError):
    """Training or loading weights into a model fused for inference."""


def count_batch_norms(module: nn.Module) -> int:
    """Number of BatchNorm layers with running statistics in ``module``."""
    return sum(
        isinstance(m, _BatchNorm) and m.track_running_stats
        for m in module.modules())


def fold_batch_norm(conv: nn.Conv2d, norm: _BatchNorm) -> None:
    """Fold ``norm`` (eval statistics) into ``conv``'s weight and bias, in
    place: conv then norm equals the new conv up to float rounding."""
    with torch.no_grad():
        factor = torch.rsqrt(norm.running_var + norm.eps)
        shift = -norm.running_mean * factor
        if norm.affine:
            shift = shift * norm.weight + norm.bias
            factor = factor * norm.weight
        bias = conv.bias if conv.bias is not None else torch.zeros_like(
            norm.running_mean)
        weight = conv.weight * factor.reshape(-1, *[1] *
                                              (conv.weight.dim() - 1))
        conv.weight = nn.Parameter(weight)
        conv.bias = nn.Parameter(bias * factor + shift)


def _replacement(norm: _BatchNorm) -> Optional[nn.Module]:
    """What stands in for ``norm`` once folded; None: do not fold."""
    if not list(norm.children()):
        return nn.Identity()
    cls = type(norm)
    if cls.__name__ == 'BatchNormAct2d' and cls.__module__.startswith('timm.'):
        # timm: F.batch_norm, then self.drop, then self.act
        return nn.Sequential(norm.drop, norm.act)
    return None


def fuse_for_inference(module: nn.Module) -> Dict[str, int]:
    """Fold every BatchNorm registered right after a ``Conv2d`` of the same
    parent into it, in place; the BatchNorm becomes ``nn.Identity`` (timm's
    ``BatchNormAct2d``: its dropout and activation).

    Attentive Norm's BatchNorm (registered before its attention conv, its
    input also feeds the attention) stays.

    Args:
        module (nn.Module): a model in eval mode.

    Returns:
        dict: ``before`` and ``after``, the BatchNorm counts.

    Raises:
        FusedModelError: ``module`` is in training mode.
    """
    if module.training:
        raise FusedModelError('fusing BatchNorm needs a model in eval mode '
                              '(its running statistics are used)')
    before = count_batch_norms(module)
    _fuse_children(module)
    return dict(before=before, after=count_batch_norms(module))


def _fuse_children(module: nn.Module) -> None:
    previous = None
    for name, child in list(module.named_children()):
        replacement = None
        if (isinstance(child, _BatchNorm) and child.track_running_stats
                and isinstance(previous, nn.Conv2d)
                and previous.out_channels == child.num_features):
            replacement = _replacement(child)
        if replacement is not None:
            fold_batch_norm(previous, child)
            setattr(module, name, replacement)
        else:
            _fuse_children(child)
        previous = child
