"""MMPose's log analysis tool on a real LOGO-CAP training log.

MMPose's ``tools/train.py`` trains the CPU config for three iterations (two
images each) on coco-mini train, from a temporary working directory; then
``mim run mmpose analyze_logs plot_curve LOG --keys loss --out X.png``, the
command a user types, draws the loss curve from MMEngine's json log. That
needs seaborn, which the set-up installs. About half a minute on 2 CPU cores.
"""
import glob
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.conftest import coco_root_options, require_shared

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CPU_CONFIG = osp.join(ROOT, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
MIM = osp.join(osp.dirname(sys.executable), 'mim')
ITERATIONS = 3
LOSSES = ('loss_heatmap', 'loss_offset', 'loss_kam', 'loss_refine')
GATE_FIGURES = ('oks_gate_ratio', 'oks_gated_mean')


def run(cmd, cwd) -> subprocess.CompletedProcess:
    """Run a command headless (matplotlib's Agg backend), stdout and stderr
    together."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', MPLBACKEND='Agg')
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=600, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def train_options(root: str) -> list:
    """``--cfg-options`` for a three-iteration run on coco-mini, without
    validation, checkpoints or worker processes."""
    return coco_root_options(root) + [
        'train_cfg.max_epochs=1',
        'train_cfg.val_begin=2',  # no validation at the end of epoch 1
        'train_dataloader.batch_size=2',
        f'train_dataloader.dataset.indices={2 * ITERATIONS}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=100',
        'default_hooks.checkpoint.save_last=False',
        'randomness.seed=0',
    ]


@pytest.fixture(scope='module')
def train_log(tmp_path_factory):
    """MMPose's ``tools/train.py`` on six coco-mini train images; the path
    of MMEngine's json log and its records."""
    import mmpose
    root = require_shared('coco-mini')
    work_dir = tmp_path_factory.mktemp('analyze_logs')
    tool = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools',
                    'train.py')
    proc = run([
        sys.executable, tool, CPU_CONFIG, '--work-dir',
        str(work_dir / 'work'), '--cfg-options'
    ] + train_options(root), str(work_dir))
    assert proc.returncode == 0, proc.stdout[-6000:]
    logs = glob.glob(str(work_dir / 'work' / '*' / 'vis_data' / '*.json'))
    logs = [p for p in logs if osp.basename(p) != 'scalars.json']
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return dict(path=logs[0], records=records, work_dir=work_dir)


def test_training_log_holds_the_curve_keys(train_log):
    """One json record per iteration with the losses plot_curve reads, and
    the figures are real losses: ``loss`` is the sum of the four terms."""
    train = [r for r in train_log['records'] if 'epoch' in r]
    assert [r['step'] for r in train] == list(range(1, ITERATIONS + 1))
    assert all(r['epoch'] == 1 for r in train)
    for record in train:
        for key in ('loss', ) + LOSSES + GATE_FIGURES:
            assert key in record, key
            assert math.isfinite(record[key]), (key, record[key])
        assert record['loss'] > 0
        assert record['loss_heatmap'] > 0
        assert 0 <= record['oks_gate_ratio'] <= 1
        total = sum(record[key] for key in LOSSES)
        assert abs(record['loss'] - total) <= 1e-4 + 1e-3 * total


def test_plot_curve_draws_the_loss(train_log, tmp_path):
    """``mim run mmpose analyze_logs plot_curve`` writes a readable PNG in
    which the loss curve spans the plot, and refuses a key the log lacks."""
    import cv2
    import numpy as np
    if importlib.util.find_spec('seaborn') is None:
        pytest.fail('seaborn is not installed: MMPose\'s analyze_logs needs '
                    'it; tools/setup_env.sh installs it')
    out = tmp_path / 'loss.png'
    proc = run([
        MIM, 'run', 'mmpose', 'analyze_logs', 'plot_curve',
        train_log['path'], '--keys', 'loss', '--out', str(out)
    ], str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert out.exists()
    img = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert img is not None, 'not a readable image'
    h, w = img.shape[:2]
    assert h >= 200 and w >= 200
    pixels = img.reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # not a blank canvas
    # the curve: matplotlib's first line colour (blue, #1f77b4), blended
    # with the background at its thin edges; the legend's sample line is a
    # few dozen pixels wide, the curve spans most of the axes
    b, g, r = (img[..., i].astype(int) for i in range(3))
    blue = (b - r > 40) & (b > g)
    columns = np.flatnonzero(blue.any(0))
    assert len(columns) > 0, 'no curve drawn'
    assert columns.max() - columns.min() > 0.4 * w

    missing = run([
        MIM, 'run', 'mmpose', 'analyze_logs', 'plot_curve',
        train_log['path'], '--keys', 'loss_that_is_not_logged', '--out',
        str(tmp_path / 'none.png')
    ], str(tmp_path))
    assert missing.returncode != 0
    assert 'does not contain metric loss_that_is_not_logged' in \
        missing.stdout
