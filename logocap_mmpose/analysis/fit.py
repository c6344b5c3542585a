"""The ablation fit (``tools/fit_check.py``, whose docstring says what it
measures): a config trained on a few images with augmentation off, then
every ``test_cfg.mode`` (and the :data:`EXTRA_ROWS`; the
:data:`QUALITY_ROWS` for a head with ``quality_cfg``) scored on them.

:func:`subset_annotations` picks the images, :func:`fit_config` sets the
fit, :class:`GateRecorder` keeps the OKS gate ratio, :func:`fit_table`
writes the table and :func:`run_fit_check` runs it all.
"""
import copy
import json
import os
import os.path as osp
from typing import Dict, List

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ..models.refinement import MODES  # noqa: F401  (the table's rows)
from . import (Column, Stopwatch, labelled_image_ids, load_config,
               markdown_table, write_coco_subset, write_report)

# extra rows: row name -> (test mode, kams_only_decode or None for the
# config's, test_cfg.kam_score, test_cfg.pose_score)
EXTRA_ROWS = {
    'kams_only_top2': ('kams_only', 'top2', None, 'heatmap'),
    'full_kam_product': ('full', None, 'product', 'heatmap'),
    'full_kam_replace': ('full', None, 'replace', 'heatmap'),
}
# rows of a head with the learned pose-quality score (quality_cfg)
QUALITY_ROWS = {
    'full_quality': ('full', None, None, 'quality'),
    'full_quality_product': ('full', None, None, 'product'),
}
METRICS = [('AP', 'coco/AP'), ('AP50', 'coco/AP .5'),
           ('AP75', 'coco/AP .75'), ('AR', 'coco/AR')]


def subset_annotations(src: str, num_images: int, dst: str,
                       first: int = 0) -> List[int]:
    """Write ``num_images`` images with a keypoint-labelled person, from the
    ``first``-th in id order, with all their annotations, to ``dst``; return
    their ids."""
    with open(src) as f:
        coco = json.load(f)
    labelled = labelled_image_ids(coco)
    ids = labelled[first:first + num_images]
    if len(ids) < num_images:
        raise ValueError(f'{src} has only {len(labelled)} images with a '
                         f'keypoint-labelled person; asked for images '
                         f'{first} to {first + num_images - 1}')
    write_coco_subset(coco, ids, dst)
    return ids


def no_augmentation(pipeline: List[dict]) -> List[dict]:
    """The train pipeline with the affine at scale 1, no rotation or shift
    (the horizontal flip stays)."""
    steps = []
    for step in copy.deepcopy(pipeline):
        if step['type'] in ('BottomupRandomAffine', 'LOGOCAPRandomAffine'):
            step.update(shift_factor=0.0, scale_factor=(1.0, 1.0),
                        rotate_factor=0.0)
        steps.append(step)
    return steps


def fit_config(cfg: Config, args, ann_file: str) -> Config:
    root = osp.abspath(args.data_root)
    data = dict(data_root=root, ann_file=ann_file,
                data_prefix=dict(img=args.img_prefix))
    train = cfg.train_dataloader
    train.dataset.update(data)
    train.dataset.pipeline = no_augmentation(train.dataset.pipeline)
    train.sampler = dict(type='DefaultSampler', shuffle=True)
    test = copy.deepcopy(cfg.test_dataloader)
    test.dataset.update(data)
    test.dataset.test_mode = True
    cfg.test_dataloader = test
    cfg.test_evaluator = dict(cfg.test_evaluator, ann_file=ann_file)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.train_cfg = dict(by_epoch=True, max_epochs=args.epochs,
                         val_interval=args.epochs + 1)
    # warm-up only: a fit needs no learning-rate decay
    cfg.param_scheduler = [
        s for s in cfg.get('param_scheduler', []) or []
        if not s.get('by_epoch', True)
    ]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=args.epochs, save_last=True,
        max_keep_ckpts=1)
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = args.work_dir
    cfg.merge_from_dict(args.cfg_options)
    return cfg


class GateRecorder(Hook):
    """Keeps ``oks_gate_ratio`` of every training iteration."""

    def __init__(self):
        self.values = []
        self.iters_per_epoch = 1

    def before_train(self, runner):
        self.iters_per_epoch = len(runner.train_dataloader)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if outputs and 'oks_gate_ratio' in outputs:
            self.values.append(float(outputs['oks_gate_ratio']))

    def last_epoch_mean(self) -> float:
        last = self.values[-self.iters_per_epoch:]
        return sum(last) / len(last) if last else float('nan')

    def ungated(self) -> str:
        """Iterations where no proposal of the batch passed the gate (the
        CMP then saw no proposal and its BatchNorm statistics did not
        move), and the last of them, e.g. '12 (last: 40 of 200)'."""
        closed = [i + 1 for i, v in enumerate(self.values) if v == 0]
        last = closed[-1] if closed else 0
        return f'{len(closed)} (last: {last} of {len(self.values)})'


def fit_table(rows: Dict[str, Dict[str, float]], gate: float, args,
             minutes: float, ungated: str = '') -> str:
    """The fit table: one row per mode (``rows``: mode -> CocoMetric
    results) and a line with the budget, the final gate ratio and the
    iterations with no gated proposal (``ungated``)."""
    columns = [Column('mode', 'mode')] + [
        Column(key, name, '{:.3f}') for name, key in METRICS
    ]
    table = markdown_table(
        columns, [dict(res, mode=mode) for mode, res in rows.items()])
    return (f'{table}\n\n{args.num_images} images (from the '
            f'{args.first_image}-th labelled one), seed {args.seed}, '
            f'{args.epochs} epochs, '
            f'{minutes:.1f} min; final oks_gate_ratio (last epoch mean) '
            f'{gate:.3f}' +
            (f'; iterations with no gated proposal {ungated}'
             if ungated else ''))


def run_fit_check(args) -> str:
    """Fit, score every row of ``args.modes``, print and write
    (``args.out``) the table; return it. ``args``: the namespace of
    ``tools/fit_check.py``."""
    os.makedirs(args.work_dir, exist_ok=True)
    cfg = load_config(args.config)
    src = osp.join(args.data_root, args.ann_file)
    if not osp.exists(src):
        raise FileNotFoundError(f'annotation file {src} not found (set '
                                '--data-root / --ann-file)')
    ann_file = osp.abspath(osp.join(args.work_dir, 'fit_annotations.json'))
    subset_annotations(src, args.num_images, ann_file, args.first_image)
    cfg = fit_config(cfg, args, ann_file)
    runner = Runner.from_cfg(cfg)
    recorder = GateRecorder()
    runner.register_hook(recorder, priority='LOW')
    with Stopwatch() as watch:
        runner.train()
    rows = {}
    test_cfg, head = runner.model.test_cfg, runner.model.head
    default_decode = head.kams_only_decode
    for row in args.modes:
        mode, decode, kam_score, pose_score = {
            **EXTRA_ROWS, **QUALITY_ROWS
        }.get(row, (row, None, None, 'heatmap'))
        test_cfg.update(mode=mode, kam_score=kam_score, pose_score=pose_score)
        head.kams_only_decode = decode or default_decode
        rows[row] = runner.test()
    table = fit_table(rows, recorder.last_epoch_mean(), args,
                     watch.seconds / 60, recorder.ungated())
    print(table)
    write_report(table, args.out)
    return table

