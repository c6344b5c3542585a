"""No "The metainfo config file ... does not exist" warning, from any working
directory.

MMPose's dataset classes and MMPose-style head configs name their dataset
meta file relative to an MMPose checkout (``configs/_base_/datasets/*.py``);
read from anywhere else, ``parse_pose_metainfo`` warns and falls back to its
packaged copy. Checked here: the head's path resolution, every dataset of
every config (built lazily, no data needed), the OCHuman configs' meta
against MMPose's packaged OCHuman meta and on the OCHuman test images, and two
real entry points run from a temporary directory: ``MMPoseInferencer`` on a
coco-mini image and MMPose's ``tools/test.py`` on two coco-mini val images.
"""
import copy
import glob
import os
import os.path as osp
import subprocess
import sys
import warnings

import mmpose
import numpy as np
import pytest
import torch
from mmengine.config import Config

from logocap_mmpose.models.heads.logocap_head import (LOGOCAPHead,
                                                      resolve_metainfo_file)
from tests.conftest import RUNNABLE_CONFIGS, require_shared

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'logocap')
CPU_CONFIG = osp.join(CONFIG_DIR, 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
ALL_CONFIGS = RUNNABLE_CONFIGS
OCHUMAN_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, 'ochuman', '*.py')))
MMPOSE_DIR = osp.dirname(mmpose.__file__)
PACKAGED_DATASETS = osp.join(MMPOSE_DIR, '.mim', 'configs', '_base_',
                             'datasets')
PACKAGED_COCO = osp.join(PACKAGED_DATASETS, 'coco.py')
PACKAGED_OCHUMAN = osp.join(PACKAGED_DATASETS, 'ochuman.py')
WARNING_TEXT = 'metainfo config file'
SPLITS = ('train', 'val', 'test')


def metainfo_warnings(record):
    """The messages of the recorded warnings that are MMPose's metainfo
    fallback warning."""
    return [str(w.message) for w in record
            if WARNING_TEXT in str(w.message)]


def config_id(path: str) -> str:
    """Test id of a config: its path under ``configs/logocap``."""
    return osp.relpath(path, CONFIG_DIR)


def same_meta(a: dict, b: dict) -> bool:
    """Whether two parsed dataset metas hold the same keys and values
    (numpy arrays compared by value)."""
    if a.keys() != b.keys():
        return False
    for key in a:
        if isinstance(a[key], np.ndarray) or isinstance(b[key], np.ndarray):
            if not np.array_equal(np.asarray(a[key]), np.asarray(b[key])):
                return False
        elif a[key] != b[key]:
            return False
    return True


def test_the_warning_is_what_mmpose_emits(tmp_path, monkeypatch):
    """Positive control: the text the tests below look for is the text of
    MMPose's fallback warning for a checkout-relative path."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        parse_pose_metainfo(dict(from_file='configs/_base_/datasets/coco.py'))
    assert len(metainfo_warnings(record)) == 1


@pytest.mark.parametrize('path', [
    'configs/_base_/datasets/coco.py', 'mmpose::_base_/datasets/coco.py',
    'coco.py', PACKAGED_COCO
])
def test_metainfo_paths_resolve_to_the_packaged_file(path, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert osp.samefile(resolve_metainfo_file(path), PACKAGED_COCO)


def test_user_files_win_and_unknown_paths_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    own = tmp_path / 'configs' / '_base_' / 'datasets' / 'coco.py'
    own.parent.mkdir(parents=True)
    own.write_text('dataset_info = dict()\n')
    # a file that exists where the path points (relative or absolute) wins
    assert resolve_metainfo_file('configs/_base_/datasets/coco.py') == \
        'configs/_base_/datasets/coco.py'
    assert resolve_metainfo_file(str(own)) == str(own)
    # a path found nowhere is left for MMPose to report
    missing = str(tmp_path / 'nowhere' / 'mine.py')
    assert resolve_metainfo_file(missing) == missing
    with pytest.raises(FileNotFoundError):
        LOGOCAPHead(in_channels=8, metainfo=dict(from_file=missing))


def test_head_reads_sigmas_without_metainfo_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        head = LOGOCAPHead(
            in_channels=8,
            metainfo=dict(from_file='configs/_base_/datasets/coco.py'))
        absolute = LOGOCAPHead(
            in_channels=8, metainfo=dict(from_file=PACKAGED_COCO))
    assert metainfo_warnings(record) == []
    assert head.sigmas.shape == (17, )
    assert abs(float(head.sigmas[0]) - 0.026) < 1e-6
    assert (head.sigmas == absolute.sigmas).all()


def test_init_model_cpu_config_without_metainfo_warning(
        tmp_path, monkeypatch):
    from mmpose.apis import init_model
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        model = init_model(CPU_CONFIG, None, device='cpu')
    assert metainfo_warnings(record) == []
    assert model.dataset_meta['dataset_name'] == 'coco'
    assert model.dataset_meta['num_keypoints'] == 17
    assert model.head.sigmas.shape == (17, )


# --------------------------------------------------------------------------
# the configs' datasets
# --------------------------------------------------------------------------
@pytest.mark.parametrize('path', ALL_CONFIGS, ids=config_id)
def test_config_datasets_read_their_meta_without_warning(
        path, tmp_path, monkeypatch):
    """Every dataset of every config (train, val and test) gets its meta
    without the fallback warning. ``lazy_init`` builds the dataset and parses
    its meta without reading annotations, so no data is needed."""
    from mmpose.registry import DATASETS
    cfg = Config.fromfile(path)
    monkeypatch.chdir(tmp_path)
    folder = osp.basename(osp.dirname(path))
    # COCO-trained configs train on COCO; CrowdPose trains on CrowdPose
    train_name = 'crowdpose' if folder == 'crowdpose' else 'coco'
    expected = folder if folder in ('ochuman', 'crowdpose') else 'coco'
    num_keypoints = 14 if folder == 'crowdpose' else 17
    for split in SPLITS:
        ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
        ds_cfg.lazy_init = True
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter('always')
            dataset = DATASETS.build(ds_cfg)
        assert metainfo_warnings(record) == [], f'{split} dataset'
        assert dataset.metainfo['num_keypoints'] == num_keypoints
        # the COCO-trained models train on COCO and test on their own set
        name = train_name if split == 'train' else expected
        assert dataset.metainfo['dataset_name'] == name, f'{split} dataset'


@pytest.mark.parametrize('path', OCHUMAN_CONFIGS, ids=config_id)
def test_ochuman_meta_equals_mmposes_ochuman_meta(path):
    """The inline OCHuman meta of the val and test sets is MMPose's packaged
    OCHuman meta, key by key, after parsing (what the dataset, the metric
    and the visualizer use)."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    cfg = Config.fromfile(path)
    reference = parse_pose_metainfo(dict(from_file=PACKAGED_OCHUMAN))
    assert reference['dataset_name'] == 'ochuman'
    for split in ('val', 'test'):
        meta = cfg[f'{split}_dataloader'].dataset.metainfo
        assert 'from_file' not in meta  # given inline, not as a path
        assert same_meta(parse_pose_metainfo(copy.deepcopy(meta)),
                         reference), f'{split} meta differs'


@pytest.mark.parametrize('path', OCHUMAN_CONFIGS, ids=config_id)
def test_ochuman_datasets_build_on_ochuman_images_without_warning(
        path, tmp_path, monkeypatch):
    """The OCHuman val and test sets, pointed at MMPose's OCHuman test
    annotations, load their 3 images without the fallback warning."""
    from mmpose.registry import DATASETS
    data = require_shared('mmpose-tests', 'ochuman')
    cfg = Config.fromfile(path)
    monkeypatch.chdir(tmp_path)
    for split in ('val', 'test'):
        ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
        ds_cfg.update(data_root=data, ann_file='test_ochuman.json',
                      data_prefix=dict(img=''))
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter('always')
            dataset = DATASETS.build(ds_cfg)
            sample = dataset[0]
        assert metainfo_warnings(record) == [], f'{split} dataset'
        assert type(dataset).__name__ == 'LOGOCAPOCHumanDataset'
        assert len(dataset) == 3
        assert dataset.metainfo['dataset_name'] == 'ochuman'
        flip = sample['data_samples'].metainfo['flip_indices']
        assert list(flip) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14,
                              13, 16, 15]


# --------------------------------------------------------------------------
# entry points, from a temporary working directory
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def random_checkpoint(tmp_path_factory):
    """A checkpoint of the CPU config's model (ImageNet backbone, random
    head) without ``dataset_meta``, so the entry points must take the meta
    from the config."""
    from mmpose.apis import init_model
    model = init_model(CPU_CONFIG, None, device='cpu')
    path = str(tmp_path_factory.mktemp('ckpt') / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def first_val_image_with_person(root: str) -> str:
    """Path of the coco-mini val image with the lowest id among those with
    a person whose keypoints are labelled."""
    import json
    with open(osp.join(root, 'annotations',
                       'person_keypoints_val2017.json')) as f:
        ann = json.load(f)
    with_person = {a['image_id'] for a in ann['annotations']
                   if a.get('num_keypoints', 0) > 0}
    image = min((im for im in ann['images'] if im['id'] in with_person),
                key=lambda im: im['id'])
    return osp.join(root, 'val2017', image['file_name'])


def test_inferencer_on_a_real_image_without_warning(random_checkpoint,
                                                    tmp_path, monkeypatch):
    """``MMPoseInferencer`` on a coco-mini image, from an empty temporary
    directory, with a checkpoint without meta: no metainfo warning while it
    builds, infers and draws."""
    from mmpose.apis import MMPoseInferencer
    img = first_val_image_with_person(require_shared('coco-mini'))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        inferencer = MMPoseInferencer(
            pose2d=CPU_CONFIG, pose2d_weights=random_checkpoint,
            device='cpu')
        results = list(inferencer(img, vis_out_dir=str(tmp_path / 'vis'),
                                  kpt_thr=0.0))
    assert metainfo_warnings(record) == []
    assert len(results) == 1
    # the meta came from the config (the checkpoint holds none)
    meta = inferencer.inferencer.model.dataset_meta
    assert meta['dataset_name'] == 'coco' and meta['num_keypoints'] == 17
    assert (tmp_path / 'vis' / osp.basename(img)).exists()


def _run_here(cmd, cwd) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with Python's default warning filters (each
    warning shown once per place), stdout and stderr together."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONWARNINGS='default')
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=600, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_mmpose_tools_test_without_warning(random_checkpoint, tmp_path):
    """MMPose's ``tools/test.py`` with the CPU config on two coco-mini val
    images, run from an empty temporary directory, prints no metainfo
    warning (and would: the control run shows the warning reaches the
    captured output)."""
    root = require_shared('coco-mini').rstrip('/') + '/'
    control = _run_here([
        sys.executable, '-c',
        'from mmpose.datasets.datasets.utils import parse_pose_metainfo; '
        "parse_pose_metainfo(dict(from_file='configs/_base_/datasets/"
        "coco.py'))"
    ], str(tmp_path))
    assert control.returncode == 0, control.stdout[-3000:]
    assert WARNING_TEXT in control.stdout

    ann = root + 'annotations/person_keypoints_val2017.json'
    options = [
        f'test_dataloader.dataset.data_root={root}',
        'test_dataloader.dataset.indices=2',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        f'test_evaluator.ann_file={ann}',
        f'val_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}',
    ]
    tool = osp.join(MMPOSE_DIR, '.mim', 'tools', 'test.py')
    proc = _run_here([
        sys.executable, tool, CPU_CONFIG, random_checkpoint, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options'
    ] + options, str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'coco/AP' in proc.stdout  # the test loop ran to the metric
    found = [line for line in proc.stdout.splitlines()
             if WARNING_TEXT in line]
    assert found == []
