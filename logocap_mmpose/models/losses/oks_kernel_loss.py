"""OKS targets for the local KEMs and the OKS kernel (KAM) loss.

For every proposal n, local KEM cell (i, j) and keypoint k, the target is the
object keypoint similarity of that candidate position to the matched ground
truth person g:

    OKS_nk(i, j) = exp(-d^2 / (2 * area_g * (2 sigma_k)^2)) * visible_gk.

Matching: a proposal takes the person with the largest mean, over that
person's visible keypoints, of ``max_ij OKS_nk(i, j)``. A proposal enters the
losses only when its best single-cell pose (all keypoints read at the same
cell (i, j)) reaches ``oks_threshold``. Its per-keypoint weight is the gain
the KEM makes possible, ``max_ij OKS_nk - OKS_nk(centre)``.
Shapes: B images, N proposals per image, G persons (padded), K keypoints,
S x S local KEM.
"""
from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor

from mmpose.registry import MODELS


@torch.no_grad()
def oks_kernel_targets(poses: Tensor, gt_keypoints: Tensor, gt_visible: Tensor,
                       gt_areas: Tensor, sigmas: Tensor,
                       oks_threshold: float = 0.5) -> Dict[str, Tensor]:
    """OKS targets, matching and weights (no gradient).

    Args:
        poses (Tensor): (B, N, K, S, S, 2) local KEM candidates, input px.
        gt_keypoints (Tensor): (B, G, K, 2) ground truth, same frame.
        gt_visible (Tensor): (B, G, K), 0 for padding persons.
        gt_areas (Tensor): (B, G) areas in the same frame.
        sigmas (Tensor): (K,) keypoint sigmas.
        oks_threshold (float): gate on the best single-cell pose OKS.

    Returns:
        dict: ``oks`` (B, N, K, S, S), ``weights`` (B, N, K) (zero for
        proposals that fail the gate), ``gate`` (B, N) bool, ``matched``
        (B, N) index of the matched person, ``matched_keypoints``
        (B, N, K, 2) and ``best_oks`` (B, N) the gated score.
    """
    B, N, K, S = poses.shape[:4]
    G = gt_keypoints.shape[1]
    if G == 0:
        zeros = poses.new_zeros(B, N, K)
        return dict(
            oks=poses.new_zeros(B, N, K, S, S), weights=zeros,
            gate=zeros[..., 0].bool(),
            matched=torch.zeros(B, N, dtype=torch.long, device=poses.device),
            matched_keypoints=poses[:, :, :, S // 2, S // 2].clone(),
            best_oks=zeros[..., 0])
    vis = (gt_visible > 0).to(poses.dtype)  # (B, G, K)
    # squared distances (B, N, G, K, S, S)
    diff = poses[:, :, None] - gt_keypoints[:, None, :, :, None, None]
    d2 = diff.pow(2).sum(-1)
    var = 2 * gt_areas.clamp(min=1.0)[:, None, :, None] * (2 * sigmas)**2
    oks = torch.exp(-d2 / var[..., None, None]) * vis[:, None, ..., None,
                                                       None]
    n_vis = vis.sum(-1)  # (B, G)
    best_cell = oks.flatten(-2).amax(-1)  # (B, N, G, K)
    score = best_cell.sum(-1) / n_vis.clamp(min=1)[:, None]  # (B, N, G)
    score = score.masked_fill((n_vis == 0)[:, None], -1.0)
    matched = score.argmax(-1)  # (B, N)

    def take(t: Tensor) -> Tensor:  # gather the matched person along dim 2
        idx = matched.reshape(B, N, 1, *([1] * (t.dim() - 3)))
        return t.gather(2, idx.expand(B, N, 1, *t.shape[3:])).squeeze(2)

    oks_m = take(oks)  # (B, N, K, S, S)
    vis_m = take(vis[:, None].expand(B, N, G, K))  # (B, N, K)
    pose_oks = oks_m.sum(2) / vis_m.sum(-1).clamp(min=1)[..., None, None]
    best_oks = pose_oks.flatten(-2).amax(-1)  # (B, N)
    gate = (best_oks >= oks_threshold) & (vis_m.sum(-1) > 0)
    gain = oks_m.flatten(-2).amax(-1) - oks_m[..., S // 2, S // 2]
    weights = gain * gate[..., None]
    matched_keypoints = take(gt_keypoints[:, None].expand(B, N, G, K, 2))
    return dict(
        oks=oks_m, weights=weights, gate=gate, matched=matched,
        matched_keypoints=matched_keypoints, best_oks=best_oks)


def pose_oks(keypoints: Tensor, gt_keypoints: Tensor, gt_visible: Tensor,
             gt_areas: Tensor, sigmas: Tensor) -> Tensor:
    """COCO OKS of each pose with its best-matching ground-truth person:
    :func:`oks_kernel_targets` of a one-cell window (the pose itself), so
    the same definition and matching as the training targets.

    Args:
        keypoints (Tensor): (B, N, K, 2) poses.
        gt_keypoints (Tensor): (B, G, K, 2) ground truth, same frame.
        gt_visible (Tensor): (B, G, K), > 0 for labelled keypoints.
        gt_areas (Tensor): (B, G) person areas (clamped to >= 1 px^2).
        sigmas (Tensor): (K,) OKS sigmas.

    Returns:
        Tensor: (B, N) the largest OKS over the persons (0 without any),
        OKS = mean over the person's labelled keypoints of
        ``exp(-d^2 / (2 * area * (2 * sigma)^2))``.
    """
    cells = keypoints[:, :, :, None, None]  # (B, N, K, 1, 1, 2)
    return oks_kernel_targets(cells, gt_keypoints, gt_visible, gt_areas,
                              sigmas)['best_oks']


@MODELS.register_module()
class OKSKernelLoss(nn.Module):
    """OKS kernel loss for the KAMs (paper eq. 7, authors' normalisation).

    L = loss_weight * mean_{n,k,i,j} w_nk (KAM_nk(i,j) - OKS_nk(i,j))^2

    over the M proposals given, which are the gated ones (the head runs the
    CMP on those only), so the loss does not shrink when few pass the gate.

    Args:
        loss_weight (float): factor of the loss.
    """

    def __init__(self, loss_weight: float = 0.01):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, kams: Tensor, oks: Tensor, weights: Tensor) -> Tensor:
        """
        Args:
            kams (Tensor): (M, K, S, S) raw KAMs.
            oks (Tensor): (M, K, S, S) targets.
            weights (Tensor): (M, K) per-keypoint weights of the gated
                proposals.

        Returns:
            Tensor: scalar loss.
        """
        if kams.shape != oks.shape or weights.shape != kams.shape[:2]:
            raise ValueError(f'shape mismatch: kams {tuple(kams.shape)}, oks '
                             f'{tuple(oks.shape)}, weights '
                             f'{tuple(weights.shape)}')
        if kams.numel() == 0:
            return kams.sum() * 0
        per_cell = (kams - oks).pow(2) * weights[..., None, None]
        return per_cell.mean() * self.loss_weight
