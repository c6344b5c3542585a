"""tools/benchmark_memory.py: the peak memory table and its ratios."""
import json
import os.path as osp

import pytest

from tests.conftest import REPO, load_tool, require_shared

memory_tool = load_tool('benchmark_memory')
CFG = osp.join(REPO, 'configs', 'logocap', 'coco',
               'logocap_effnetlite0_1xb8-40e_coco-256x256.py')


def test_busiest_val_image_counts_labelled_persons(tmp_path):
    from mmengine.config import Config
    coco = dict(
        images=[dict(id=1, file_name='a.jpg'), dict(id=2, file_name='b.jpg'),
                dict(id=3, file_name='c.jpg')],
        annotations=[
            dict(image_id=1, num_keypoints=3, iscrowd=0),
            dict(image_id=2, num_keypoints=3, iscrowd=0),
            dict(image_id=2, num_keypoints=5, iscrowd=0),
            dict(image_id=3, num_keypoints=0, iscrowd=0),  # not labelled
            dict(image_id=3, num_keypoints=4, iscrowd=1),  # a crowd
            dict(image_id=3, num_keypoints=4, iscrowd=1)
        ])
    (tmp_path / 'ann.json').write_text(json.dumps(coco))
    cfg = Config(dict(test_dataloader=dict(dataset=dict(
        data_root=str(tmp_path), ann_file='ann.json',
        data_prefix=dict(img='val/')))))
    assert memory_tool.busiest_val_image(cfg) == osp.join(
        str(tmp_path), 'val/', 'b.jpg')


def test_report_ratios():
    rows = [dict(model='A', phase='train', workload='w', peak_rss=300.0,
                 rss_added=100.0),
            dict(model='B', phase='train', workload='w', peak_rss=600.0,
                 rss_added=400.0)]
    text = memory_tool.report(rows, cuda=False)
    assert '| A | train | w | 300 | 100 |' in text
    assert "train: A peak RSS 0.50x B's, working memory (added) 0.25x" in text


@pytest.mark.slow
def test_inference_peak_of_the_cpu_config(tmp_path):
    root = require_shared('coco-mini')
    out = tmp_path / 'mem.md'
    text = memory_tool.main([CFG, '--data-root', root, '--phases',
                             'inference', '--out', str(out)])
    row = [ln for ln in text.splitlines() if 'inference' in ln][0]
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[2].startswith('30 proposals, ')
    peak, added = float(cells[3]), float(cells[4])
    # 616 MiB peak, 112 MiB added on this machine: the process holds torch
    # and the model (hundreds of MiB) and the phase adds a positive amount
    assert 200 < peak < 4000 and 0 < added < peak
    assert out.read_text().strip() == text.strip()
