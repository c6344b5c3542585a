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


def check_nms_order(order: str) -> str:
    """``order`` if it is one of :data:`NMS_ORDERS` (ValueError naming
    ``test_cfg.nms_order`` otherwise)."""
    if order not in NMS_ORDERS:
        raise ValueError(f'test_cfg.nms_order must be one of {NMS_ORDERS}, '
                         f'got {order!r}')
    return order


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
    dup = duplicate_matrix_tensor(
        torch.from_numpy(np.asarray(keypoints))[None], dist_thr, joints_thr)
    return dup[0].numpy()


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
    order = check_nms_order(test_cfg.get('nms_order', 'score'))
    if order == 'proposal':
        return pose_nms_in_order(keypoints, keypoint_scores.mean(-1),
                                 dist_thr, joints_thr, max_dets)
    return nearby_joints_nms(
        [dict(keypoints=k, score=s) for k, s in zip(keypoints,
                                                     keypoint_scores)],
        dist_thr, joints_thr, score_per_joint=True, max_dets=max_dets)


def duplicate_matrix_tensor(keypoints: Tensor, dist_thr: float,
                            joints_thr: int) -> Tensor:
    """:func:`duplicate_matrix`, batched over images: ``dup[b, i, j]``.

    Args:
        keypoints (Tensor): (B, N, K, 2).
        dist_thr (float): distance threshold relative to the box diagonal.
        joints_thr (int): number of close keypoints that must be exceeded.

    Returns:
        Tensor: (B, N, N) bool.
    """
    span = keypoints.amax(2) - keypoints.amin(2)  # (B, N, 2)
    diagonal = span.norm(dim=-1)  # (B, N)
    dist = (keypoints[:, :, None] - keypoints[:, None]).norm(
        dim=-1)  # (B, N, N, K)
    close = dist < dist_thr * diagonal[..., None, None]
    return close.sum(-1) > joints_thr


def _joints_thr(test_cfg: dict, num_keypoints: int) -> int:
    """``test_cfg.nms_joints_thr``, K // 2 when None."""
    joints_thr = test_cfg.get('nms_joints_thr', None)
    return num_keypoints // 2 if joints_thr is None else int(joints_thr)


def duplicate_proposals(initial: Tensor, valid: Tensor,
                        test_cfg: dict) -> Tensor:
    """The proposals that :func:`drop_duplicate_proposals` drops, in place
    (no reordering): ``dropped`` (B, N) bool, True where a valid proposal
    ``i < j`` duplicates proposal ``j``.

    Args:
        initial (Tensor): (B, N, K, 2) initial poses, input pixels.
        valid (Tensor): (B, N) bool.
        test_cfg (dict): ``nms_dist_thr`` and ``nms_joints_thr``.

    Returns:
        Tensor: (B, N) bool.
    """
    N, K = initial.shape[1:3]
    dup = duplicate_matrix_tensor(initial, test_cfg.get('nms_dist_thr', 0.05),
                                  _joints_thr(test_cfg, K))  # j near i
    earlier = torch.ones(N, N, dtype=torch.bool,
                         device=initial.device).triu(1)  # i < j
    return (dup & earlier & valid[:, :, None]).any(1)


def _visiting_rank(scores: Tensor, order: str) -> Tensor:
    """(B, N) the step at which each pose is visited: its index
    ('proposal'), or its place from the highest score down ('score'; equal
    scores later index first, as numpy's reversed ascending argsort of a
    short array)."""
    N = scores.shape[1]
    index = torch.arange(N, device=scores.device)
    if order == 'proposal':
        return index[None].expand_as(scores)
    higher = (scores[:, None, :] > scores[:, :, None]) | (
        (scores[:, None, :] == scores[:, :, None]) &
        (index[None, :] > index[:, None])[None])  # [b, i, j]: j before i
    return higher.sum(-1)


def pose_nms_tensor(keypoints: Tensor, scores: Tensor, valid: Tensor,
                    dist_thr: float = 0.05, joints_thr: Optional[int] = None,
                    max_dets: int = 30, order: str = 'score') -> Tensor:
    """The greedy pose NMS of :func:`pose_nms` on tensors, batched over
    images: which poses it keeps.

    The same steps as MMPose's ``nearby_joints_nms`` ('score') and
    :func:`pose_nms_in_order` ('proposal') on the valid poses of each
    image: visit the poses in order; a pose not yet suppressed takes its
    duplicates (:func:`duplicate_matrix_tensor`, among the valid poses),
    keeps the best-scored of them (the first of equal ones) unless that one
    is suppressed, and suppresses them all. The greedy pass is N unrolled
    steps (N, the proposal count, is fixed in an exported graph), each a
    few (B, N) tensor operations: no Python loop over the poses of an
    image and no data-dependent branch, so it traces to ONNX. Then the
    ``max_dets`` best-scored kept poses stay.

    Args:
        keypoints (Tensor): (B, N, K, 2) poses in proposal order.
        scores (Tensor): (B, N) pose scores (the mean keypoint score).
        valid (Tensor): (B, N) bool, the poses that take part.
        dist_thr (float): see :func:`duplicate_matrix`.
        joints_thr (int, optional): see :func:`duplicate_matrix`; K // 2
            when None.
        max_dets (int): most poses kept per image; <= 0 for no limit.
        order (str): one of :data:`NMS_ORDERS`.

    Returns:
        Tensor: (B, N) bool, the kept poses. Equal scores aside, the poses
        :func:`pose_nms` keeps.
    """
    check_nms_order(order)
    N, K = keypoints.shape[1:3]
    if joints_thr is None:
        joints_thr = K // 2
    dup = duplicate_matrix_tensor(keypoints, dist_thr, joints_thr) & \
        valid[:, None, :]  # (B, N, N), duplicates among the valid poses
    rank = _visiting_rank(scores, order)
    index = torch.arange(N, device=keypoints.device)
    low = torch.finfo(scores.dtype).min
    suppressed = torch.zeros_like(valid)
    kept = torch.zeros_like(valid)
    for step in range(N):  # the greedy steps, unrolled (N fixed)
        visit = (rank == step) & valid & ~suppressed  # (B, N), <= 1 True
        group = (visit[:, :, None] & dup).any(1)  # (B, N), its duplicates
        best = torch.where(group, scores, torch.full_like(scores,
                                                          low)).argmax(-1)
        best = index[None] == best[:, None]  # (B, N) one-hot
        take = group.any(-1) & ~(best & suppressed).any(-1)  # (B,)
        kept = kept | (best & take[:, None])
        suppressed = suppressed | (group & take[:, None])
    if max_dets > 0:
        kept = kept & (_kept_rank(scores, kept) < max_dets)
    return kept


def _kept_rank(scores: Tensor, kept: Tensor) -> Tensor:
    """(B, N) the place of each kept pose among the kept poses of its image
    from the highest score down (equal scores: later index first); the
    poses not kept come after them, in their order."""
    N = scores.shape[1]
    index = torch.arange(N, device=scores.device)
    rank = _visiting_rank(scores, 'score')
    before = kept[:, None, :] & (rank[:, None, :] < rank[:, :, None])
    unkept_before = ~kept[:, None, :] & (index[None, None, :] <
                                         index[None, :, None])
    count = kept.sum(-1, keepdim=True)
    return torch.where(kept, before.sum(-1), count + unkept_before.sum(-1))


def sort_kept(kept: Tensor, scores: Tensor, *values: Tensor
              ) -> Tuple[Tensor, ...]:
    """The kept poses first, from the highest score down, the others after
    them, in proposal order.

    Args:
        kept (Tensor): (B, N) bool.
        scores (Tensor): (B, N) pose scores.
        *values (Tensor): (B, N, ...) tensors to reorder (keypoints,
            keypoint scores, ...).

    Returns:
        tuple: ``kept``, ``scores`` and ``values`` reordered, and the kept
        count (B,) (int64).
    """
    N = scores.shape[1]
    place = _kept_rank(scores, kept)  # (B, N), a permutation of 0..N-1
    index = torch.arange(N, device=scores.device)
    # source of each output place: the one-hot inverse of the permutation
    source = (place[:, None, :] == index[None, :, None]).to(
        torch.float32).argmax(-1)  # (B, N)
    out = []
    for t in (kept, scores) + values:
        idx = source.reshape(source.shape + (1, ) * (t.dim() - 2))
        out.append(t.gather(1, idx.expand_as(t)))
    return tuple(out) + (kept.sum(-1), )


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
    keep = valid & ~duplicate_proposals(initial, valid, test_cfg)
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
