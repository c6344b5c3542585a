"""What the measurement tools start from: configs, data, models and their
test settings.

MMEngine and MMPose are imported inside the functions that need them.

- configs: :func:`load_config` with :func:`data_root_options` (point a
  config's datasets and COCO evaluators at one folder; a missing one is a
  one-line error, :func:`missing_data_root`, which the tools give through
  :func:`parse_tool_args`), :func:`config_file`, :func:`is_logocap`,
  :func:`short_name`; COCO subsets (:func:`labelled_image_ids`,
  :func:`write_coco_subset`);
- models and inputs: :func:`build_model` (random weights without a
  checkpoint), :func:`count_params`, :func:`val_image_paths`,
  :func:`prepare_batches`;
- the one test-config override: :func:`set_test_options` and its undone
  form :func:`test_options`, and :func:`overridden` for any attributes;
- command lines: :func:`tool_parser` (:func:`comparison_parser`),
  :func:`parse_tool_args` and the options the tools share
  (:func:`add_timing_arguments`, :func:`add_device_arguments`,
  :func:`add_config_arguments`).
"""
import argparse
import copy
import json
import os
import os.path as osp
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch.nn as nn

_MISSING = object()
# what a data root holds (the README's coco-mini, or COCO itself)
COCO_LAYOUT = 'a COCO-layout folder (annotations/, train2017/, val2017/)'


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------
def _absent_shared_data(path: str) -> Optional[str]:
    """The ``.../shared/data`` folder that ``path`` lies in, when that
    folder itself is absent (None otherwise)."""
    parts = osp.abspath(path).split(os.sep)
    for i in range(len(parts) - 1):
        if parts[i:i + 2] == ['shared', 'data']:
            shared = os.sep.join(parts[:i + 2])
            return None if osp.isdir(shared) else shared
    return None


def missing_data_root(data_root: str) -> Optional[str]:
    """Why ``data_root`` cannot be a data root, in one line (None: it is a
    folder).

    Names the path (and where a relative one leads), says when the shared
    data folder beside the repository (``../shared/data``) is absent, and
    asks for a COCO-layout folder.
    """
    if osp.isdir(data_root):
        return None
    state = 'is not a folder' if osp.exists(data_root) else 'does not exist'
    shown = data_root if osp.isabs(data_root) else \
        f'{data_root} ({osp.abspath(data_root)})'
    message = f'data root {shown} {state}'
    shared = _absent_shared_data(data_root)
    if shared:
        message += ('; ../shared/data is the shared data folder beside the '
                    f'repository, absent on this machine ({shared})')
    return f'{message}: pass {COCO_LAYOUT}'


def parse_tool_args(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]] = None
                    ) -> argparse.Namespace:
    """``parser.parse_args(argv)``, then the one-line argparse error of
    :func:`missing_data_root` when ``--data-root`` names no folder."""
    args = parser.parse_args(argv)
    data_root = getattr(args, 'data_root', None)
    problem = missing_data_root(data_root) if data_root else None
    if problem:
        parser.error(problem)
    return args


def data_root_options(cfg, data_root: str) -> Dict[str, str]:
    """``--cfg-options`` entries that point a config at a COCO-layout folder.

    Every dataloader present (train, val, test) gets ``data_root``; the val
    and test COCO evaluators get the annotation file of their dataloader
    under that root.

    Args:
        cfg (mmengine.Config): the loaded config.
        data_root (str): e.g. ``'../shared/data/coco-mini'``.

    Returns:
        dict: dotted config keys -> values, for ``Config.merge_from_dict``.

    Raises:
        FileNotFoundError: ``data_root`` is no folder (one line, see
            :func:`missing_data_root`).
    """
    problem = missing_data_root(data_root)
    if problem:
        raise FileNotFoundError(problem)
    root = data_root.rstrip('/') + '/'
    opts = {}
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        opts[f'{split}_dataloader.dataset.data_root'] = root
        if split == 'train':
            continue
        evaluator = cfg.get(f'{split}_evaluator')
        if isinstance(evaluator, dict) and evaluator.get('ann_file'):
            opts[f'{split}_evaluator.ann_file'] = osp.join(
                root, loader['dataset']['ann_file'])
    return opts


def config_file(path: str) -> str:
    """The file of a config path; ``package::relative/path.py`` (as in
    ``_base_``, e.g. ``mmpose::body_2d_keypoint/dekr/coco/...``) names a
    config shipped by an installed OpenMMLab package (its ``.mim/configs``).

    Raises:
        FileNotFoundError: no such file (one line naming the looked-up path).
    """
    if '::' not in path:
        return path
    package, relative = path.split('::', 1)
    from mmengine.utils import get_installed_path, is_installed
    if not is_installed(package):
        raise FileNotFoundError(f'{path}: the package {package!r} is not '
                                'installed')
    found = osp.join(get_installed_path(package), '.mim', 'configs',
                     relative)
    if not osp.isfile(found):
        raise FileNotFoundError(f'{path}: no config {found} in the '
                                f'installed {package}')
    return found


def load_config(path: str,
                data_root: Optional[str] = None,
                cfg_options: Optional[dict] = None):
    """Load a config, then apply a data root and user overrides (in order).

    Args:
        path (str): config file, or ``package::relative/path.py`` (see
            :func:`config_file`).
        data_root (str, optional): see :func:`data_root_options` (which
            raises a one-line ``FileNotFoundError`` when it is no folder).
        cfg_options (dict, optional): dotted key -> value overrides, e.g.
            from ``--cfg-options`` (``mmengine.config.DictAction``).

    Returns:
        mmengine.Config
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config_file(path))
    if data_root:
        cfg.merge_from_dict(data_root_options(cfg, data_root))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def is_labelled_person(ann: dict) -> bool:
    """Whether a COCO annotation is a non-crowd person with at least one
    labelled keypoint."""
    return not ann.get('iscrowd', 0) and ann.get('num_keypoints', 0) > 0


def labelled_image_ids(coco: dict) -> List[int]:
    """Ids (sorted) of the images of a COCO annotation dict that hold a
    labelled person (:func:`is_labelled_person`)."""
    return sorted({
        a['image_id']
        for a in coco['annotations'] if is_labelled_person(a)
    })


def write_coco_subset(coco: dict, ids: Sequence[int], dst: str) -> None:
    """Write the images ``ids`` of ``coco`` with all their annotations (and
    the other keys of ``coco`` unchanged) to the json file ``dst``."""
    keep = set(ids)
    subset = dict(coco)
    subset['images'] = [im for im in coco['images'] if im['id'] in keep]
    subset['annotations'] = [
        a for a in coco['annotations'] if a['image_id'] in keep
    ]
    with open(dst, 'w') as f:
        json.dump(subset, f)


def is_logocap(cfg_or_model) -> bool:
    """Whether a config (or a built estimator) has a ``LOGOCAPHead``."""
    if isinstance(cfg_or_model, nn.Module):
        return type(cfg_or_model.head).__name__ == 'LOGOCAPHead'
    return cfg_or_model.model.head.type == 'LOGOCAPHead'


def short_name(cfg_path: str) -> str:
    """Config file name without folder and extension."""
    return osp.splitext(osp.basename(cfg_path))[0]


# --------------------------------------------------------------------------
# models and inputs
# --------------------------------------------------------------------------
def build_model(cfg, checkpoint: Optional[str], device: str) -> nn.Module:
    """A pose estimator in eval mode (``mmpose.apis.init_model``).

    Without a checkpoint the weights are random (for timing and counting),
    and a backbone's ``init_cfg`` (e.g. downloading pretrained weights) is
    dropped; ``cfg`` itself is not modified.

    Args:
        cfg (mmengine.Config): model config.
        checkpoint (str, optional): weights to load.
        device (str): e.g. ``'cpu'`` or ``'cuda:0'``.
    """
    from mmpose.apis import init_model
    cfg = copy.deepcopy(cfg)
    if 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    model = init_model(cfg, checkpoint, device=device)
    model.eval()
    return model


def count_params(model: nn.Module) -> int:
    """Number of parameter values."""
    return sum(p.numel() for p in model.parameters())


def val_image_paths(cfg, num_images: int) -> List[str]:
    """The first ``num_images`` images (by image id) of the test set.

    Images without annotated persons count too. ``num_images <= 0``: all.
    """
    dataset = cfg.test_dataloader.dataset
    root = dataset.get('data_root', '')
    with open(osp.join(root, dataset.ann_file)) as f:
        ann = json.load(f)
    img_dir = osp.join(root, dataset.get('data_prefix', {}).get('img', ''))
    images = sorted(ann['images'], key=lambda im: im['id'])
    paths = [osp.join(img_dir, im['file_name']) for im in images]
    return paths[:num_images] if num_images > 0 else paths


def prepare_batches(model: nn.Module, img_paths: Sequence[str]) -> List[dict]:
    """One batch of one image per path, through the model's test pipeline.

    As ``mmpose.apis.inference_bottomup`` prepares them; ``model.test_step``
    consumes each (give it a copy: the preprocessor changes it in place).
    """
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    batches = []
    for path in img_paths:
        data_info = dict(img_path=path)
        data_info.update(model.dataset_meta)
        batches.append(pseudo_collate([pipeline(data_info)]))
    return batches


def _test_cfgs(model: nn.Module) -> List[dict]:
    """The estimator's ``test_cfg`` and the head's, if it keeps its own."""
    cfgs = [model.test_cfg]
    head_cfg = getattr(model.head, 'test_cfg', None)
    if isinstance(head_cfg, dict) and head_cfg is not model.test_cfg:
        cfgs.append(head_cfg)
    return cfgs


def set_test_options(model: nn.Module, **options) -> None:
    """Update the test settings of the estimator and its head for good."""
    for cfg in _test_cfgs(model):
        cfg.update(options)


@contextmanager
def test_options(model: nn.Module, **options) -> Iterator[None]:
    """Test settings of the estimator and its head, restored on exit
    (keys that were absent are removed again)."""
    saved = [(cfg, {k: cfg.get(k, _MISSING) for k in options})
             for cfg in _test_cfgs(model)]
    set_test_options(model, **options)
    try:
        yield
    finally:
        for cfg, old in saved:
            for key, value in old.items():
                if value is _MISSING:
                    cfg.pop(key, None)
                else:
                    cfg[key] = value


@contextmanager
def overridden(obj: Any, **attrs) -> Iterator[Any]:
    """Set attributes of ``obj`` (e.g. a codec's thresholds) and restore
    them on exit. Every attribute must exist."""
    saved = {}
    for name in attrs:
        if not hasattr(obj, name):
            raise AttributeError(f'{type(obj).__name__} has no attribute '
                                 f'{name!r} to override')
        saved[name] = getattr(obj, name)
    try:
        for name, value in attrs.items():
            setattr(obj, name, value)
        yield obj
    finally:
        for name, value in saved.items():
            setattr(obj, name, value)


# --------------------------------------------------------------------------
# command lines
# --------------------------------------------------------------------------
def tool_parser(description: str,
                **positionals: Any) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with ``description`` and one positional
    argument per keyword, in order: ``config='config file'`` (the name and
    its help) or ``configs=dict(nargs='+', help=...)`` (its keywords)."""
    parser = argparse.ArgumentParser(description=description)
    for name, spec in positionals.items():
        parser.add_argument(
            name, **(spec if isinstance(spec, dict) else dict(help=spec)))
    return parser


def comparison_parser(description: str) -> argparse.ArgumentParser:
    """:func:`tool_parser` with the two configs that a LOGO-CAP / DEKR
    comparison takes, ``logocap_config`` and ``dekr_config``."""
    return tool_parser(
        description,
        logocap_config='config of the LOGO-CAP model (LOGOCAPHead)',
        dekr_config='config of its DEKR peer (same data, backbone and '
        'schedule)')


def add_timing_arguments(parser: argparse.ArgumentParser, warmup: int = 2,
                         repeats: int = 3, device: bool = True) -> None:
    """``--warmup`` and ``--repeats`` of :func:`~.timing.time_test_step`,
    and (``device``) ``--device`` and ``--threads``: the options every
    timing tool shares."""
    parser.add_argument(
        '--warmup', type=int, default=warmup,
        help=f'untimed runs before timing (default: {warmup})')
    parser.add_argument(
        '--repeats', type=int, default=repeats,
        help=f'timed runs per input; the median counts (default: {repeats})')
    if device:
        add_device_arguments(parser)


def add_device_arguments(parser: argparse.ArgumentParser,
                         threads: bool = True) -> None:
    """``--device`` (torch device, 'cpu' by default) and ``--threads``
    (torch CPU threads, torch's choice by default)."""
    parser.add_argument(
        '--device', default='cpu',
        help="torch device, e.g. 'cpu' or 'cuda:0' (default: cpu)")
    if threads:
        parser.add_argument(
            '--threads', type=int, default=None,
            help="torch CPU threads (default: torch's choice)")


def add_config_arguments(parser: argparse.ArgumentParser,
                         seed: Optional[str] = None) -> None:
    """``--cfg-options`` (MMEngine's key=value overrides of the config or
    configs, applied last) and, when ``seed`` names what it seeds,
    ``--seed``."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='config overrides (key=value), applied to every config given')
    if seed:
        parser.add_argument('--seed', type=int, default=0,
                            help=f'seed of {seed} (default: 0)')
