"""Training interrupted: kill -9 mid-epoch then
``--resume`` gives the weights of an uninterrupted run; an image file that
becomes unreadable mid-epoch stops the run naming it, or is skipped."""
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmpose
from logocap_mmpose.datasets.loading import ImageInputError
from logocap_mmpose.analysis import labelled_image_ids, write_coco_subset
from tests.conftest import require_shared
from tests.test_integration.test_training import small_config

TRAIN_PY = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools',
                    'train.py')


def subset(root, dst_dir, num):
    """The first ``num`` labelled coco-mini train images, copied with
    their annotation file into ``dst_dir`` (COCO layout)."""
    with open(osp.join(root, 'annotations',
                       'person_keypoints_train2017.json')) as f:
        coco = json.load(f)
    ids = labelled_image_ids(coco)[:num]
    os.makedirs(osp.join(dst_dir, 'annotations'))
    os.makedirs(osp.join(dst_dir, 'train2017'))
    write_coco_subset(coco, ids, osp.join(
        dst_dir, 'annotations', 'person_keypoints_train2017.json'))
    names = {im['id']: im['file_name'] for im in coco['images']}
    for i in ids:
        shutil.copy(osp.join(root, 'train2017', names[i]),
                    osp.join(dst_dir, 'train2017', names[i]))
    return [osp.join(dst_dir, 'train2017', names[i]) for i in ids]


def epoch_config(root, work_dir, epochs, seed_hook=True):
    """Three epochs of 3 iterations (6 images, batch 2), a checkpoint per
    epoch, LOGO-CAP's estimator and hooks."""
    cfg = small_config(root, work_dir, 1)
    cfg.model.type = 'LOGOCAPPoseEstimator'
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.custom_hooks = [dict(type='EpochSeedHook')] if seed_hook else []
    cfg.custom_imports = dict(imports=['logocap_mmpose'],
                              allow_failed_imports=False)
    cfg.log_level = 'INFO'
    return cfg


def train_command(cfg_path, work_dir, *extra):
    return [sys.executable, TRAIN_PY, cfg_path, '--work-dir', work_dir,
            *extra]


def weights(path):
    return torch.load(path, map_location='cpu',
                      weights_only=False)['state_dict']


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def kill_during_epoch_two(cmd, work_dir, env, timeout=300):
    """Start ``cmd``, SIGKILL it once the log shows epoch 2's first
    iteration; returns whether epoch 2's checkpoint existed at the kill."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pattern = re.compile(r'Epoch\(train\)\s+\[2\]\[\s*1/')
    start = time.time()
    try:
        while time.time() - start < timeout:
            logs = [osp.join(dp, f) for dp, _, fs in os.walk(work_dir)
                    for f in fs if f.endswith('.log')]
            if any(pattern.search(open(p).read()) for p in logs):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return osp.exists(osp.join(work_dir, 'epoch_2.pth'))
            if proc.poll() is not None:
                raise AssertionError('training ended before it was killed')
            time.sleep(0.05)
        raise AssertionError('epoch 2 never started')
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted(tmp_path):
    root = subset(require_shared('coco-mini'), str(tmp_path / 'data'), 6)
    data_root = str(tmp_path / 'data')
    assert len(root) == 6
    cfg_path = str(tmp_path / 'cfg.py')
    epoch_config(data_root, '', 3).dump(cfg_path)
    env = dict(os.environ, OMP_NUM_THREADS='2', PYTHONPATH=os.getcwd())
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    subprocess.run(train_command(cfg_path, straight), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not kill_during_epoch_two(train_command(cfg_path, killed),
                                     killed, env)
    assert osp.exists(osp.join(killed, 'epoch_1.pth'))
    subprocess.run(train_command(cfg_path, killed, '--resume'), env=env,
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    for epoch in (2, 3):
        assert same_weights(
            weights(osp.join(straight, f'epoch_{epoch}.pth')),
            weights(osp.join(killed, f'epoch_{epoch}.pth'))), epoch
    # the weights moved between the checkpoints (the equality is no
    # accident of a model that does not train)
    assert not same_weights(weights(osp.join(straight, 'epoch_2.pth')),
                            weights(osp.join(straight, 'epoch_3.pth')))


@pytest.mark.slow
def test_resume_without_epoch_seed_hook_differs(tmp_path):
    """The control: without EpochSeedHook a resumed run draws other
    augmentation, so the equality above is the hook's doing."""
    subset(require_shared('coco-mini'), str(tmp_path / 'data'), 6)
    data_root = str(tmp_path / 'data')
    straight = epoch_config(data_root, str(tmp_path / 'a'), 2, False)
    Runner.from_cfg(straight).train()
    resumed = epoch_config(data_root, str(tmp_path / 'b'), 2, False)
    resumed.resume = True
    resumed.load_from = str(tmp_path / 'a' / 'epoch_1.pth')
    Runner.from_cfg(resumed).train()
    assert not same_weights(weights(str(tmp_path / 'a' / 'epoch_2.pth')),
                            weights(str(tmp_path / 'b' / 'epoch_2.pth')))


class _Corrupter(Hook):
    """Overwrites ``path`` with bytes that are no image after iteration 1."""

    def __init__(self, path):
        self.path = path

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter == 0:
            with open(self.path, 'wb') as f:
                f.write(b'this is not a JPEG any more')


def corrupt_run(tmp_path, skip):
    paths = subset(require_shared('coco-mini'), str(tmp_path / 'data'), 4)
    cfg = small_config(str(tmp_path / 'data'), str(tmp_path / 'work'), 4)
    cfg.train_dataloader.batch_size = 1
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    cfg.train_dataloader.dataset.pipeline[0] = dict(
        type='LOGOCAPLoadImage', skip_unreadable=skip)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_Corrupter(paths[2]))
    return runner, paths[2]


@pytest.mark.slow
def test_unreadable_image_mid_epoch_names_the_file(tmp_path):
    runner, bad = corrupt_run(tmp_path, skip=False)
    with pytest.raises(ImageInputError) as info:
        runner.train()
    assert str(info.value).startswith(f'{bad} could not be decoded')
    assert runner.iter == 2  # read fine twice, then the third image failed


@pytest.mark.slow
def test_unreadable_image_skipped_on_request(tmp_path):
    runner, bad = corrupt_run(tmp_path, skip=True)
    runner.train()
    assert runner.iter == 4
    with open(runner.logger.log_file) as f:
        log = f.read()
    assert f'skipped an unreadable image (skip_unreadable=True; the ' \
        f'dataset draws another): {bad} could not be decoded' in log
