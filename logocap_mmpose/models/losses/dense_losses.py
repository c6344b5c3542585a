"""The dense losses of LOGO-CAP: keypoint and centre heatmaps, offsets."""
from typing import Sequence

import torch
import torch.nn as nn
from torch import Tensor


def dense_losses(heatmaps: Tensor, displacements: Tensor,
                 batch_data_samples: Sequence, heatmap_loss: nn.Module,
                 offset_loss: nn.Module) -> dict:
    """Heatmap and offset losses against the codec's targets.

    Args:
        heatmaps (Tensor): (B, K+1, h, w) predictions, the centre last.
        displacements (Tensor): (B, 2K, h, w) predicted offsets.
        batch_data_samples (Sequence[PoseDataSample]): ``gt_fields`` with
            ``heatmaps``, ``heatmap_weights``, optionally ``heatmap_mask``
            (the crowd mask), ``displacements`` and
            ``displacement_weights``, as ``LOGOCAPLabel`` encodes them.
        heatmap_loss (nn.Module): called as ``(pred, gt, mask=weights)``.
        offset_loss (nn.Module): called as ``(pred, gt, weights)``.

    Returns:
        dict: ``loss_heatmap`` and ``loss_offset``.

    Raises:
        ValueError: when the targets hold another keypoint count.
    """
    K = displacements.shape[1] // 2
    fields = [d.gt_fields for d in batch_data_samples]
    gt_heatmaps = torch.stack([f.heatmaps for f in fields])
    if gt_heatmaps.shape[1] != K + 1:
        raise ValueError(
            f'the targets hold {gt_heatmaps.shape[1] - 1} keypoints but '
            f'LOGOCAPHead has num_keypoints={K}: the dataset and the '
            'head config disagree')
    weights = torch.stack([f.heatmap_weights for f in fields])
    if 'heatmap_mask' in fields[0]:
        weights = weights * torch.stack([f.heatmap_mask for f in fields])
    gt_disp = torch.stack([f.displacements for f in fields])
    disp_weights = torch.stack([f.displacement_weights for f in fields])
    return dict(
        loss_heatmap=heatmap_loss(heatmaps, gt_heatmaps, mask=weights),
        loss_offset=offset_loss(displacements, gt_disp, disp_weights))
