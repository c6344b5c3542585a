"""Pose NMS that visits the poses in proposal order (the authors' rule).

MMPose's ``nearby_joints_nms`` visits the poses from the highest score down.
The authors' code (the DEKR rule it inherits) uses the same duplicate test
but visits the poses in the order they come, which for LOGO-CAP is the
centre-score order of the proposals. The kept sets can differ when a pose
with a lower centre score has the higher pose score.

:func:`nms_and_pack` is the last inference step of the head: the pose score
filter, the pose NMS that ``test_cfg.nms_order`` selects and the packing into
MMPose's ``InstanceData``.
"""
from typing import List, Optional

import numpy as np
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
