"""Multi-scale test through ``LOGOCAPPoseEstimator`` (no ../shared data):
the network runs once per scale (and flip), the head fuses the maps."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from tests.conftest import COCO_FLIP, REPO, legacy_random_backbone

CPU_CONFIG = osp.join(REPO, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')


@pytest.fixture(scope='module')
def model():
    cfg = Config.fromfile(CPU_CONFIG)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    legacy_random_backbone(model)
    with torch.no_grad():  # weights that decode proposals
        for name, value in model.head.state_dict().items():
            if value.dtype.is_floating_point and 'running_var' not in name:
                value.copy_(torch.randn_like(value) * 0.1)
        model.head.heatmap_layers[-1].bias.add_(1.0)  # positive scores
    model.head.decoder.decode_thr = -1.0
    return model.eval()


def samples(n, size=256):
    return [
        PoseDataSample(metainfo=dict(
            flip_indices=COCO_FLIP, pad_shape=(size, size),
            input_size=(size, size), input_center=np.array([size / 2] * 2),
            input_scale=np.array([size] * 2))) for _ in range(n)
    ]


def run(model, inputs, test_cfg):
    saved = model.test_cfg
    model.test_cfg = dict(saved, **test_cfg)
    shapes = []
    extract = model.extract_feat

    def recording(x):
        shapes.append((x.shape[0], ) + tuple(x.shape[-2:]))
        return extract(x)

    model.extract_feat = recording
    try:
        with torch.no_grad():
            out = model.predict(inputs, samples(len(inputs)))
    finally:
        model.test_cfg = saved
        del model.extract_feat
    return out, shapes


def poses(out):
    return [(s.pred_instances.keypoints, s.pred_instances.keypoint_scores)
            for s in out]


def test_scale_one_alone_is_the_single_scale_test(model):
    torch.manual_seed(1)
    x = torch.randn(1, 3, 256, 256)
    plain, _ = run(model, x, dict(flip_test=True))
    one, shapes = run(model, x, dict(flip_test=True, scales=[1.0]))
    assert shapes == [(2, 256, 256)]  # image and flip in one pass
    for (k1, s1), (k2, s2) in zip(poses(plain), poses(one)):
        assert np.array_equal(k1, k2) and np.array_equal(s1, s2)


@pytest.mark.float_bound
def test_every_scale_and_flip_runs_and_batches_agree(model):
    torch.manual_seed(1)
    x = torch.randn(1, 3, 256, 256)
    cfg = dict(flip_test=True, scales=[0.5, 1.0, 2.0])
    alone, shapes = run(model, x, cfg)
    # the image and its flip at each scale, one pass (batch of 2) per
    # scale, sides multiples of 32
    assert shapes == [(2, 128, 128), (2, 256, 256), (2, 512, 512)]
    single, _ = run(model, x, dict(flip_test=True))
    kpts, scores = poses(alone)[0]
    assert len(kpts) > 0 and np.isfinite(kpts).all()
    # the fused maps are not the scale-1 maps: the scores change
    assert not np.array_equal(scores, poses(single)[0][1])
    pair, _ = run(model, torch.cat((x, x)), cfg)
    for k, s in poses(pair):
        np.testing.assert_allclose(k, kpts, atol=1e-3)
        np.testing.assert_allclose(s, scores, atol=1e-5)


def test_bad_scales_are_refused(model):
    with pytest.raises(ValueError, match='scales'):
        run(model, torch.randn(1, 3, 256, 256), dict(scales=[0.5, 2.0]))
