"""The loss of the quality head (``models/quality.py``): its predicted OKS
against each refined pose's true OKS with its best-matching person.

Shapes: B images, N proposals, K keypoints, G persons (padded).
"""
import torch
import torch.nn as nn
from torch import Tensor

from mmpose.registry import MODELS
from .. import refinement
from ..quality import PooledCMP, predicted_quality
from .oks_kernel_loss import pose_oks


@MODELS.register_module()
class PoseQualityLoss(nn.Module):
    """Mean squared error between the predicted and the true OKS of the
    poses.

    Args:
        loss_weight (float): factor of the loss.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        """(P,) predicted and (P,) true OKS -> scalar (0 with no pose)."""
        if predicted.shape != target.shape:
            raise ValueError(f'shape mismatch: predicted '
                             f'{tuple(predicted.shape)}, target '
                             f'{tuple(target.shape)}')
        if predicted.numel() == 0:
            return predicted.sum() * 0
        return (predicted - target).pow(2).mean() * self.loss_weight


def quality_loss(head, heatmaps: Tensor, embedding: Tensor, initial: Tensor,
                 center_scores: Tensor, gt_keypoints: Tensor,
                 gt_visible: Tensor, gt_areas: Tensor) -> dict:
    """``loss_quality`` over every proposal of the batch.

    The refinement of the ``full`` mode runs on all proposals with the CMP
    in eval mode (its BatchNorm statistics stay those of the gated
    proposals that train it); with ``quality_cfg.detach`` (the default) it
    runs without gradient, so that the loss trains the quality head only.

    Args:
        head (LOGOCAPHead): with a quality head (``head.quality``).
        heatmaps (Tensor): (B, K+1, h, w).
        embedding (Tensor): (B, C, h, w).
        initial (Tensor): (B, N, K, 2) proposals, input px.
        center_scores (Tensor): (B, N).
        gt_keypoints (Tensor): (B, G, K, 2), input px.
        gt_visible (Tensor): (B, G, K).
        gt_areas (Tensor): (B, G), input px^2.

    Returns:
        dict: ``loss_quality`` and the logged ``quality_target_mean``.
    """
    cfg, K = head.quality_cfg, head.num_keypoints
    cmp = PooledCMP(head.cmp)
    was_training = head.cmp.training
    head.cmp.eval()
    try:
        with torch.set_grad_enabled(not cfg['detach'] and
                                    torch.is_grad_enabled()):
            keypoints, scores, kams = refinement.refine(
                'full', head.geometry, cmp, heatmaps[:, :K], embedding,
                initial)
    finally:
        head.cmp.train(was_training)
    with torch.no_grad():
        target = pose_oks(keypoints.detach(), gt_keypoints, gt_visible,
                          gt_areas, head.sigmas)
    predicted = predicted_quality(head.quality, scores, center_scores, kams,
                                  cmp)
    return dict(
        loss_quality=head.quality_loss(predicted.flatten(), target.flatten()),
        quality_target_mean=target.mean())
