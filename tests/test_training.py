"""A small LOGO-CAP model trains on CPU over coco-mini train."""
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from .conftest import require_shared


class _LossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: float(v) for k, v in outputs.items()})


def small_config(root, work_dir, iters):
    codec = dict(type='LOGOCAPLabel', input_size=(256, 256),
                 heatmap_size=(64, 64), decode_max_instances=10)
    return Config(dict(
        default_scope='mmpose',
        work_dir=work_dir,
        model=dict(
            type='BottomupPoseEstimator',
            data_preprocessor=dict(
                type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
            backbone=dict(type='ResNet', depth=18, out_indices=(0, 1)),
            neck=dict(type='FeatureMapProcessor', concat=True),
            head=dict(
                type='LOGOCAPHead', in_channels=64 + 128,
                metainfo=dict(from_file='configs/_base_/datasets/coco.py'),
                heatmap_channels=32, offset_channels=64,
                embedding_channels=16, cmp_channels=(64, 32, 32),
                num_mixtures=8, global_kem_size=49, num_proposals=10,
                decoder=codec),
            test_cfg=dict(flip_test=True)),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            dataset=dict(
                type='CocoDataset', data_root=root, data_mode='bottomup',
                ann_file='annotations/person_keypoints_train2017.json',
                data_prefix=dict(img='train2017/'),
                pipeline=[
                    dict(type='LoadImage'),
                    dict(type='BottomupRandomAffine', input_size=(256, 256),
                         shift_factor=0.2, scale_factor=(0.75, 1.5),
                         rotate_factor=30),
                    dict(type='RandomFlip', direction='horizontal'),
                    dict(type='GenerateTarget', encoder=codec),
                    dict(type='BottomupGetHeatmapMask'),
                    dict(type='PackPoseInputs')
                ])),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=1e-3)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=5),
            checkpoint=dict(type='CheckpointHook', interval=iters)),
        randomness=dict(seed=0),
        log_level='WARNING'))


@pytest.mark.slow
def test_thirty_iterations_loss_falls(tmp_path):
    root = require_shared('coco-mini')
    runner = Runner.from_cfg(small_config(root, str(tmp_path), 30))
    recorder = _LossRecorder()
    runner.register_hook(recorder)
    runner.train()
    totals = [d['loss'] for d in recorder.losses]
    assert len(totals) == 30
    assert all(np.isfinite(v) for d in recorder.losses for v in d.values())
    first, last = np.mean(totals[:5]), np.mean(totals[-5:])
    print(f'loss: first-5 mean {first:.5f}, last-5 mean {last:.5f}')
    assert last < first
