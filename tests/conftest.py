"""Shared test helpers: the ../shared data location, MMPose's scope, the
import of a tool by path, the runnable configs, the options pointing a config
at a COCO-layout folder and the CPU configs' former random backbone."""
import glob
import importlib.util
import os
import os.path as osp
import sys

import pytest
import torch.nn as nn
from mmengine.registry import init_default_scope

import logocap_mmpose  # noqa: F401  (registers the plugin)
from tests import float_audit

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_DATA = osp.join(osp.dirname(REPO), 'shared', 'data')
COCO_MINI = osp.join(SHARED_DATA, 'coco-mini')
CONFIG_DIR = osp.join(REPO, 'configs', 'logocap')
# runnable configs; _base_/ holds the shared, not runnable, parts
RUNNABLE_CONFIGS = sorted(
    p for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, CONFIG_DIR).split(os.sep))

init_default_scope('mmpose')

if os.environ.get(float_audit.AUDIT_ENV):
    float_audit.install()

    @pytest.fixture(autouse=True)
    def _float_audit_test_id(request):
        """Tag the audit's records with the running test."""
        float_audit.set_current_test(request.node.nodeid)
        yield
        float_audit.set_current_test('')


def load_tool(name: str, prefix: str = 'logocap_tools'):
    """Import ``tools/<name>.py`` by path (``tools`` is no package) as the
    module ``<prefix>_<name>``."""
    spec = importlib.util.spec_from_file_location(
        f'{prefix}_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def coco_root_options(root: str = COCO_MINI) -> list:
    """``--cfg-options`` pointing a COCO config's datasets and evaluators
    at the COCO-layout folder ``root`` (its val annotations evaluated)."""
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/person_keypoints_val2017.json'
    return [f'{split}_dataloader.dataset.data_root={root}'
            for split in ('train', 'val', 'test')] + [
                f'val_evaluator.ann_file={ann}',
                f'test_evaluator.ann_file={ann}'
            ]


def require_shared(*parts: str) -> str:
    """Path under ../shared/data, or skip the test with the reason."""
    path = osp.join(SHARED_DATA, *parts)
    if not osp.exists(path):
        pytest.skip(f'needs {path} (the shared data folder beside the '
                    'repository), which is absent here')
    return path


def legacy_random_backbone(model) -> None:
    """Re-draw the backbone's convolutions and BatchNorms with PyTorch's
    default initialisation.

    These are the random weights that the CPU configs' hand-written
    EfficientNet-Lite0 had before timm's when built without
    ``init_weights()``. Tests whose random-weight models were tuned on them
    (clear centre peaks, no near-ties in the decoding) use them: timm
    initialises its models itself, with larger features, and on those the
    same tests decode no poses or meet near-ties.
    """
    for module in model.backbone.modules():
        if isinstance(module, (nn.Conv2d, nn.modules.batchnorm._BatchNorm)):
            module.reset_parameters()


COCO_SIGMAS = [
    .026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107,
    .107, .087, .087, .089, .089
]
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
