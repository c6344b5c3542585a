"""The refinement losses of LOGO-CAP: the OKS kernel (KAM) loss and the
loss of the adapted global KEMs, over the proposals that pass the OKS gate.

Shapes: B images, N proposals, G persons, K keypoints, S x S local KEMs,
a x a global KEMs, M gated proposals.
"""
import torch
from torch import Tensor

from .. import refinement
from ..adaptation import contextual_adaptation
from ..proposals import gated_proposals
from .oks_kernel_loss import oks_kernel_targets


def refinement_losses(head, heatmaps: Tensor, embedding: Tensor,
                      initial: Tensor, gt_keypoints: Tensor,
                      gt_visible: Tensor, gt_areas: Tensor,
                      oks_threshold: float = 0.5) -> dict:
    """KAM and refine losses over the gated proposals, as the authors.

    Only the proposals whose best local-KEM OKS reaches ``oks_threshold``
    enter the CMP (so its BatchNorm statistics come from them), and both
    losses are means over them. With no gated proposal both losses are
    zeros that still reach the CMP, the embedding and the heatmaps (defined,
    zero gradients, so DDP sees every parameter).

    Args:
        head (LOGOCAPHead): gives the refinement geometry and the CMP
            (the stages of ``models/refinement.py``), the losses
            (``kam_loss``, ``refine_loss``), ``sigmas`` and the codec's
            ``window_targets``.
        heatmaps (Tensor): (B, K+1, h, w) predicted heatmaps.
        embedding (Tensor): (B, C, h, w).
        initial (Tensor): (B, N, K, 2) proposals, input px (no grad).
        gt_keypoints (Tensor): (B, G, K, 2), input px.
        gt_visible (Tensor): (B, G, K).
        gt_areas (Tensor): (B, G), input px^2.
        oks_threshold (float): the OKS gate.

    Returns:
        dict: ``loss_kam``, ``loss_refine`` and the logged gate figures
        ``oks_gate_ratio`` (gated / all proposals) and ``oks_gated_mean``
        (mean best OKS of the gated proposals).
    """
    K, geometry = head.num_keypoints, head.geometry
    with torch.no_grad():
        targets = oks_kernel_targets(
            refinement.local_poses(geometry, initial), gt_keypoints,
            gt_visible, gt_areas, head.sigmas, oks_threshold)
    gate = targets['gate']  # (B, N)
    gated = gate.float()
    logs = dict(
        oks_gate_ratio=gated.mean(),
        oks_gated_mean=(targets['best_oks'] * gated).sum() /
        gated.sum().clamp(min=1))
    if not bool(gate.any()):
        zero = sum(p.sum() for p in head.cmp.parameters()) * 0 + \
            embedding.sum() * 0 + heatmaps.sum() * 0
        return dict(loss_kam=zero, loss_refine=zero.clone(), **logs)
    selected, valid = gated_proposals(initial, gate)
    local = refinement.local_kem_features(
        geometry, embedding,
        refinement.local_poses(geometry, selected))[valid]
    kams = head.cmp(local)  # (M, K, S, S), raw
    weights = targets['weights'][gate]  # (M, K)
    loss_kam = head.kam_loss(kams, targets['oks'][gate], weights)
    windows = refinement.global_kems(geometry, heatmaps[:, :K], selected)
    refined = contextual_adaptation(windows[valid], kams,
                                    head.adaptation_impl)
    with torch.no_grad():
        refine_targets = head.decoder.window_targets(
            initial[gate], targets['matched_keypoints'][gate],
            head.global_kem_size)
    loss_refine = head.refine_loss(refined, refine_targets, weights)
    return dict(loss_kam=loss_kam, loss_refine=loss_refine, **logs)
