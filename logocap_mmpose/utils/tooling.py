"""What the scripts under ``tools/`` share: configs, models, inputs, timing
and markdown tables.

``tools/benchmark_inference.py``, ``tools/compare_with_dekr.py``,
``tools/fit_check.py`` and ``tools/count_flops.py`` import it as
``logocap_mmpose.utils.tooling`` (no ``sys.path`` edits). MMEngine and
MMPose are imported inside the functions that need them.

- configs: :func:`load_config` with :func:`data_root_options` (point a
  config's datasets and COCO evaluators at one folder; a missing one is a
  one-line error, :func:`missing_data_root`, which the tools give through
  :func:`parse_tool_args`), :func:`is_logocap`, :func:`short_name`;
- models and inputs: :func:`build_model` (random weights without a
  checkpoint), :func:`count_params`, :func:`val_image_paths`,
  :func:`prepare_batches`, :func:`set_test_options` and the undone variants
  :func:`test_options` / :func:`overridden`;
- timing: :class:`Stopwatch`, :func:`time_test_step` (warm-up, then the
  median of repeats per image), :func:`count_workload`,
  :func:`time_end_to_end` (both, as a :class:`Timing`);
- report: :class:`Column` and :func:`markdown_table` (rows are mappings read
  by column key), :func:`time_ratio_sentence`, :func:`workload_note`.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

import torch
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
# timing
# --------------------------------------------------------------------------
def synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


class Stopwatch:
    """Wall time of a ``with`` block, device work included.

    Example::

        with Stopwatch('cuda:0') as watch:
            model.test_step(data)
        watch.seconds
    """

    def __init__(self, device: str = 'cpu'):
        self.device = device
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> 'Stopwatch':
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def median_seconds(run: Callable[[Any], Any], repeats: int,
                   device: str = 'cpu',
                   prepare: Optional[Callable[[], Any]] = None
                   ) -> Tuple[float, Any]:
    """Median wall time (:class:`Stopwatch`) of ``repeats`` calls of
    ``run(prepare())`` (``run()`` without ``prepare``; ``prepare`` is not
    timed), and the last call's result."""
    times, result = [], None
    for _ in range(max(repeats, 1)):
        args = () if prepare is None else (prepare(), )
        with Stopwatch(device) as watch:
            result = run(*args)
        times.append(watch.seconds)
    return statistics.median(times), result


@torch.no_grad()
def time_test_step(model: nn.Module,
                   batches: Sequence[dict],
                   warmup: int = 2,
                   repeats: int = 3,
                   device: str = 'cpu',
                   run: Optional[Callable[[dict], list]] = None
                   ) -> Tuple[float, list]:
    """Milliseconds per image of ``model.test_step`` (or of ``run``, any
    callable that takes a test batch as ``test_step`` does, e.g. an ONNX
    pipeline).

    ``warmup`` untimed runs (cycling over the batches), then per batch the
    median of ``repeats`` timed runs on a deep copy of the batch
    (:func:`median_seconds`), divided by its images; the mean over the
    batches.

    Returns:
        tuple: ms per image and the last result of every batch.
    """
    run = model.test_step if run is None else run
    for i in range(warmup):
        run(copy.deepcopy(batches[i % len(batches)]))
    per_image, results = [], []
    for batch in batches:
        seconds, result = median_seconds(
            run, repeats, device, prepare=lambda: copy.deepcopy(batch))
        per_image.append(seconds / max(len(batch['inputs']), 1))
        results.append(result)
    return 1000.0 * statistics.mean(per_image), results


@torch.no_grad()
def count_workload(model: nn.Module, batches: Sequence[dict]) -> float:
    """Mean number of proposals per image that a model works on.

    LOGO-CAP: the proposals refined, i.e. the batch dimension of the message
    passing input, seen by a forward pre-hook on ``head.cmp`` (0 in the
    modes without KAMs). Other bottom-up heads (DEKR): the instances
    returned with pose NMS off (``test_cfg.nms_dist_thr=0``), i.e. what the
    decoder finds. One untimed ``test_step`` per batch.
    """
    if not batches:
        return 0.0
    counts = []
    if is_logocap(model):
        seen = []

        def record(module, args):
            seen.append(int(args[0].shape[0]))

        handle = model.head.cmp.register_forward_pre_hook(record)
        try:
            for batch in batches:
                seen.clear()
                model.test_step(copy.deepcopy(batch))
                counts.append(sum(seen))
        finally:
            handle.remove()
    else:
        with test_options(model, nms_dist_thr=0):
            for batch in batches:
                results = model.test_step(copy.deepcopy(batch))
                counts.append(sum(len(r.pred_instances) for r in results))
    return statistics.mean(counts)


class Timing(NamedTuple):
    """What :func:`time_end_to_end` measures (means over the images)."""
    ms_per_image: float
    proposals: float  # worked on, see count_workload
    instances: float  # poses returned


def time_end_to_end(model: nn.Module,
                    batches: Sequence[dict],
                    warmup: int = 2,
                    repeats: int = 3,
                    device: str = 'cpu') -> Timing:
    """:func:`time_test_step` and :func:`count_workload` of one model."""
    ms, results = time_test_step(model, batches, warmup, repeats, device)
    instances = statistics.mean(
        sum(len(r.pred_instances) for r in result) for result in results)
    return Timing(ms, count_workload(model, batches), instances)


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A markdown table column: the row key it shows, its title and the
    format of its values (``str.format`` syntax, e.g. ``'{:.1f}'``)."""
    key: str
    title: str
    fmt: str = '{}'

    def cell(self, row: Mapping[str, Any], missing: str = '-') -> str:
        value = row.get(self.key)
        if value is None:
            return missing
        return self.fmt.format(value)


def proposals_word(num: int) -> str:
    """'proposal' or 'proposals', for ``num`` of them."""
    return 'proposal' if num == 1 else 'proposals'


def markdown_table(columns: Sequence[Column],
                   rows: Sequence[Mapping[str, Any]],
                   missing: str = '-') -> str:
    """A markdown table whose rows are mappings read by column key.

    A key absent from a row (or None) prints as ``missing``; keys of a row
    that no column names are left out.
    """
    lines = ['| ' + ' | '.join(c.title for c in columns) + ' |',
             '|' + '|'.join('---' for _ in columns) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(c.cell(row, missing)
                                       for c in columns) + ' |')
    return '\n'.join(lines)


def write_report(report: str, path: Optional[str]) -> None:
    """Write a tool's report (plus a final newline) to ``path``, creating
    its folder; nothing when ``path`` is empty."""
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            f.write(report + '\n')


def time_ratio_sentence(logocap_ms: float, dekr_ms: float,
                        condition: str = '') -> str:
    """The time ratio as a plain sentence: "LOGO-CAP takes 0.44x DEKR's time
    per image." (``condition`` and a colon in front when given)."""
    ratio = logocap_ms / dekr_ms
    sentence = f"LOGO-CAP takes {ratio:.2f}x DEKR's time per image."
    return f'{condition}: {sentence}' if condition else sentence


def workload_note(proposals: Mapping[str, float], trained: Mapping[str, bool],
                  forced: Optional[int] = None) -> str:
    """What the two models worked on, and whether that was the same.

    Args:
        proposals (dict): mean proposals per image of ``'DEKR'`` (instances
            decoded) and ``'LOGO-CAP'`` (proposals refined).
        trained (dict): whether each model loaded a checkpoint.
        forced (int, optional): the proposal count of the equal-work rows,
            if they were timed.

    Returns:
        str: empty when both models are trained and worked on the same
        number of proposals.
    """
    dekr, logocap = proposals['DEKR'], proposals['LOGO-CAP']
    random = [k for k in ('DEKR', 'LOGO-CAP') if not trained[k]]
    same = abs(dekr - logocap) < 0.05
    if not random and same:
        return ''
    weights = ('random weights' if len(random) == 2 else
               f'random {random[0]} weights' if random else 'trained weights')
    note = (f'{weights}: DEKR finds {dekr:.1f} instances per image, LOGO-CAP '
            f'refines {logocap:.1f} proposals; timings compare '
            + ('equal numbers of proposals' if same else 'unequal work'))
    if forced:
        note += (f'. The "{forced} proposals forced" rows give both models '
                 f'{forced} proposals per image')
    return note + '.'
