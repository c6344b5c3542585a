"""Training under faults: a non-finite loss, persons
that are all crowd regions or have no keypoints, an OKS gate that never
opens. The kill -9 + resume and unreadable-image cases are in
``test_training_resume.py``."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from tests.conftest import require_shared
from tests.test_integration.test_training import small_config


class _Recorder(Hook):
    """Every iteration's outputs and a copy of the weights after it."""

    def __init__(self):
        self.outputs, self.weights = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.outputs.append({k: float(v) for k, v in outputs.items()})
        self.weights.append(copy.deepcopy(runner.model.state_dict()))


def logocap_config(root, work_dir, iters, **train_cfg):
    """The small training config of ``test_training.py`` with the
    LOGO-CAP estimator and hooks of the configs."""
    cfg = small_config(root, work_dir, iters)
    cfg.model.type = 'LOGOCAPPoseEstimator'
    cfg.model.train_cfg.update(train_cfg)
    cfg.custom_hooks = [dict(type='EpochSeedHook'),
                        dict(type='OKSGateMonitorHook', patience=3)]
    cfg.log_level = 'INFO'
    return cfg


def run(cfg, poison_calls=()):
    """Train ``cfg``; the head's ``loss_kam`` is NaN at the 1-based calls
    in ``poison_calls``. Returns the recorder and the log text."""
    runner = Runner.from_cfg(cfg)
    head = runner.model.head
    loss, calls = head.loss, []

    def poisoned(*args, **kwargs):
        losses = loss(*args, **kwargs)
        calls.append(1)
        if len(calls) in poison_calls:
            losses['loss_kam'] = losses['loss_kam'] * float('nan')
        return losses

    head.loss = poisoned
    recorder = _Recorder()
    runner.register_hook(recorder)
    error = None
    try:
        runner.train()
    except FloatingPointError as err:
        error = err
    with open(runner.logger.log_file) as f:
        log = f.read()
    recorder.final = runner.model.state_dict()
    recorder.model = runner.model
    return recorder, log, error


def all_finite(state) -> bool:
    return all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())


@pytest.mark.slow
def test_nonfinite_loss_stops_before_the_update(tmp_path):
    root = require_shared('coco-mini')
    rec, log, error = run(logocap_config(root, str(tmp_path), 4), (3, ))
    assert isinstance(error, FloatingPointError)
    message = str(error)
    assert 'training iteration 3' in message and 'loss_kam=nan' in message
    assert "nonfinite_loss='skip'" in message
    assert len(rec.outputs) == 2  # the third step never finished
    params = dict(rec.final.items())
    for name, _ in rec.model.named_parameters():  # not updated
        assert torch.equal(params[name], rec.weights[-1][name]), name
    assert all_finite(rec.final)


@pytest.mark.slow
def test_nonfinite_loss_skip_leaves_the_weights(tmp_path):
    root = require_shared('coco-mini')
    cfg = logocap_config(root, str(tmp_path), 4, nonfinite_loss='skip')
    rec, log, error = run(cfg, (3, ))
    assert error is None and len(rec.outputs) == 4
    assert 'non-finite loss at training iteration 3: loss_kam=nan' in log
    assert 'update skipped' in log
    assert 'loss' not in rec.outputs[2]  # not logged as a number
    before, skipped, after = rec.weights[1], rec.weights[2], rec.weights[3]
    for key, value in before.items():
        assert torch.equal(value, skipped[key]), key  # no update, no drift
    moved = [k for k, v in skipped.items() if v.is_floating_point()
             and not torch.equal(v, after[k])]
    assert moved  # the next step updates again
    assert all_finite(after)


def test_nonfinite_policy_is_checked():
    from logocap_mmpose.models.nonfinite import check_policy
    with pytest.raises(ValueError, match="nonfinite_loss='ignore'"):
        check_policy('ignore')


def _annotations_without_persons(root, dst, how):
    with open(osp.join(root, 'annotations',
                       'person_keypoints_train2017.json')) as f:
        coco = json.load(f)
    for ann in coco['annotations']:
        if how == 'crowd':
            ann['iscrowd'] = 1
        ann['keypoints'] = [0] * len(ann['keypoints'])
        ann['num_keypoints'] = 0
    with open(dst, 'w') as f:
        json.dump(coco, f)


@pytest.mark.slow
@pytest.mark.parametrize('how', ['crowd', 'no_keypoints'])
def test_no_labelled_person_trains_with_zero_refinement(tmp_path, how):
    root = require_shared('coco-mini')
    ann = str(tmp_path / 'ann.json')
    _annotations_without_persons(root, ann, how)
    cfg = logocap_config(root, str(tmp_path / 'work'), 3)
    cfg.train_dataloader.dataset.ann_file = ann
    cfg.train_dataloader.dataset.data_prefix = dict(
        img=osp.join(root, 'train2017') + '/')
    from mmpose.registry import DATASETS
    sample = DATASETS.build(cfg.train_dataloader.dataset)[0]['data_samples']
    assert float(sample.gt_fields.heatmaps.max()) == 0  # nobody labelled
    rec, log, error = run(cfg)
    assert error is None and len(rec.outputs) == 3
    for out in rec.outputs:
        assert np.isfinite(list(out.values())).all()
        assert out['loss_kam'] == 0 and out['loss_refine'] == 0
        assert out['oks_gate_ratio'] == 0
    assert 'no proposal passed the OKS gate in 3 iterations' in log


@pytest.mark.slow
def test_gate_never_open_is_explained_in_the_log(tmp_path):
    root = require_shared('coco-mini')
    # no OKS reaches 1.01: the gate stays shut on real persons
    cfg = logocap_config(root, str(tmp_path), 5, oks_threshold=1.01)
    rec, log, error = run(cfg)
    assert error is None and len(rec.outputs) == 5
    assert all(o['loss_kam'] == 0 and o['loss_refine'] == 0
               and np.isfinite(o['loss']) for o in rec.outputs)
    assert ('no proposal passed the OKS gate in 3 iterations (since '
            'iteration 1): no initial pose reached OKS 1.01') in log
    assert log.count('no proposal passed the OKS gate') == 1  # warned once
    assert 'OKS gate: 5 of 5 training iterations had no gated proposal' in log
