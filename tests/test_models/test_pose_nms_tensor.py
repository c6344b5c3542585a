"""The tensor pose NMS (``models/pose_nms.py``, ``pose_nms_tensor``, what
the one-graph ONNX export traces) keeps exactly the poses of the greedy
numpy NMS (MMPose's ``nearby_joints_nms`` and ``pose_nms_in_order``) on
random cases with many duplicates, and ``sort_kept`` orders them as the
head does."""
import numpy as np
import pytest
import torch

from logocap_mmpose.models.pose_nms import (drop_duplicate_proposals,
                                            duplicate_proposals, pose_nms,
                                            pose_nms_tensor, sort_kept)


def random_case(seed, B=3, N=12, K=17):
    """Poses around a few person centres (so that many duplicate each
    other), distinct scores, a random valid prefix per image."""
    rng = np.random.default_rng(seed)
    people = rng.uniform(0, 200, (B, 4, 2))
    owner = rng.integers(0, 4, (B, N))
    shape = rng.normal(0, 20, (B, 4, K, 2))
    jitter = rng.normal(0, rng.choice([0.5, 2.0, 6.0]), (B, N, K, 2))
    keypoints = (np.take_along_axis(people, owner[..., None], 1)[:, :, None]
                 + np.take_along_axis(shape, owner[..., None, None], 1) +
                 jitter).astype(np.float32)
    scores = rng.permutation(B * N).reshape(B, N).astype(np.float32) / (
        B * N) + 0.01
    counts = rng.integers(0, N + 1, B)
    valid = np.arange(N)[None] < counts[:, None]
    return keypoints, scores, valid


@pytest.mark.parametrize('order', ['score', 'proposal'])
@pytest.mark.parametrize('max_dets', [30, 2, 0])
@pytest.mark.parametrize('seed', range(8))
def test_tensor_nms_keeps_the_greedy_poses(order, max_dets, seed):
    keypoints, scores, valid = random_case(seed)
    cfg = dict(nms_dist_thr=0.1, nms_joints_thr=5, max_num_people=max_dets,
               nms_order=order)
    kept = pose_nms_tensor(torch.from_numpy(keypoints),
                           torch.from_numpy(scores), torch.from_numpy(valid),
                           0.1, 5, max_dets, order).numpy()
    removed = 0
    for b in range(len(keypoints)):
        index = np.flatnonzero(valid[b])
        expected = set()
        if len(index):
            per_joint = np.repeat(scores[b, index, None], 17, 1)
            expected = {int(index[i]) for i in
                        pose_nms(keypoints[b, index], per_joint, cfg)}
        assert set(np.flatnonzero(kept[b]).tolist()) == expected
        removed += len(index) - len(expected)
    if max_dets != 2:
        assert removed > 0  # the case has duplicates


def test_sort_kept_puts_the_kept_poses_first_best_first():
    scores = torch.tensor([[0.2, 0.9, 0.5, 0.7], [0.1, 0.3, 0.2, 0.4]])
    kept = torch.tensor([[True, False, True, True], [False] * 4])
    values = torch.arange(8.).reshape(2, 4)
    k, s, v, count = sort_kept(kept, scores, values)
    assert count.tolist() == [3, 0]
    assert k.tolist() == [[True, True, True, False], [False] * 4]
    assert s[0].tolist() == pytest.approx([0.7, 0.5, 0.2, 0.9])
    assert v.tolist() == [[3., 2., 0., 1.], [4., 5., 6., 7.]]


def test_drop_duplicate_proposals_is_unchanged():
    """``drop_duplicate_proposals`` moves the kept proposals to the front;
    :func:`duplicate_proposals` marks the same ones in place."""
    keypoints, scores, valid = random_case(3)
    order = np.argsort(-scores, 1, kind='stable')
    keypoints = np.take_along_axis(keypoints, order[..., None, None], 1)
    scores = np.take_along_axis(scores, order, 1)
    cfg = dict(nms_dist_thr=0.1, nms_joints_thr=5)
    t = [torch.from_numpy(a) for a in (keypoints, scores, valid)]
    initial, centre, keep = drop_duplicate_proposals(*t, cfg)
    dropped = duplicate_proposals(t[0], t[2], cfg)
    mask = t[2] & ~dropped
    assert keep.sum() == mask.sum() and dropped.any()
    for b in range(len(keypoints)):
        n = int(mask[b].sum())
        assert torch.equal(initial[b, :n], t[0][b][mask[b]])
        assert torch.equal(centre[b, :n], t[1][b][mask[b]])
        assert keep[b, :n].all() and not keep[b, n:].any()
