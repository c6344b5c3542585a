"""tools/benchmark_crowd.py and logocap_mmpose/analysis/crowd.py: time
against people per image, bottom-up beside top-down."""
import os.path as osp

import numpy as np
import pytest

from logocap_mmpose.analysis import crowd
from tests.conftest import REPO, load_tool, require_shared

CPU_CFG = osp.join(REPO, 'configs', 'logocap', 'coco',
                   'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
TOPDOWN = ('mmpose::body_2d_keypoint/topdown_heatmap/coco/'
           'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py')
DETECTOR = 'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py'


def test_composite_places_every_crop_in_its_own_cell():
    crops = [np.full((40 + 10 * i, 20, 3), 10 * i + 1, np.uint8)
             for i in range(5)]
    img, boxes = crowd.composite(crops, (120, 90))
    assert img.shape == (90, 120, 3) and len(boxes) == 5
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        assert 0 <= x1 < x2 <= 120 and 0 <= y1 < y2 <= 90
        patch = img[int(y1):int(y2), int(x1):int(x2)]
        assert (patch == 10 * i + 1).all()  # the crop, nothing else
    cells = {(int(b[0]) // 40, int(b[1]) // 45) for b in boxes}  # 3x2 grid
    assert len(cells) == 5


def test_detector_columns_add_to_each_top_down_model():
    rows = [dict(people=1, bu=5.0, td=2.0), dict(people=4, bu=5.0, td=8.0)]
    names = crowd.add_detector_columns(rows, 'det', {1: 10.0, 4: 11.0},
                                       ['td'])
    assert names == ['det', 'td + det']
    assert [(r['det'], r['td + det'], r['bu']) for r in rows] == [
        (10.0, 12.0, 5.0), (11.0, 19.0, 5.0)]


def test_too_few_persons_is_a_clear_error():
    root = require_shared('coco-mini')
    with pytest.raises(ValueError, match='labelled persons of at least'):
        crowd.person_crops(root, 'annotations/person_keypoints_val2017.json',
                           'val2017', 100000)


@pytest.mark.slow
def test_two_sizes_with_tiny_settings(tmp_path):
    root = require_shared('coco-mini')
    text = load_tool('benchmark_crowd').main([
        CPU_CFG, '--topdown', TOPDOWN, '--data-root', root, '--people', '1',
        '2', '--canvas', '128', '96', '--warmup', '0', '--repeats', '1',
        '--out-dir', str(tmp_path)])
    lines = text.splitlines()
    assert lines[0] == ('| people | logocap_effnetlite0_1xb8-40e_coco-256x256'
                        ' (ms) | td-hm_hrnet-w32_8xb64-210e_coco-256x192 (GT '
                        'boxes) (ms) |')
    rows = [[c.strip() for c in ln.strip('|').split('|')] for ln in lines[2:4]]
    assert [r[0] for r in rows] == ['1', '2']
    assert all(float(c) > 0 for r in rows for c in r[1:])
    assert 'top-down: ground-truth boxes, no detector cost' in text
    assert (tmp_path / 'crowd.png').stat().st_size > 1000
    assert (tmp_path / 'crowd.md').read_text().strip() == text.strip()
    assert len(list((tmp_path / 'images').glob('crowd_*.jpg'))) == 2


@pytest.mark.slow
def test_detector_time_is_added_to_the_top_down_time(tmp_path):
    root = require_shared('coco-mini')
    text = load_tool('benchmark_crowd').main([
        CPU_CFG, '--topdown', TOPDOWN, '--detector', DETECTOR, '--data-root',
        root, '--people', '1', '2', '--canvas', '128', '96', '--warmup', '0',
        '--repeats', '1', '--out-dir', str(tmp_path)])
    lines = text.splitlines()
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    det = 'yolox_tiny_8xb8-300e_coco'
    topdown = 'td-hm_hrnet-w32_8xb64-210e_coco-256x192 (GT boxes)'
    assert header[-2:] == [f'{det} (ms)', f'{topdown} + {det} (ms)']
    for line in lines[2:4]:
        cells = [float(c) for c in line.strip('|').split('|')]
        pose, detector, total = cells[2], cells[3], cells[4]
        assert detector > 0
        assert total == pytest.approx(pose + detector, abs=0.15)
    assert f'detector {det} (random weights) timed' in text
    assert 'no detector cost' not in text
    assert (tmp_path / 'crowd.png').stat().st_size > 1000
    assert (tmp_path / 'crowd.md').read_text().strip() == text.strip()
    assert len(list((tmp_path / 'images').glob('crowd_*.jpg'))) == 2
