"""The installation layer: registration, checkpoint loading, entry imports."""
import os.path as osp
import shutil
import subprocess
import sys

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import logocap_mmpose
from mmpose.registry import KEYPOINT_CODECS, MODELS

from .conftest import COCO_SIGMAS


def test_registered_names_resolve_in_mmpose_scope():
    assert MODELS.get('LOGOCAPHead') is logocap_mmpose.models.LOGOCAPHead
    assert MODELS.get('OKSKernelLoss') is logocap_mmpose.models.OKSKernelLoss
    assert KEYPOINT_CODECS.get(
        'LOGOCAPLabel') is logocap_mmpose.codecs.LOGOCAPLabel
    codec_cfg = dict(type='LOGOCAPLabel', input_size=(64, 64),
                     heatmap_size=(16, 16))
    assert KEYPOINT_CODECS.build(codec_cfg).stride == 4
    head = MODELS.build(
        dict(type='LOGOCAPHead', in_channels=8, keypoint_sigmas=COCO_SIGMAS,
             branch_cfg=dict(embedding_channels=4),
             cmp_cfg=dict(channels=(8, 8, 8),
                          norm_cfg=dict(type='AttentiveNorm',
                                        num_mixtures=2)),
             decoder=codec_cfg))
    assert head.decoder.stride == 4


class _Tiny(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.fc(inputs)  # default_collate stacks the batch
        if mode == 'loss':
            return dict(loss=(out - labels).pow(2).mean())
        return out


class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]),
                    labels=torch.tensor([2.0 * i]))


def test_runner_checkpoint_loads_with_default_weights_only(tmp_path):
    runner = Runner(
        model=_Tiny(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_Points(), sampler=dict(type='DefaultSampler',
                                            shuffle=False),
            batch_size=4, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        default_scope='mmpose')
    runner.train()
    ckpt = osp.join(str(tmp_path), 'epoch_1.pth')
    assert osp.exists(ckpt)
    # torch's own default (weights_only=True on torch >= 2.6)
    state = torch.load(ckpt)
    assert 'message_hub' in state and 'meta' in state
    assert torch.equal(state['state_dict']['fc.weight'],
                       runner.model.fc.weight.detach())


def test_torchvision_and_inferencer_import():
    import torchvision  # noqa: F401
    from mmpose.apis import MMPoseInferencer  # noqa: F401
    assert torch.ops.torchvision.nms is not None


def test_torchvision_fallback_nms_matches_greedy():
    from logocap_mmpose.utils.torchvision_compat import _nms_cpu
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30],
                          [0, 0, 10, 9.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    keep = _nms_cpu(boxes, scores, 0.5)
    # box 3 (0.95) suppresses 0 (IoU 0.9) and 1 (IoU ~0.63); box 2 is apart
    assert keep.tolist() == [3, 2]


def test_mim_runs():
    mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    out = subprocess.run([mim, '--version'], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
