"""Multi-scale test of the head on GT-rendered maps (no ../shared data).

At every scale the head's maps are the codec's targets for the image resized
by that scale, so a correct fusion (resizing to the scale-1 map, offsets
rescaled to its cells, averaging) decodes the same poses as one scale.
"""
import numpy as np
import pytest
import torch

from logocap_mmpose.models.inference import (check_scales, fuse_scales,
                                             scaled_input_size)
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.structures import PoseDataSample
from tests.conftest import COCO_FLIP, COCO_SIGMAS
from tests.float_audit import assert_below

SIZE = 128  # scale-1 input side; maps are SIZE / 4
SCALES = [0.5, 1.0, 2.0]


def codec_at(scale: float):
    side = int(SIZE * scale)
    return KEYPOINT_CODECS.build(
        dict(type='LOGOCAPLabel', input_size=(side, side),
             heatmap_size=(side // 4, side // 4), decode_max_instances=6))


def gt_poses() -> np.ndarray:
    """Two persons (2, 17, 2), scale-1 input pixels, side by side."""
    rng = np.random.default_rng(0)
    poses = rng.uniform(8, 52, (2, 17, 2)).astype(np.float32)
    poses[1, :, 0] += 64
    poses[:, :, 1] += 30
    return poses


def rendered(scale: float, poses: np.ndarray):
    """Heatmaps (K+1, h, w) and offsets (2K, h, w) of the image resized by
    ``scale`` (pixel centres: x' + 0.5 = (x + 0.5) * scale)."""
    enc = codec_at(scale).encode((poses + 0.5) * scale - 0.5,
                                 area=np.full(len(poses), 2e4 * scale**2))
    return (torch.from_numpy(enc['heatmaps']),
            torch.from_numpy(enc['displacements']))


def build_head():
    head = MODELS.build(
        dict(type='LOGOCAPHead', in_channels=4, keypoint_sigmas=COCO_SIGMAS,
             branch_cfg=dict(heatmap_channels=4, offset_channels=4,
                             embedding_channels=2),
             kem_cfg=dict(global_size=17),
             cmp_cfg=dict(channels=(8, 8, 8),
                          norm_cfg=dict(type='AttentiveNorm',
                                        num_mixtures=2)),
             decoder=dict(type='LOGOCAPLabel', input_size=(SIZE, SIZE),
                          heatmap_size=(SIZE // 4, SIZE // 4),
                          decode_max_instances=6)))
    head.init_weights()
    return head.eval()


def gt_forward(poses: np.ndarray, batch: int = 1):
    """``head.forward`` returning the GT-rendered maps of the scale that the
    features' size gives (and, for flipped features, of the flipped image)."""
    def forward(feats):
        x = feats[-1]
        scale = x.shape[-1] / (SIZE // 4)
        flipped = bool(x[0, 0, 0, 0] < 0)  # the test marks flipped inputs
        p = poses.copy()
        if flipped:
            p[..., 0] = SIZE - 1 - p[..., 0]
            p = p[:, COCO_FLIP]
        hm, disp = rendered(scale, p)
        emb = torch.zeros(batch, 2, *hm.shape[-2:])
        return (hm[None].repeat(batch, 1, 1, 1),
                disp[None].repeat(batch, 1, 1, 1), emb)
    return forward


def feats_at(scale: float, batch: int = 1, flipped: bool = False):
    side = int(SIZE * scale) // 4
    x = torch.full((batch, 4, side, side), -1.0 if flipped else 1.0)
    return (x, )


def predict(head, poses, scales, mode, flip=False, batch=1):
    head.forward = gt_forward(poses, batch)
    head.forward_maps = lambda feats: head.forward(feats)[:2]  # flipped
    samples = [PoseDataSample(metainfo=dict(flip_indices=COCO_FLIP))
               for _ in range(batch)]
    per_scale = [[feats_at(s, batch), feats_at(s, batch, True)] if flip
                 else feats_at(s, batch) for s in scales]
    feats = per_scale[0] if len(scales) == 1 else per_scale
    try:
        with torch.no_grad():
            return head.predict(
                feats, samples,
                dict(mode=mode, flip_test=flip, nms_dist_thr=0.05,
                     scales=scales if len(scales) > 1 else None))
    finally:
        del head.forward, head.forward_maps


def matched_error(pred_kpts: np.ndarray, poses: np.ndarray) -> float:
    """Largest keypoint distance after matching each GT pose to its nearest
    prediction (px)."""
    errors = [np.abs(pred_kpts - pose).max(axis=(1, 2)).min()
              for pose in poses]
    return float(max(errors))


@pytest.mark.float_bound
@pytest.mark.parametrize('flip', [False, True])
def test_multiscale_decodes_the_single_scale_poses(flip):
    head, poses = build_head(), gt_poses()
    single = predict(head, poses, [1.0], 'baseline', flip)[0]
    fused = predict(head, poses, SCALES, 'baseline', flip)[0]
    assert len(single.keypoints) == len(fused.keypoints) == 2
    # offsets are linear in the cell, so their bilinear resizing is exact
    assert_below(matched_error(single.keypoints, poses), 1e-3, 'single')
    assert_below(matched_error(fused.keypoints, poses), 1e-3, 'fused')
    refined = predict(head, poses, SCALES, 'kems_only', flip)[0]
    assert matched_error(refined.keypoints, poses) <= 1.0


@pytest.mark.float_bound
def test_each_scale_alone_decodes_the_poses():
    """The GT-rendered input gives the same poses at every scale, alone and
    resized to the scale-1 map."""
    poses = gt_poses()
    base = rendered(1.0, poses)
    for scale in SCALES:
        hm, disp = rendered(scale, poses)
        initial, _, valid = codec_at(scale).decode_batch(hm[None],
                                                         disp[None])
        kpts = (initial[0][valid[0]].numpy() + 0.5) / scale - 0.5
        assert_below(matched_error(kpts, poses), 1e-3, f'scale {scale}')
        hm_1, disp_1, _ = fuse_scales(
            [(base[0][None], base[1][None], None),
             (hm[None], disp[None], None)], base=0)
        resized = 2 * disp_1 - base[1][None]  # the resized scale alone
        initial, _, valid = codec_at(1.0).decode_batch(hm_1, resized)
        assert_below(matched_error(initial[0][valid[0]].numpy(), poses),
                     1e-3, f'scale {scale} resized')


@pytest.mark.float_bound
def test_batch_of_two_gives_each_image_its_poses():
    head, poses = build_head(), gt_poses()
    preds = predict(head, poses, SCALES, 'baseline', flip=True, batch=2)
    assert len(preds) == 2
    for pred in preds:
        assert_below(matched_error(pred.keypoints, poses), 1e-3, 'batch')


def test_scales_are_checked_and_sizes_rounded():
    assert check_scales(None) == [1.0]
    assert check_scales([2, 1]) == [2.0, 1.0]
    for bad in ([], [0.5, 2.0], [0, 1]):
        with pytest.raises(ValueError, match='scales'):
            check_scales(bad)
    assert scaled_input_size(512, 384, 0.5) == (256, 192)
    assert scaled_input_size(512, 400, 0.5) == (256, 192)  # 200 -> 192
    assert scaled_input_size(64, 64, 0.1) == (32, 32)
