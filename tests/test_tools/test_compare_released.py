"""tools/compare_with_dekr.py on released-weight layouts:
MMPose's own DEKR config (``mmpose::`` path, rescoring net included) with
an MMPose DEKR checkpoint, beside the official LOGO-CAP config with an
authors'-layout checkpoint passed through the converter. Offline: both
checkpoints are saved from seeded random models in each layout."""
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

from logocap_mmpose.analysis import compare
from logocap_mmpose.utils.official_checkpoint import (
    convert_official_checkpoint, official_config)
from logocap_mmpose.analysis import config_file, load_config
from tests.conftest import load_tool, require_shared
from tests.test_utils.test_official_checkpoint import authors_w32_state_dict

compare_tool = load_tool('compare_with_dekr')
MMPOSE_DEKR = ('mmpose::body_2d_keypoint/dekr/coco/'
               'dekr_hrnet-w32_8xb10-140e_coco-512x512.py')


def test_packaged_config_paths():
    path = config_file(MMPOSE_DEKR)
    assert osp.isfile(path) and path.endswith(
        osp.join('.mim', 'configs', 'body_2d_keypoint', 'dekr', 'coco',
                 'dekr_hrnet-w32_8xb10-140e_coco-512x512.py'))
    assert config_file('a/b.py') == 'a/b.py'
    with pytest.raises(FileNotFoundError, match='no config .* in the '
                       'installed mmpose'):
        config_file('mmpose::body_2d_keypoint/none.py')
    with pytest.raises(FileNotFoundError, match="'nopkg' is not installed"):
        config_file('nopkg::x.py')


def two_val_images(root, dst):
    """coco-mini's first two labelled val images as a COCO-layout folder."""
    with open(osp.join(root, 'annotations',
                       'person_keypoints_val2017.json')) as f:
        coco = json.load(f)
    ids = sorted({a['image_id'] for a in coco['annotations']
                  if a.get('num_keypoints', 0) > 0})[:2]
    coco['images'] = [im for im in coco['images'] if im['id'] in ids]
    coco['annotations'] = [a for a in coco['annotations']
                           if a['image_id'] in ids]
    os.makedirs(osp.join(dst, 'annotations'))
    os.makedirs(osp.join(dst, 'val2017'))
    os.makedirs(osp.join(dst, 'train2017'))
    for name in ('val', 'train'):
        with open(osp.join(dst, 'annotations',
                           f'person_keypoints_{name}2017.json'), 'w') as f:
            json.dump(coco, f)
    for im in coco['images']:
        shutil.copy(osp.join(root, 'val2017', im['file_name']),
                    osp.join(dst, 'val2017', im['file_name']))


@pytest.mark.slow
def test_released_layouts_side_by_side(tmp_path):
    root = require_shared('coco-mini')
    data = str(tmp_path / 'data')
    two_val_images(root, data)
    # MMPose's DEKR layout: its own config's model, rescoring net included
    from mmpose.registry import MODELS
    dekr_cfg = load_config(MMPOSE_DEKR)
    assert dekr_cfg.model.head.get('rescore_cfg')
    torch.manual_seed(0)
    dekr = MODELS.build(dekr_cfg.model)
    assert any(k.startswith('head.rescore_net.')
               for k in dekr.state_dict())
    dekr_ckpt = str(tmp_path / 'dekr.pth')
    torch.save(dict(state_dict=dekr.state_dict(), meta=dict()), dekr_ckpt)
    # the authors' layout, converted as a user converts the release
    authors = str(tmp_path / 'logocap-hrnet-w32-coco.pth.tar')
    torch.save(authors_w32_state_dict(), authors)
    logocap_ckpt = str(tmp_path / 'logocap.pth')
    convert_official_checkpoint(authors, logocap_ckpt, arch='w32')

    table = compare_tool.main([
        official_config('w32'), MMPOSE_DEKR,
        '--logocap-checkpoint', logocap_ckpt, '--dekr-checkpoint', dekr_ckpt,
        '--data-root', data, '--work-dir', str(tmp_path / 'work'),
        '--ablation-modes', '--time-images', '1', '--warmup', '0',
        '--repeats', '1'])
    lines = table.splitlines()
    assert lines[0] == ('| model | pose score | AP | AP50 | AP75 | APM | '
                        'APL | AR | ms/image | proposals/image | '
                        'instances/image | params (M) |')
    rows = [ln for ln in lines if ln.startswith('| ')][1:]
    assert rows[0].startswith(
        '| DEKR (dekr_hrnet-w32_8xb10-140e_coco-512x512) | rescore net '
        '(from the checkpoint) |')
    assert rows[1].startswith(
        '| LOGO-CAP, full (logocap_hrnet-w32_official_coco-512x512) |')
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[2] != '-' and float(cells[8]) > 0  # AP, ms/image
    assert 'Val set: ' in table and '2 images' in table
    assert 'Released weights, each with its own config: configs differ' \
        in table
    assert f'DEKR: {dekr_ckpt}' in table


def test_mismatched_configs_stop_unless_both_checkpoints_are_given():
    cfgs = {'LOGO-CAP': Config.fromfile(official_config('w32')),
            'DEKR': load_config(MMPOSE_DEKR)}
    with pytest.raises(SystemExit, match='configs differ in: backbone'):
        compare.check_configs(cfgs, allow_mismatch=False)
    note = compare.check_configs(cfgs, allow_mismatch=False, released=True)
    assert note.startswith('Released weights, each with its own config: '
                           'configs differ in: backbone')
    assert compare.check_configs(cfgs, allow_mismatch=True).startswith(
        'WARNING: configs differ')
