"""Fixtures of the deployment tests: the CPU config with random, seeded
weights whose head gives several clear centre peaks."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO, legacy_random_backbone

CPU_CONFIG = osp.join(REPO, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')


def require_onnx():
    """Skip the calling test module, at import, without onnxruntime or
    onnx (the optional ``onnx`` extra); returns onnxruntime."""
    ort = pytest.importorskip(
        'onnxruntime', reason='onnxruntime is not installed (optional: '
        "pip install -e '.[onnx]')")
    pytest.importorskip(
        'onnx',
        reason="onnx is not installed (optional: pip install -e '.[onnx]')")
    return ort


def cpu_config(max_proposals: int = 10) -> Config:
    """The CPU config, random backbone weights (offline)."""
    cfg = Config.fromfile(CPU_CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.max_proposals = max_proposals
    return cfg


def seeded_cpu_model():
    """A new CPU-config model in eval mode: seeded random weights, large
    head weights and a positive heatmap bias (many clear centre peaks)."""
    from mmpose.apis import init_model
    torch.manual_seed(0)  # the same weights whatever ran before
    net = init_model(cpu_config(), None, device='cpu')
    legacy_random_backbone(net)
    torch.manual_seed(3)
    for m in net.head.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, 0, 0.05)
    with torch.no_grad():
        net.head.heatmap_layers[-1].bias.fill_(0.5)
    return net.eval()


def add_quality_head(model, seed: int = 3):
    """Give ``model``'s head a quality head (``quality_cfg``, random
    weights from ``seed``), so that ``test_cfg.pose_score`` can be set."""
    from logocap_mmpose.models.heads.head_config import quality_settings
    from logocap_mmpose.models.quality import build_quality_head
    head = model.head
    head.quality_cfg = quality_settings(dict(hidden=16, seed=seed))
    head.quality = build_quality_head(head.quality_cfg, head.num_keypoints,
                                      head.cmp.hidden_channels)
    return model


@pytest.fixture(scope='session')
def seeded_model():
    """:func:`seeded_cpu_model`, one for the session."""
    return seeded_cpu_model()
