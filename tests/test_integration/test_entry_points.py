"""The configs and MMPose's standard entry points, on real data.

Fast tests: every config under configs/logocap parses, builds, defaults to
MMPose's data/coco layout and is overridable.

Slow tests (``-m slow``; a few minutes on 2 CPU cores in all): on
../shared/data/coco-mini, with the CPU-sized LOGO-CAP config, a handful of
images and iterations each:
``mim train mmpose``, ``mim test mmpose -C``, MMPose's packaged
``tools/train.py --resume`` and ``tools/test.py``, and ``MMPoseInferencer``
writing predictions JSON and a visualization. They run as subprocesses of
the virtual environment's Python / ``mim``, in a temporary work_dir.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from tests.conftest import RUNNABLE_CONFIGS, coco_root_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.normpath(osp.join(ROOT, '..', 'shared', 'data'))
COCO_MINI = osp.join(DATA, 'coco-mini')
OCHUMAN_TESTS = osp.join(DATA, 'mmpose-tests', 'ochuman')
CONFIG_DIR = osp.join(ROOT, 'configs', 'logocap')
CPU_CONFIG = osp.join(CONFIG_DIR, 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
ALL_CONFIGS = RUNNABLE_CONFIGS

needs_data = pytest.mark.skipif(
    not osp.isdir(COCO_MINI),
    reason=f'real test data not found at {COCO_MINI} (../shared/data is '
    'absent in this checkout)')
slow = pytest.mark.slow

BIN = osp.dirname(sys.executable)
MIM = osp.join(BIN, 'mim')


def coco_options(root: str = COCO_MINI) -> list:
    """``--cfg-options`` pointing a COCO config at ``root``."""
    return coco_root_options(root)


# a few images, a few iterations, no worker processes
TINY = [
    'train_cfg.max_epochs=1',
    'train_dataloader.batch_size=2',
    'train_dataloader.dataset.indices=4',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.dataset.indices=3',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.dataset.indices=3',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
]


def run(cmd, cwd=ROOT, timeout=900) -> str:
    """Run a command; fail the test with its output when it fails."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, timeout=timeout, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.fail(f'command failed ({proc.returncode}): {" ".join(cmd)}\n'
                    f'{proc.stdout[-6000:]}')
    return proc.stdout


def mmpose_tool(name: str) -> str:
    import mmpose
    return osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', name)


# --------------------------------------------------------------------------
# configs (fast)
# --------------------------------------------------------------------------
def test_config_set_is_complete():
    names = {osp.relpath(p, CONFIG_DIR) for p in ALL_CONFIGS}
    expected = {
        'coco/logocap_hrnet-w32_4xb12-140e_coco-512x512.py',
        'coco/logocap_hrnet-w48_4xb12-140e_coco-640x640.py',
        'coco/dekr_hrnet-w32_4xb12-140e_coco-512x512.py',
        'coco/dekr_hrnet-w48_4xb12-140e_coco-640x640.py',
        'coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py',
        'coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py',
        'ochuman/logocap_hrnet-w32_4xb12-140e_ochuman-512x512.py',
        'ochuman/logocap_hrnet-w48_4xb12-140e_ochuman-640x640.py',
        'ochuman/dekr_hrnet-w32_4xb12-140e_ochuman-512x512.py',
        'ochuman/dekr_hrnet-w48_4xb12-140e_ochuman-640x640.py',
        'crowdpose/logocap_hrnet-w32_4xb12-140e_crowdpose-512x512.py',
        'crowdpose/dekr_hrnet-w32_4xb12-140e_crowdpose-512x512.py',
    }
    assert expected <= names


@pytest.mark.parametrize('path', ALL_CONFIGS,
                         ids=[osp.basename(p) for p in ALL_CONFIGS])
def test_config_loads_and_builds(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(path)
    assert cfg.data_mode == 'bottomup'
    assert 'logocap_mmpose' in cfg.custom_imports['imports']
    assert not cfg.custom_imports.allow_failed_imports
    assert cfg.model.test_cfg.flip_test is True
    # MMPose's default data layout
    root = cfg.train_dataloader.dataset.data_root
    assert root in ('data/coco/', 'data/crowdpose/')
    test_root = cfg.test_dataloader.dataset.data_root
    assert test_root in ('data/coco/', 'data/ochuman/', 'data/crowdpose/')
    assert cfg.test_evaluator.ann_file == osp.join(
        test_root, cfg.test_dataloader.dataset.ann_file)
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.val_evaluator.nms_mode == 'none'
    assert cfg.val_evaluator.score_mode == 'keypoint'
    head = cfg.model.head
    if head.type == 'DEKRHead':
        assert head.get('rescore_cfg') is None  # needs a download, and unfair
        assert cfg.val_dataloader.batch_size == 1
    init_default_scope('mmpose')
    from mmpose.registry import MODELS
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_paper_recipe():
    from mmengine.config import Config
    for name, size in [('hrnet-w32_4xb12-140e_coco-512x512', 512),
                       ('hrnet-w48_4xb12-140e_coco-640x640', 640)]:
        cfg = Config.fromfile(osp.join(CONFIG_DIR, 'coco',
                                       f'logocap_{name}.py'))
        assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=1e-3)
        assert cfg.train_cfg.max_epochs == 140
        (step, ) = cfg.param_scheduler
        assert step.type == 'MultiStepLR' and step.milestones == [90, 120]
        assert cfg.train_dataloader.batch_size == 12
        aug = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
        affine = aug['LOGOCAPRandomAffine']  # the authors' shift
        assert affine.input_size == (size, size)
        assert affine.scale_factor == (0.75, 1.5)
        assert affine.rotate_factor == 30 and affine.shift_factor == 0.2
        assert affine.distribution == 'uniform'
        assert aug['RandomFlip'].direction == 'horizontal'
        assert cfg.model.head.decoder.input_size == (size, size)
        assert cfg.model.backbone.init_cfg.type == 'Pretrained'


@needs_data
def test_data_root_is_overridable():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    from mmpose.registry import DATASETS
    cfg = Config.fromfile(CPU_CONFIG)
    # the same key=value pairs as --cfg-options
    cfg.merge_from_dict(dict(opt.split('=', 1) for opt in coco_options()))
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) > 100 and len(val) == 149
    assert osp.exists(cfg.val_evaluator.ann_file)


@pytest.mark.skipif(not osp.isdir(OCHUMAN_TESTS),
                    reason=f'{OCHUMAN_TESTS} not found')
@pytest.mark.parametrize('algo', ['logocap', 'dekr'])
def test_ochuman_config_reads_ochuman(algo):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    from mmpose.registry import DATASETS, METRICS
    cfg = Config.fromfile(osp.join(
        CONFIG_DIR, 'ochuman', f'{algo}_hrnet-w32_4xb12-140e_ochuman-'
        '512x512.py'))
    assert 'val_range' in cfg.val_dataloader.dataset.ann_file
    assert 'test_range' in cfg.test_dataloader.dataset.ann_file
    # COCO-trained
    assert cfg.train_dataloader.dataset.type == 'LOGOCAPCocoDataset'
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.update(data_root=OCHUMAN_TESTS, ann_file='test_ochuman.json',
                  data_prefix=dict(img=''))
    dataset = DATASETS.build(ds_cfg)
    assert type(dataset).__name__ == 'LOGOCAPOCHumanDataset'
    assert len(dataset) == 3
    sample = dataset[0]
    h, w = sample['inputs'].shape[-2:]
    assert min(h, w) == 512 and h % 64 == 0 and w % 64 == 0
    metric = METRICS.build(
        dict(cfg.test_evaluator,
             ann_file=osp.join(OCHUMAN_TESTS, 'test_ochuman.json')))
    assert metric.coco is not None


# --------------------------------------------------------------------------
# entry points (slow)
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """``mim train mmpose`` on 4 coco-mini images for 2 iterations (with
    validation on 3 images at the end of the epoch)."""
    work_dir = str(tmp_path_factory.mktemp('mim_train'))
    out = run([MIM, 'train', 'mmpose', CPU_CONFIG, '--work-dir', work_dir,
               '--cfg-options'] + coco_options() + TINY)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    return dict(work_dir=work_dir, ckpt=ckpt, log=out)


@needs_data
@slow
def test_mim_train(trained):
    assert osp.exists(trained['ckpt'])
    assert trained['ckpt'].endswith('epoch_1.pth')
    log = trained['log']
    assert 'Epoch(train) [1][2/2]' in log
    assert 'eta:' in log  # MMEngine's progress / ETA
    for key in ('loss_heatmap', 'loss_offset'):
        assert key in log
    assert 'coco/AP' in log  # validated at the end of training


@needs_data
@slow
def test_mim_test(trained):
    out = run([MIM, 'test', 'mmpose', CPU_CONFIG, '-C', trained['ckpt'],
               '--work-dir', osp.join(trained['work_dir'], 'mim_test'),
               '--cfg-options'] + coco_options() + TINY)
    assert 'coco/AP' in out and 'Epoch(test)' in out


@needs_data
@slow
def test_mmpose_tools_test(trained):
    work_dir = osp.join(trained['work_dir'], 'tools_test')
    out_file = osp.join(work_dir, 'metrics.json')
    run([sys.executable, mmpose_tool('test.py'), CPU_CONFIG, trained['ckpt'],
         '--work-dir', work_dir, '--out', out_file, '--cfg-options'] +
        coco_options() + TINY)
    with open(out_file) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics['coco/AP'] <= 1.0


@needs_data
@slow
def test_mmpose_tools_train_resume(trained, tmp_path):
    work_dir = str(tmp_path / 'resume')
    shutil.copytree(trained['work_dir'], work_dir)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(ckpt)
    tiny = [o for o in TINY if not o.startswith('train_cfg.max_epochs')]
    out = run([sys.executable, mmpose_tool('train.py'), CPU_CONFIG,
               '--work-dir', work_dir, '--resume', '--cfg-options'] +
              coco_options() + tiny + ['train_cfg.max_epochs=2'])
    assert 'resumed epoch: 1' in out
    assert 'Epoch(train) [2][2/2]' in out
    assert 'Epoch(train) [1]' not in out  # epoch 1 was not trained again
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))


INFER_SCRIPT = r'''
import json, sys
from mmpose.apis import MMPoseInferencer
cfg, ckpt, img, out_dir = sys.argv[1:5]
inferencer = MMPoseInferencer(pose2d=cfg, pose2d_weights=ckpt, device='cpu')
results = list(inferencer(img, pred_out_dir=out_dir + '/predictions',
                          vis_out_dir=out_dir + '/vis'))
print('NUM_RESULTS', len(results))
'''


@needs_data
@slow
def test_mmpose_inferencer(trained, tmp_path):
    ann = json.load(open(osp.join(COCO_MINI, 'annotations',
                                  'person_keypoints_val2017.json')))
    with_person = {a['image_id'] for a in ann['annotations']}
    image = next(im for im in sorted(ann['images'], key=lambda i: i['id'])
                 if im['id'] in with_person)
    img = osp.join(COCO_MINI, 'val2017', image['file_name'])
    stem = osp.splitext(image['file_name'])[0]
    out = run([sys.executable, '-c', INFER_SCRIPT, CPU_CONFIG,
               trained['ckpt'], img, str(tmp_path)])
    assert 'NUM_RESULTS 1' in out
    pred_file = tmp_path / 'predictions' / f'{stem}.json'
    vis_file = tmp_path / 'vis' / image['file_name']
    assert pred_file.exists() and vis_file.exists()
    preds = json.loads(pred_file.read_text())
    assert isinstance(preds, list)
    for person in preds:
        assert len(person['keypoints']) == 17
        assert len(person['keypoint_scores']) == 17
    import cv2
    vis = cv2.imread(str(vis_file))
    assert vis.shape[:2] == (image['height'], image['width'])
