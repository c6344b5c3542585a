"""The pieces of the official (authors') inference that need no fixture:
the test resize, the proposal-order pose NMS, the codec's
``decode_on_input`` and the official configs."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from logocap_mmpose.datasets.transforms import (LOGOCAPTestResize,
                                                authors_test_size)
from logocap_mmpose.models.pose_nms import pose_nms_in_order
from mmengine.config import Config
from mmpose.evaluation.functional.nms import nearby_joints_nms
from mmpose.registry import KEYPOINT_CODECS, TRANSFORMS

from tests.conftest import REPO

OFFICIAL_CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'logocap', '*', '*_official_*.py')))


# ----------------------------------------------------------- test resize
def resize(img_w, img_h, input_size=512):
    img = np.random.default_rng(0).integers(
        0, 255, (img_h, img_w, 3), dtype=np.uint8)
    results = dict(img=img, ori_shape=(img_h, img_w))
    return TRANSFORMS.build(
        dict(type='LOGOCAPTestResize', input_size=input_size))(results)


@pytest.mark.float_bound
def test_test_resize_matches_the_authors_canvas():
    # COCO 000000288685.jpg, 640 x 436: short side 436 -> 512, long side
    # 640 * 512 / 436 = 751.6 -> 768, centre (320, 218) at the canvas centre
    out = resize(640, 436)
    f = 512 / 436
    assert out['input_size'] == (768, 512)
    assert out['img'].shape == (512, 768, 3)
    assert out['img_shape'] == (512, 768)
    np.testing.assert_array_equal(out['input_center'], [320, 218])
    expected = np.array([[f, 0, 384 - 320 * f], [0, f, 256 - 218 * f]])
    np.testing.assert_allclose(out['warp_mat'], expected, atol=1e-4)
    # portrait: the width is the short side
    assert authors_test_size(436, 640, 512) == (512, 768)
    assert authors_test_size(640, 436, 640) == (960, 640)


@pytest.mark.float_bound
def test_test_resize_round_trip_through_mmpose_meta():
    """MMPose's ``add_pred_to_datasample`` mapping inverts the warp."""
    out = resize(427, 641)
    points = np.array([[0, 0], [100.5, 37.25], [426, 640]], np.float64)
    warp = out['warp_mat']
    canvas = points @ warp[:, :2].T + warp[:, 2]
    back = canvas / np.array(out['input_size']) * out['input_scale'] + \
        out['input_center'] - 0.5 * out['input_scale']
    np.testing.assert_allclose(back, points, atol=1e-3)


def test_test_resize_rounds_as_the_authors_not_as_bottomup_resize():
    bottomup = TRANSFORMS.build(
        dict(type='BottomupResize', input_size=(512, 512), size_factor=64,
             resize_mode='expand'))
    img = np.zeros((437, 656, 3), np.uint8)
    theirs = bottomup(dict(img=img, ori_shape=(437, 656)))
    # long side 656 * 512 / 437 = 768.6: the authors round it down to 768
    assert resize(656, 437)['input_size'] == (768, 512)
    assert theirs['input_size'] == (832, 512)
    # centre of a 425 x 301 image: the authors take an integer pixel
    img = np.zeros((301, 425, 3), np.uint8)
    theirs = bottomup(dict(img=img, ori_shape=(301, 425)))
    np.testing.assert_array_equal(resize(425, 301)['input_center'],
                                  [213, 151])
    np.testing.assert_array_equal(theirs['input_center'], [212.5, 150.5])


def test_test_resize_needs_one_short_side():
    assert LOGOCAPTestResize((640, 640)).input_size == 640
    with pytest.raises(ValueError, match='short side'):
        LOGOCAPTestResize((512, 640))


# -------------------------------------------------------------- pose NMS
def chain_of_poses():
    """Three translated copies of one pose: 0 ~ 1 and 1 ~ 2 are
    duplicates (5 px apart, threshold 0.05 * 178.9 px), 0 and 2 are not."""
    base = np.stack([np.arange(17) * 10.0, np.arange(17) * 5.0], -1)
    poses = np.stack([base, base + [5, 0], base + [10, 0]])
    return poses, np.array([0.5, 0.8, 0.9])


def test_pose_nms_visits_in_proposal_order():
    poses, scores = chain_of_poses()
    # proposal order: 0 keeps 1 (its best duplicate), then 2 is visited
    # and kept (its best duplicate is itself)
    assert pose_nms_in_order(poses, scores, 0.05, 8) == [1, 2]
    # MMPose visits by score: 2 suppresses 1, and 0's best (1) is gone
    mmpose = nearby_joints_nms(
        [dict(keypoints=k, score=s) for k, s in zip(poses, scores)], 0.05, 8)
    assert list(mmpose) == [2]


def test_pose_nms_limit_and_degenerate_poses():
    poses, scores = chain_of_poses()
    far = poses + [[[1000, 0]]]
    both = np.concatenate([poses, far])
    kept = pose_nms_in_order(both, np.concatenate([scores, scores + 0.05]),
                             0.05, 8, max_dets=3)
    assert kept == [5, 2, 4]  # the best three, best first
    point = np.zeros((1, 17, 2))  # a single point: duplicates nothing
    assert pose_nms_in_order(point, np.ones(1)) == []
    assert pose_nms_in_order(np.zeros((0, 17, 2)), np.zeros(0)) == []


# ------------------------------------------------------ decode_on_input
@pytest.mark.float_bound
def test_decode_on_input_uses_the_upsampled_centre_map():
    codec = KEYPOINT_CODECS.build(
        dict(type='LOGOCAPLabel', input_size=(64, 64), heatmap_size=(16, 16),
             decode_on_input=True))
    K = 17
    yy, xx = torch.meshgrid(torch.arange(16.), torch.arange(16.),
                            indexing='ij')
    heatmaps = torch.zeros(1, K + 1, 16, 16)
    heatmaps[0, K] = torch.exp(-((xx - 9.3)**2 + (yy - 4.6)**2) / 8)
    displacements = torch.zeros(1, 2 * K, 16, 16)
    displacements[0, 0::2] = 0.25 * xx  # x displacement varies per cell
    displacements[0, 1::2] = -0.5
    keypoints, scores, valid = codec.decode_batch(heatmaps, displacements, 3)
    up = F.interpolate(heatmaps[:, K:], size=(64, 64), mode='bilinear',
                       align_corners=False)[0, 0]
    y, x = divmod(int(up.argmax()), 64)
    assert scores[0, 0] == up.max() and bool(valid[0, 0])
    # centre pixel + 4 * the displacement of the cell containing it
    expected = torch.tensor([x + 4 * 0.25 * (x // 4), y - 2.0])
    torch.testing.assert_close(keypoints[0, 0], expected.expand(K, 2))
    with pytest.raises(ValueError, match='integer stride'):
        KEYPOINT_CODECS.build(
            dict(type='LOGOCAPLabel', input_size=(60, 60),
                 heatmap_size=(16, 16), decode_on_input=True))


# -------------------------------------------------------------- configs
def test_official_configs_select_the_authors_inference():
    names = {osp.relpath(p, osp.join(REPO, 'configs', 'logocap'))
             for p in OFFICIAL_CONFIGS}
    assert names == {
        'coco/logocap_hrnet-w32_official_coco-512x512.py',
        'coco/logocap_hrnet-w48_official_coco-640x640.py',
        'ochuman/logocap_hrnet-w32_official_ochuman-512x512.py',
        'ochuman/logocap_hrnet-w48_official_ochuman-640x640.py',
    }
    for path in OFFICIAL_CONFIGS:
        cfg = Config.fromfile(path)
        head = cfg.model.head
        assert head.kem_cfg.sampling == 'authors'
        assert head.adaptation_cfg.impl == 'conv'
        assert head.decoder.decode_on_input is True
        assert head.in_channels == (720 if 'w48' in path else 480)
        assert cfg.model.test_cfg.nms_order == 'proposal'
        assert cfg.model.test_cfg.flip_test is True
        assert cfg.model.backbone.init_cfg is None
        size = head.decoder.input_size[0]
        for loader in (cfg.val_dataloader, cfg.test_dataloader):
            steps = {t.type: t for t in loader.dataset.pipeline}
            assert 'BottomupResize' not in steps
            assert steps['LOGOCAPTestResize'].input_size == size
        if 'ochuman' in path:
            assert cfg.test_dataloader.dataset.type == \
                'LOGOCAPOCHumanDataset'
            assert 'test_range' in cfg.test_dataloader.dataset.ann_file
            assert 'val_range' in cfg.val_dataloader.dataset.ann_file
