"""Pose NMS that visits the poses in proposal order (the authors' rule).

MMPose's ``nearby_joints_nms`` visits the poses from the highest score down.
The authors' code (the DEKR rule it inherits) uses the same duplicate test
but visits the poses in the order they come, which for LOGO-CAP is the
centre-score order of the proposals. The kept sets can differ when a pose
with a lower centre score has the higher pose score.

:func:`nms_and_pack` is the last inference step of the head: the pose score
filter, the pose NMS that ``test_cfg.nms_order`` selects and the packing into
MMPose's ``InstanceData``. :func:`drop_duplicate_proposals` applies the same
duplicate test to the initial poses before the refinement
(``test_cfg.nms_before_refine``), so that the proposals pose NMS would remove
anyway are not refined.
"""
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

NMS_ORDERS = ('score', 'proposal')


def duplicate_matrix(keypoints: np.ndarray, dist_thr: float,
                     joints_thr: int) -> np.ndarray:
    """Which poses duplicate which.

    ``dup[i, j]`` is True when more than ``joints_thr`` keypoints of pose
    ``j`` lie strictly closer to the same keypoints of pose ``i`` than
    ``dist_thr`` times the diagonal of pose ``i``'s keypoint box. A pose
    duplicates itself unless its box is a single point.

    Args:
        keypoints (np.ndarray): (P, K, 2).
        dist_thr (float): distance threshold relative to the box diagonal.
        joints_thr (int): number of close keypoints that must be exceeded.

    Returns:
        np.ndarray: (P, P) bool.
    """
    span = keypoints.max(1) - keypoints.min(1)  # (P, 2)
    diagonal = np.sqrt((span**2).sum(-1))  # (P,)
    dist = np.sqrt(((keypoints[:, None] - keypoints[None])**2).sum(-1))
    close = dist < dist_thr * diagonal[:, None, None]  # (P, P, K)
    return close.sum(-1) > joints_thr


def pose_nms_in_order(keypoints: np.ndarray,
                      scores: np.ndarray,
                      dist_thr: float = 0.05,
                      joints_thr: Optional[int] = None,
                      max_dets: int = 30) -> List[int]:
    """Pose NMS visiting the poses in the given order.

    For each pose ``i`` not yet suppressed: take its duplicates (see
    :func:`duplicate_matrix`), keep the best-scored of them unless that one
    is already suppressed, and suppress them all. When more than
    ``max_dets`` poses are kept, the ``max_dets`` best-scored are returned,
    best first; otherwise in the order they were kept.

    Args:
        keypoints (np.ndarray): (P, K, 2) poses in visiting order.
        scores (np.ndarray): (P,) pose scores.
        dist_thr (float): see :func:`duplicate_matrix`.
        joints_thr (int, optional): see :func:`duplicate_matrix`; K // 2
            when None (MMPose's default).
        max_dets (int): most poses returned; <= 0 for no limit.

    Returns:
        list[int]: indices of the kept poses.
    """
    keypoints = np.asarray(keypoints)
    scores = np.asarray(scores)
    P, K = keypoints.shape[:2]
    if P == 0:
        return []
    if joints_thr is None:
        joints_thr = K // 2
    dup = duplicate_matrix(keypoints, dist_thr, joints_thr)
    suppressed = np.zeros(P, bool)
    keep: List[int] = []
    for i in range(P):
        if suppressed[i]:
            continue
        group = np.flatnonzero(dup[i])
        if len(group) == 0:
            continue
        best = int(group[np.argmax(scores[group])])
        if suppressed[best]:
            continue
        keep.append(best)
        suppressed[group] = True
    if 0 < max_dets < len(keep):
        order = np.argsort(-scores[keep], kind='stable')[:max_dets]
        keep = [keep[j] for j in order]
    return keep


def pose_nms(keypoints: np.ndarray, keypoint_scores: np.ndarray,
             test_cfg: dict) -> List[int]:
    """Indices of the poses kept by the pose NMS of ``test_cfg``.

    ``nms_order`` 'score' (default) is MMPose's ``nearby_joints_nms`` (best
    pose score first), 'proposal' is :func:`pose_nms_in_order`; both score a
    pose by its mean keypoint score and read ``nms_dist_thr`` (0.05),
    ``nms_joints_thr`` (None: K // 2) and ``max_num_people`` (30).

    Args:
        keypoints (np.ndarray): (P, K, 2) poses in proposal order.
        keypoint_scores (np.ndarray): (P, K).
        test_cfg (dict): the head's test settings.

    Returns:
        list[int]: indices of the kept poses.
    """
    from mmpose.evaluation.functional.nms import nearby_joints_nms
    dist_thr = test_cfg.get('nms_dist_thr', 0.05)
    joints_thr = test_cfg.get('nms_joints_thr', None)
    max_dets = test_cfg.get('max_num_people', 30)
    order = test_cfg.get('nms_order', 'score')
    if order not in NMS_ORDERS:
        raise ValueError(f'test_cfg.nms_order must be one of {NMS_ORDERS}, '
                         f'got {order!r}')
    if order == 'proposal':
        return pose_nms_in_order(keypoints, keypoint_scores.mean(-1),
                                 dist_thr, joints_thr, max_dets)
    return nearby_joints_nms(
        [dict(keypoints=k, score=s) for k, s in zip(keypoints,
                                                     keypoint_scores)],
        dist_thr, joints_thr, score_per_joint=True, max_dets=max_dets)


def drop_duplicate_proposals(initial: Tensor, center_scores: Tensor,
                             valid: Tensor, test_cfg: dict
                             ) -> Tuple[Tensor, Tensor, Tensor]:
    """Drop, before the refinement, the proposals that duplicate a stronger
    one (``test_cfg.nms_before_refine``).

    Proposal ``j`` is dropped when a valid proposal ``i`` with a higher
    centre score (``i < j``: the decoder sorts them) duplicates it by the
    pose NMS's own test (:func:`duplicate_matrix`, with ``nms_dist_thr`` and
    ``nms_joints_thr``) on the initial poses. The kept proposals move to the
    front of each row, in their order, so ``valid`` stays a prefix. All on
    tensors, batched over images and proposals.

    Args:
        initial (Tensor): (B, N, K, 2) initial poses, input pixels.
        center_scores (Tensor): (B, N), sorted descending.
        valid (Tensor): (B, N) bool, a prefix of each row.
        test_cfg (dict): the head's test settings.

    Returns:
        tuple: ``initial``, ``center_scores`` and ``valid`` with the dropped
        proposals removed (moved behind the kept ones, ``valid`` False).
    """
    B, N, K, _ = initial.shape
    joints_thr = test_cfg.get('nms_joints_thr', None)
    joints_thr = K // 2 if joints_thr is None else joints_thr
    span = initial.amax(2) - initial.amin(2)  # (B, N, 2)
    diagonal = span.norm(dim=-1)  # (B, N)
    dist = (initial[:, :, None] - initial[:, None]).norm(dim=-1)  # (B,N,N,K)
    close = dist < test_cfg.get('nms_dist_thr', 0.05) * diagonal[..., None,
                                                                   None]
    dup = close.sum(-1) > joints_thr  # (B, N, N): j near i, i's scale
    earlier = torch.ones(N, N, dtype=torch.bool,
                         device=initial.device).triu(1)  # i < j
    dropped = (dup & earlier & valid[:, :, None]).any(1)  # (B, N)
    keep = valid & ~dropped
    # stable sort of (not kept): kept first, each group in its order
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True)[1]
    return (initial.gather(1, order[..., None, None].expand_as(initial)),
            center_scores.gather(1, order), keep.gather(1, order))


def nms_and_pack(keypoints: Tensor, scores: Tensor, valid: Tensor,
                 test_cfg: dict) -> List[InstanceData]:
    """Pose score filter, pose NMS and numpy packing, per image.

    Args:
        keypoints (Tensor): (B, N, K, 2) refined poses, input pixels.
        scores (Tensor): (B, N, K) keypoint scores.
        valid (Tensor): (B, N) bool, the proposals above the decoding
            threshold; poses with a mean score <= 0 are dropped too.
        test_cfg (dict): ``nms_dist_thr`` (<= 0 turns the NMS off) and the
            keys :func:`pose_nms` reads.

    Returns:
        list[InstanceData]: one per image, with ``keypoints`` (P, K, 2),
        ``keypoint_scores`` (P, K), ``bboxes`` (P, 4) and ``bbox_scores``
        (P,).
    """
    keypoints = keypoints.detach().cpu().numpy()
    scores = scores.detach().cpu().numpy()
    valid = valid.cpu().numpy() & (scores.mean(-1) > 0)
    preds = []
    for kpts, kpt_scores, keep in zip(keypoints, scores, valid):  # images
        kpts, kpt_scores = kpts[keep], kpt_scores[keep]
        if len(kpts) > 0 and test_cfg.get('nms_dist_thr', 0.05) > 0:
            order = pose_nms(kpts, kpt_scores, test_cfg)
            kpts, kpt_scores = kpts[order], kpt_scores[order]
        bboxes = np.concatenate((kpts.min(1), kpts.max(1)), axis=1) \
            if len(kpts) else np.zeros((0, 4), np.float32)
        preds.append(
            InstanceData(
                keypoints=kpts,
                keypoint_scores=kpt_scores,
                bboxes=bboxes,
                bbox_scores=kpt_scores.mean(-1)))
    return preds
