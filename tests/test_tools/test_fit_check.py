"""tools/fit_check.py: the image subset, the fit settings, the table and a
short run."""
import argparse
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from logocap_mmpose.analysis import fit
from tests.conftest import REPO, require_shared

CPU_CFG = osp.join(REPO, 'configs', 'logocap', 'coco',
                   'logocap_effnetlite0_1xb8-40e_coco-256x256.py')


def test_subset_is_deterministic_and_labelled(tmp_path):
    root = require_shared('coco-mini')
    src = osp.join(root, 'annotations', 'person_keypoints_train2017.json')
    ids = fit.subset_annotations(src, 16, str(tmp_path / 'a.json'))
    again = fit.subset_annotations(src, 16, str(tmp_path / 'b.json'))
    assert ids == again == sorted(ids) and len(set(ids)) == 16
    subset = json.load(open(tmp_path / 'a.json'))
    assert sorted(im['id'] for im in subset['images']) == ids
    for image_id in ids:  # every image holds a keypoint-labelled person
        assert any(a['image_id'] == image_id and a['num_keypoints'] > 0
                   and not a['iscrowd'] for a in subset['annotations'])
    with pytest.raises(ValueError, match='only'):
        fit.subset_annotations(src, 10**6, str(tmp_path / 'c.json'))
    second = fit.subset_annotations(src, 16, str(tmp_path / 'd.json'),
                                          first=16)
    assert len(second) == 16 and not set(second) & set(ids)
    assert min(second) > max(ids)  # the next 16 in id order


def test_fit_settings_turn_augmentation_and_decay_off(tmp_path):
    cfg = Config.fromfile(CPU_CFG)
    args = argparse.Namespace(
        data_root='/data', img_prefix='train2017/', epochs=7, seed=0,
        work_dir=str(tmp_path), cfg_options={})
    cfg = fit.fit_config(cfg, args, '/data/sub.json')
    affine = [s for s in cfg.train_dataloader.dataset.pipeline
              if s['type'] == 'LOGOCAPRandomAffine'][0]
    assert affine['scale_factor'] == (1.0, 1.0)
    assert affine['rotate_factor'] == 0 and affine['shift_factor'] == 0
    assert any(s['type'] == 'RandomFlip'
               for s in cfg.train_dataloader.dataset.pipeline)
    assert cfg.train_cfg.max_epochs == 7
    assert all(not s.get('by_epoch', True) for s in cfg.param_scheduler)
    assert cfg.test_dataloader.dataset.ann_file == '/data/sub.json'
    assert cfg.test_evaluator.ann_file == '/data/sub.json'


def test_table_has_one_row_per_mode_in_metric_order():
    rows = {
        'baseline': {'coco/AR': 0.4, 'coco/AP': 0.1, 'coco/AP .5': 0.2,
                     'coco/AP .75': 0.3, 'coco/AP (M)': 0.9},
        'full': {'coco/AP': 0.5, 'coco/AP .5': 0.6, 'coco/AP .75': 0.7,
                 'coco/AR': 0.8},
    }
    args = argparse.Namespace(num_images=4, epochs=2, first_image=16,
                              seed=3)
    table = fit.fit_table(rows, 0.25, args, 1.5).splitlines()
    assert table[:4] == ['| mode | AP | AP50 | AP75 | AR |',
                         '|---|---|---|---|---|',
                         '| baseline | 0.100 | 0.200 | 0.300 | 0.400 |',
                         '| full | 0.500 | 0.600 | 0.700 | 0.800 |']
    assert table[5] == ('4 images (from the 16-th labelled one), seed 3, 2 '
                        'epochs, 1.5 min; final oks_gate_ratio (last epoch '
                        'mean) 0.250')


def test_short_fit_prints_one_row_per_mode(tmp_path):
    root = require_shared('coco-mini')
    out = tmp_path / 'table.md'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'fit_check.py'), CPU_CFG,
         '--data-root', root, '--num-images', '4', '--epochs', '1',
         '--work-dir', str(tmp_path / 'work'), '--out', str(out),
         '--cfg-options', 'train_dataloader.batch_size=2',
         'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False'],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out.read_text()
    for mode in fit.MODES + tuple(fit.EXTRA_ROWS):
        assert f'| {mode} |' in table
    assert 'oks_gate_ratio' in table
    assert 'eta:' in proc.stdout + proc.stderr  # MMEngine's progress log


def test_gate_recorder_counts_iterations_with_no_gated_proposal():
    recorder = fit.GateRecorder()
    recorder.values = [0.0, 0.1, 0.0, 0.2, 0.3]
    recorder.iters_per_epoch = 2
    assert recorder.ungated() == '2 (last: 3 of 5)'
    assert recorder.last_epoch_mean() == pytest.approx(0.25)
    args = argparse.Namespace(num_images=4, epochs=2, first_image=0, seed=0)
    line = fit.fit_table({}, 0.25, args, 1.0, recorder.ungated())
    assert line.endswith('iterations with no gated proposal 2 (last: 3 of '
                         '5)')
