"""tools/benchmark_video.py: the built video, the argument checks and short
runs (a few frames of coco-mini val images, random weights). Timings are
reported, never tested beyond being positive."""
import importlib.util
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from logocap_mmpose.analysis import video as clip
from tests.conftest import REPO, require_shared

_spec = importlib.util.spec_from_file_location(
    'logocap_tools_benchmark_video',
    osp.join(REPO, 'tools', 'benchmark_video.py'))
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)

COCO = osp.join(REPO, 'configs', 'logocap', 'coco')
LOGOCAP_CPU = osp.join(COCO, 'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
DEKR_CPU = osp.join(COCO, 'dekr_effnetlite0_1xb8-40e_coco-256x256.py')


def table_rows(report: str) -> list:
    """The body rows of the report's markdown table, as lists of cells."""
    lines = [line for line in report.splitlines() if line.startswith('|')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    return [dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
            for line in lines[2:]]


@pytest.fixture(autouse=True)
def keep_threads():
    """``--threads`` changes torch's global setting: restore it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_centre_crop_keeps_the_middle():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 100:200] = 255  # the middle third is white
    out = clip.centre_crop_resize(img, 50, 50)
    assert out.shape == (50, 50, 3)
    assert out.min() == 255
    tall = clip.centre_crop_resize(np.zeros((300, 100, 3), np.uint8), 40,
                                    30)
    assert tall.shape == (30, 40, 3)


def test_video_is_written_and_read_back(tmp_path):
    img_dir = require_shared('coco-mini', 'val2017')
    frames = clip.video_frames(img_dir, 3, (64, 48))
    assert [f.shape for f in frames] == [(48, 64, 3)] * 3
    path = clip.write_video(frames, str(tmp_path / 'clip.mp4'))
    back = clip.read_frames(path, 10)
    assert len(back) == 3 and back[0].shape == (48, 64, 3)


def test_arguments_are_checked():
    with pytest.raises(SystemExit):
        bench.parse_args([LOGOCAP_CPU, '--batch-sizes', '0'])
    args = bench.parse_args([LOGOCAP_CPU, '--device', 'cuda'])
    assert args.device == 'cuda' and args.batch_sizes == [1, 8]
    assert args.second_config is None


def test_short_run_prints_a_row_per_batch_size(tmp_path):
    img_dir = require_shared('coco-mini', 'val2017')
    out = tmp_path / 'fps.md'
    threads = torch.get_num_threads()
    report = bench.main([
        LOGOCAP_CPU, '--img-dir', img_dir, '--frames', '4', '--frame-size',
        '320', '240', '--batch-sizes', '1', '2', '--threads', str(threads),
        '--warmup', '0', '--out', str(out)
    ])
    assert out.read_text().strip() == report.strip()
    rows = table_rows(report)
    assert [r['batch size'] for r in rows] == ['1', '2']
    assert [r['model steps'] for r in rows] == ['4', '2']
    for row in rows:
        assert row['config'] == 'logocap_effnetlite0_1xb8-40e_coco-256x256'
        assert row['frames'] == '4'
        assert row['device'] == 'cpu' and row['flip test'] == 'on'
        assert row['threads'] == str(threads)
        assert row['weights'] == 'random (seed 0)'
        assert float(row['fps']) > 0 and float(row['s']) > 0
    assert rows[0]['vs first batch size'] == '1.00x'
    assert '4 frames of 320x240 px' in report


@pytest.mark.slow
def test_side_by_side_with_dekr(tmp_path):
    """Both CPU configs, flip off, on a video given with --video."""
    img_dir = require_shared('coco-mini', 'val2017')
    video = clip.write_video(clip.video_frames(img_dir, 3, (320, 240)),
                              str(tmp_path / 'given.mp4'))
    report = bench.main([
        LOGOCAP_CPU, DEKR_CPU, '--video', video, '--batch-sizes', '1', '3',
        '--no-flip'
    ])
    rows = table_rows(report)
    assert [(r['config'][:4], r['batch size'], r['model steps'])
            for r in rows] == [('logo', '1', '3'), ('logo', '3', '1'),
                               ('dekr', '1', '3'), ('dekr', '3', '-')]
    assert all(r['flip test'] == 'off' for r in rows)
    assert all(float(r['fps']) > 0 for r in rows[:3])
    # MMPose's DEKRHead predicts one image per step: a note, no timing
    assert rows[3]['fps'] == '-'
    assert 'DEKRHead only supports prediction with batch_size 1' in \
        rows[3]['note']
    assert f'Video: {video}.' in report
