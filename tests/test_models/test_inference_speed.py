"""Inference-speed changes that must not change the poses: the
image and its flip in one pass, BatchNorm folded into the convs, and the
duplicate proposals dropped before the refinement. No ../shared data."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from logocap_mmpose.models.fusion import (FusedModelError, count_batch_norms,
                                          fuse_for_inference)
from logocap_mmpose.models.pose_nms import drop_duplicate_proposals
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from tests.conftest import COCO_FLIP, REPO, legacy_random_backbone
from tests.float_audit import assert_below

COCO = osp.join(REPO, 'configs', 'logocap', 'coco')
CPU_CONFIG = osp.join(COCO, 'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
W32_CONFIG = osp.join(COCO, 'logocap_hrnet-w32_4xb12-140e_coco-512x512.py')
OFFICIAL = osp.join(COCO, 'logocap_hrnet-w32_official_coco-512x512.py')


def build(config, seed=0, **test_cfg):
    """Random weights that decode proposals, with BatchNorm statistics far
    from the identity (so that a wrong fusion shows)."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.update(test_cfg)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if cfg.model.backbone.type == 'mmpretrain.TIMMBackbone':
        legacy_random_backbone(model)
    with torch.no_grad():
        for name, value in model.head.state_dict().items():
            if value.dtype.is_floating_point and 'running_var' not in name:
                value.copy_(torch.randn_like(value) * 0.1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        model.head.heatmap_layers[-1].bias.add_(1.0)  # positive scores
    model.head.decoder.decode_thr = -1.0
    return model.eval()


def samples(n, size):
    return [
        PoseDataSample(metainfo=dict(
            flip_indices=COCO_FLIP, pad_shape=(size, size),
            input_size=(size, size), input_center=np.array([size / 2] * 2),
            input_scale=np.array([size] * 2))) for _ in range(n)
    ]


def predict(model, x):
    with torch.no_grad():
        out = model.predict(x, samples(len(x), x.shape[-1]))
    return [(s.pred_instances.keypoints, s.pred_instances.keypoint_scores)
            for s in out]


def assert_same_poses(a, b, atol=1e-3, score_atol=1e-4):
    assert len(a) == len(b)
    for (k1, s1), (k2, s2) in zip(a, b):
        assert k1.shape == k2.shape and len(k1) > 0
        np.testing.assert_allclose(k1, k2, atol=atol)
        np.testing.assert_allclose(s1, s2, atol=score_atol)


# ------------------------------------------------------------ one-pass flip
@pytest.mark.float_bound
def test_flip_in_one_pass_gives_the_two_pass_poses():
    model = build(CPU_CONFIG, fuse_conv_bn=False)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 256, 256)
    batches = []
    extract = model.extract_feat

    def recording(inputs):
        batches.append(tuple(inputs.shape))
        return extract(inputs)

    model.extract_feat = recording
    one = predict(model, x)
    assert batches == [(4, 3, 256, 256)]  # image and flip, one pass
    batches.clear()
    model.test_cfg['flip_in_one_pass'] = False
    two = predict(model, x)
    assert batches == [(2, 3, 256, 256)] * 2
    assert_same_poses(one, two)


def test_flip_test_skips_the_embedding_of_the_flipped_image():
    model = build(CPU_CONFIG, fuse_conv_bn=False)
    calls = []
    model.head.embedding_layers.register_forward_pre_hook(
        lambda m, args: calls.append(args[0].shape[0]))
    predict(model, torch.randn(1, 3, 256, 256))
    assert calls == [1]


# ----------------------------------------------------------------- fusion
# BatchNorm folding reorders float operations, so the bound is relative to
# each tensor's largest value; see docs/reliability.md for the deviations
# measured on emulated CPUs
FUSION_RTOL = 1e-4


def fusion_share_of_bound(before, after) -> float:
    """Largest |after - before| / (FUSION_RTOL * (max|before| + |before|))
    over the tensors: below 1 passes."""
    share = 0.0
    for b, a in zip(before, after):
        scale = b.abs().max()
        assert scale > 0
        allowed = FUSION_RTOL * (scale + b.abs())
        share = max(share, float(((a - b).abs() / allowed).max()))
    return share


def fused_outputs(config):
    """The head's dense maps on a random image and the CMP's KAMs of random
    local KEMs, before and after :func:`fuse_for_inference`."""
    model = build(config)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        before = model.head.forward(model.extract_feat(x))
        local = torch.randn(3, model.head.num_keypoints * model.head.embedding_channels, 11, 11)
        kams = model.head.cmp(local)
        counts = fuse_for_inference(model)
        after = model.head.forward(model.extract_feat(x))
        kams_fused = model.head.cmp(local)
    return model, counts, (before, after), (kams, kams_fused)


@pytest.mark.float_bound
@pytest.mark.parametrize('config', [CPU_CONFIG, W32_CONFIG])
def test_fusion_keeps_the_dense_outputs(config):
    """Every BatchNorm fused is one after its conv in the forward pass: the
    maps and KAMs before and after fusion agree to float rounding."""
    model, counts, maps, kams = fused_outputs(config)
    assert counts['after'] < counts['before']
    # Attentive Norm's BatchNorm (no affine part) stays
    assert counts['after'] == sum(
        isinstance(m, nn.BatchNorm2d) and not m.affine
        for m in model.modules())
    assert_below(fusion_share_of_bound(*maps), 1.0, 'dense maps')
    assert_below(fusion_share_of_bound([kams[0]], [kams[1]]), 1.0, 'KAMs')


def test_fusion_bound_catches_a_wrong_fold(monkeypatch):
    """The bound above is loose enough for any CPU and still catches a
    real defect: every BatchNorm folded with its channels' statistics in
    reverse order (the wrong BatchNorm for each channel)."""
    from logocap_mmpose.models import fusion
    right = fusion.fold_batch_norm

    def wrong(conv, norm):
        with torch.no_grad():
            for name in ('running_mean', 'running_var', 'weight', 'bias'):
                value = getattr(norm, name)
                if value is not None:
                    value.copy_(value.flip(0))
        right(conv, norm)

    monkeypatch.setattr(fusion, 'fold_batch_norm', wrong)
    _, _, maps, kams = fused_outputs(CPU_CONFIG)
    assert fusion_share_of_bound(*maps) > 10
    assert fusion_share_of_bound([kams[0]], [kams[1]]) > 10


@pytest.mark.float_bound
def test_fusion_keeps_dekr_outputs():
    """DEKR (built as LOGOCAPPoseEstimator by the benchmark) fuses too; its
    BatchNorms after deformable convs stay."""
    cfg = Config.fromfile(osp.join(
        COCO, 'dekr_effnetlite0_1xb8-40e_coco-256x256.py'))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        before = model.head.forward(model.extract_feat(x))
        counts = fuse_for_inference(model)
        after = model.head.forward(model.extract_feat(x))
    assert counts['before'] - counts['after'] > 40 and counts['after'] > 0
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, atol=1e-4 * b.abs().max(),
                                   rtol=1e-4)


@pytest.mark.float_bound
def test_predicting_model_fuses_once_and_keeps_its_poses():
    x = torch.randn(1, 3, 256, 256)
    plain = predict(build(CPU_CONFIG, fuse_conv_bn=False), x)
    model = build(CPU_CONFIG)
    n = count_batch_norms(model)
    fused = predict(model, x)
    assert model._conv_bn_fused and count_batch_norms(model) < n
    assert_same_poses(plain, fused)
    assert_same_poses(fused, predict(model, x), atol=0, score_atol=0)


def test_fused_model_refuses_training_and_new_weights():
    model = build(CPU_CONFIG)
    state = model.state_dict()
    predict(model, torch.randn(1, 3, 128, 128))
    with pytest.raises(FusedModelError, match='fuse_conv_bn=False'):
        model.train()
    with pytest.raises(FusedModelError, match='rebuild'):
        model.load_state_dict(state)
    model.eval()  # eval mode is still fine


def test_a_model_that_trained_is_never_fused():
    model = build(CPU_CONFIG)
    model.train()
    model.eval()
    n = count_batch_norms(model)
    predict(model, torch.randn(1, 3, 128, 128))
    assert not model._conv_bn_fused and count_batch_norms(model) == n
    model.train()  # and it can go on training


def test_fuse_refuses_a_model_in_training_mode():
    model = build(CPU_CONFIG).train()
    with pytest.raises(FusedModelError, match='eval mode'):
        fuse_for_inference(model)


# ------------------------------------------------ duplicates before refining
def _pose(x, y, size=40.0, k=17):
    """A pose of k keypoints spread over a size x size box at (x, y)."""
    t = torch.linspace(0, 1, k)
    return torch.stack((x + size * t, y + size * (1 - t) ** 2), -1)


def test_drop_duplicate_proposals_by_hand():
    # 0 strong; 1 duplicates 0 (1 px away); 2 far; 3 duplicates 2;
    # 4 duplicates 0 but is invalid (below the centre threshold)
    poses = torch.stack([
        _pose(10, 10), _pose(11, 10), _pose(200, 100), _pose(200, 101),
        _pose(10, 11)
    ])[None]
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.1]])
    valid = torch.tensor([[True, True, True, True, False]])
    cfg = dict(nms_dist_thr=0.05, nms_joints_thr=8)
    initial, center, keep = drop_duplicate_proposals(poses, scores, valid,
                                                     cfg)
    assert keep.tolist() == [[True, True, False, False, False]]
    assert torch.equal(initial[0, 0], poses[0, 0])
    assert torch.equal(initial[0, 1], poses[0, 2])  # moved to the front
    assert center[0, :2].tolist() == pytest.approx([0.9, 0.7])
    # a looser distance test keeps all valid ones apart from none
    _, _, keep = drop_duplicate_proposals(poses, scores, valid,
                                          dict(nms_dist_thr=0.001,
                                               nms_joints_thr=8))
    assert keep.tolist() == [[True, True, True, True, False]]


def test_an_invalid_proposal_suppresses_nothing():
    poses = torch.stack([_pose(10, 10), _pose(10.5, 10)])[None]
    valid = torch.tensor([[True, True]])
    cfg = dict(nms_dist_thr=0.05)
    assert drop_duplicate_proposals(poses, torch.ones(1, 2), valid,
                                    cfg)[2].tolist() == [[True, False]]
    # batched: each image on its own
    poses2 = torch.cat((poses, poses.flip(1) + 300))
    valid2 = torch.tensor([[True, True], [True, False]])
    keep = drop_duplicate_proposals(poses2, torch.ones(2, 2), valid2, cfg)[2]
    assert keep.tolist() == [[True, False], [True, False]]


@pytest.mark.float_bound
def test_nms_before_refine_refines_a_subset_of_the_proposals():
    """Each proposal is refined on its own, so every pose (and score) the
    filtered run returns is one the unfiltered run refined; fewer reach the
    CMP (random weights give many near-identical proposals)."""
    model = build(CPU_CONFIG, fuse_conv_bn=False, nms_dist_thr=0)
    refined = []
    model.head.cmp.register_forward_pre_hook(
        lambda m, args: refined.append(args[0].shape[0]))
    x = torch.randn(1, 3, 256, 256)
    (every, every_scores), = predict(model, x)  # no pose NMS: all refined
    # a loose duplicate test: random weights put the proposals' poses on
    # their own centres, apart at 0.05 of a pose's diagonal
    model.test_cfg.update(nms_before_refine=True, nms_dist_thr=1.0)
    (kept, kept_scores), = predict(model, x)
    assert refined[1] < refined[0] == len(every)
    assert 1 <= len(kept) <= refined[1]
    for pose, score in zip(kept, kept_scores):
        match = np.abs(every - pose).max(axis=(1, 2)).argmin()
        np.testing.assert_allclose(every[match], pose, atol=1e-4)
        np.testing.assert_allclose(every_scores[match], score, atol=1e-6)


def test_official_configs_keep_every_proposal():
    cfg = Config.fromfile(OFFICIAL)
    assert not cfg.model.test_cfg.get('nms_before_refine', False)


def test_init_model_and_inference_fuse(tmp_path):
    """MMPose's init_model + inference_bottomup (what MMPoseInferencer and
    the demos use) predict with a fused model."""
    from mmpose.apis import inference_bottomup, init_model
    cfg = Config.fromfile(CPU_CONFIG)
    cfg.model.backbone.init_cfg = None
    model = init_model(cfg, None, device='cpu')
    n = count_batch_norms(model)
    img = np.random.default_rng(0).integers(0, 255, (96, 128, 3),
                                            dtype=np.uint8)
    inference_bottomup(model, img)
    assert model._conv_bn_fused and count_batch_norms(model) < n
