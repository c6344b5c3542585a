"""GPU checks (``-m cuda``; skipped where torch sees no CUDA device).

On a GPU machine: ``.venv/bin/python -m pytest tests -m cuda``. They cover
what the CPU suite cannot: a training run with MMEngine's AMP wrapper through
MMPose's ``tools/train.py --amp``, a test step on the GPU equal to the CPU's,
a refinement that never waits for the device (``torch.cuda`` sync debug mode
set to 'error' around it), ``test_cfg.channels_last`` in float32 and under
AMP, and ``tools/benchmark_inference.py --device cuda``.
"""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from tests.conftest import COCO_MINI, REPO, require_shared
from tests.test_integration.test_entry_points import (CPU_CONFIG, TINY,
                                                      coco_options,
                                                      mmpose_tool, run)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA device (torch.cuda.is_available() '
                       'is False here)'),
]
DEKR_CPU = osp.join(REPO, 'configs', 'logocap', 'coco',
                    'dekr_effnetlite0_1xb8-40e_coco-256x256.py')


def test_amp_training_iterations(tmp_path):
    require_shared('coco-mini')
    out = run([sys.executable, mmpose_tool('train.py'), CPU_CONFIG, '--amp',
               '--work-dir', str(tmp_path), '--cfg-options'] +
              coco_options() + TINY + ['val_cfg=None', 'val_dataloader=None',
                                       'val_evaluator=None'])
    assert 'AmpOptimWrapper' in out or 'amp' in out.lower()
    assert osp.exists(osp.join(str(tmp_path), 'epoch_1.pth'))


def _model(device):
    from tests.test_models.test_inference_speed import build
    return build(CPU_CONFIG).to(device)


def test_test_step_on_gpu_equals_cpu():
    from tests.test_models.test_inference_speed import samples
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 256)
    out = {}
    for device in ('cpu', 'cuda'):
        model = _model(device)
        with torch.no_grad():
            res = model.predict(x.to(device), samples(2, 256))
        out[device] = [(r.pred_instances.keypoints,
                        r.pred_instances.keypoint_scores) for r in res]
    for (kc, sc), (kg, sg) in zip(out['cpu'], out['cuda']):
        assert kc.shape == kg.shape and len(kc) > 0
        np.testing.assert_allclose(kg, kc, atol=1e-2)
        np.testing.assert_allclose(sg, sc, atol=1e-3)


def test_refinement_makes_no_host_device_sync():
    model = _model('cuda')
    head = model.head
    torch.manual_seed(0)
    heatmaps = torch.rand(1, 17, 64, 64, device='cuda')
    embedding = torch.randn(1, head.embedding_channels, 64, 64,
                            device='cuda')
    initial = torch.rand(1, 10, 17, 2, device='cuda') * 255
    with torch.no_grad():
        head.refine('full', heatmaps, embedding, initial)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            for mode in ('full', 'kems_only', 'kams_only', 'baseline'):
                head.refine(mode, heatmaps, embedding, initial)
        finally:
            torch.cuda.set_sync_debug_mode('default')


def test_benchmark_runs_on_cuda(tmp_path):
    require_shared('coco-mini')
    out = run([sys.executable, osp.join(REPO, 'tools',
                                        'benchmark_inference.py'),
               CPU_CONFIG, DEKR_CPU, '--data-root', COCO_MINI,
               '--num-images', '2', '--warmup', '1', '--repeats', '1',
               '--proposals', '1', '5', '--device', 'cuda', '--out',
               str(tmp_path / 'bench.md')])
    assert '# Inference benchmark (cuda' in out
    assert 'speed changes' in out


def _poses(model, x, autocast=False):
    from tests.test_models.test_inference_speed import samples
    with torch.no_grad(), torch.autocast('cuda', enabled=autocast):
        res = model.predict(x, samples(len(x), x.shape[-1]))
    return [(r.pred_instances.keypoints, r.pred_instances.keypoint_scores)
            for r in res]


def test_channels_last_on_gpu_with_and_without_amp():
    """``test_cfg.channels_last`` on the GPU: float32 gives the contiguous
    model's poses; under AMP (float16 autocast) the poses stay finite and
    the proposals the same, the keypoints within a few pixels."""
    from tests.test_models.test_inference_speed import build
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 256, device='cuda')
    plain = build(CPU_CONFIG, channels_last=False).to('cuda').eval()
    fast = build(CPU_CONFIG, channels_last=True).to('cuda').eval()
    expected = _poses(plain, x)
    for got in (_poses(fast, x), _poses(fast, x, autocast=True)):
        assert len(got) == len(expected) == 2
        for (kg, sg), (ke, _) in zip(got, expected):
            assert kg.shape == ke.shape and len(ke) > 0
            assert np.isfinite(kg).all() and np.isfinite(sg).all()
    fp32 = _poses(fast, x)
    for (kg, sg), (ke, se) in zip(fp32, expected):
        np.testing.assert_allclose(kg, ke, atol=1e-2)
        np.testing.assert_allclose(sg, se, atol=1e-3)
    half = _poses(fast, x, autocast=True)
    for (kg, _), (ke, _) in zip(half, expected):
        near = np.abs(kg - ke).max(-1) <= 4.0
        assert near.mean() >= 0.9, near.mean()
