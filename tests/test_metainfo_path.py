"""The dataset-meta path of the head and the configs resolves without MMPose's
"The metainfo config file ... does not exist" warning, from any working
directory (issue 12, part A)."""
import os.path as osp
import warnings

import mmpose
import pytest

from logocap_mmpose.models.heads.logocap_head import (LOGOCAPHead,
                                                      resolve_metainfo_file)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CPU_CONFIG = osp.join(ROOT, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
PACKAGED_COCO = osp.join(
    osp.dirname(mmpose.__file__), '.mim', 'configs', '_base_', 'datasets',
    'coco.py')


def metainfo_warnings(record):
    return [str(w.message) for w in record
            if 'metainfo config file' in str(w.message)]


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
