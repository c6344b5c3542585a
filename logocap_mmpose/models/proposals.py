"""Proposals and ground truth for the refinement losses (training only).

Shapes: B images, N proposals, G persons (padded per batch), K keypoints;
positions are input pixels.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def gated_proposals(initial: Tensor, gate: Tensor) -> Tuple[Tensor, Tensor]:
    """The gated proposals of each image, moved to the front of its row.

    Args:
        initial (Tensor): (B, N, K, 2) proposals.
        gate (Tensor): (B, N) bool.

    Returns:
        tuple: ``selected`` (B, n, K, 2) with n the largest gated count of an
        image (rows padded with ungated proposals) and ``valid`` (B, n) bool.
        ``selected[valid]`` equals ``initial[gate]`` (image-major order).
    """
    B, N = gate.shape
    counts = gate.sum(1)
    n = int(counts.max())
    order = torch.argsort((~gate).to(torch.uint8), dim=1, stable=True)[:, :n]
    selected = initial.gather(
        1, order[..., None, None].expand(B, n, *initial.shape[2:]))
    valid = torch.arange(n, device=gate.device)[None] < counts[:, None]
    return selected, valid


def padded_instances(batch_data_samples: Sequence,
                     ref: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The codec's person labels of a batch, padded to G persons.

    Args:
        batch_data_samples (Sequence[PoseDataSample]): with
            ``gt_instance_labels`` (``instance_keypoints`` (G_b, K, 2),
            ``instance_keypoints_visible`` (G_b, K), ``instance_areas``).
        ref (Tensor): (B, K+1, h, w) heatmaps giving K, dtype and device.

    Returns:
        tuple: keypoints (B, G, K, 2), visibility (B, G, K) and areas
        (B, G); padding persons have no visible keypoint and area 1.
    """
    labels = [d.gt_instance_labels for d in batch_data_samples]
    G = max(len(lb.instance_areas) for lb in labels)
    B, K = len(labels), ref.shape[1] - 1
    kpts = ref.new_zeros(B, G, K, 2)
    vis = ref.new_zeros(B, G, K)
    areas = ref.new_ones(B, G)
    for b, lb in enumerate(labels):  # one copy per image, not per person
        n = len(lb.instance_areas)
        kpts[b, :n] = lb.instance_keypoints.to(ref)
        vis[b, :n] = lb.instance_keypoints_visible.to(ref)
        areas[b, :n] = lb.instance_areas.to(ref)
    return kpts, vis, areas


def gt_center_proposals(decoder, displacements: Tensor, gt_keypoints: Tensor,
                        gt_visible: Tensor) -> Tensor:
    """Initial poses decoded at the ground-truth centre cells.

    The centre of a person is the mean of its visible keypoints, rounded to
    the nearest cell of the stride-s map (clamped inside it).

    Args:
        decoder (LOGOCAPLabel): the head's codec.
        displacements (Tensor): (B, 2K, h, w) predicted offsets.
        gt_keypoints (Tensor): (B, G, K, 2).
        gt_visible (Tensor): (B, G, K).

    Returns:
        Tensor: (B, G, K, 2).
    """
    h, w = displacements.shape[-2:]
    n_vis = gt_visible.sum(-1, keepdim=True).clamp(min=1)
    centers = (gt_keypoints * gt_visible[..., None]).sum(2) / n_vis
    cells = decoder.to_heatmap(centers).round().long()
    cells[..., 0].clamp_(0, w - 1)
    cells[..., 1].clamp_(0, h - 1)
    return decoder.decode_at_cells(displacements, cells)


def inference_proposals(decoder, heatmaps: Tensor, displacements: Tensor,
                   test_cfg: dict) -> Tuple[Tensor, Tensor, Tensor]:
    """The proposals that the head refines at test time.

    The codec's ``decode_batch`` (``test_cfg.max_proposals``), then, with
    ``test_cfg.nms_before_refine``, without the proposals whose initial pose
    duplicates a stronger one (``pose_nms.drop_duplicate_proposals``); cut
    to the longest valid prefix of the batch.

    Args:
        decoder (LOGOCAPLabel): the codec.
        heatmaps (Tensor): (B, K+1, h, w), fused.
        displacements (Tensor): (B, 2K, h, w), fused.
        test_cfg (dict): the test settings.

    Returns:
        tuple: initial poses (B, n, K, 2), centre scores (B, n) and
        ``valid`` (B, n), a prefix of each row.
    """
    from .pose_nms import drop_duplicate_proposals
    initial, center_scores, valid = decoder.decode_batch(
        heatmaps, displacements, test_cfg.get('max_proposals'))
    if test_cfg.get('nms_before_refine', False):
        initial, center_scores, valid = drop_duplicate_proposals(
            initial, center_scores, valid, test_cfg)
    n = int(valid.sum(1).max())  # valid is a prefix of each row
    return initial[:, :n], center_scores[:, :n], valid[:, :n]
