"""Pose NMS that visits the poses in proposal order (the authors' rule).

MMPose's ``nearby_joints_nms`` visits the poses from the highest score down.
The authors' code (the DEKR rule it inherits) uses the same duplicate test
but visits the poses in the order they come, which for LOGO-CAP is the
centre-score order of the proposals. The kept sets can differ when a pose
with a lower centre score has the higher pose score.
"""
from typing import List, Optional

import numpy as np


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
