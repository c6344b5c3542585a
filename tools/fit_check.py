#!/usr/bin/env python
"""Ablation-fit benchmark: can the model fit a few images, and does each
stage of LOGO-CAP add what the paper says it adds?

It trains a config on N images of a COCO-style set (default: the first 16
coco-mini train images that hold a person with keypoints, by image id), with
augmentation off except the horizontal flip (the config's random affine at
scale 1, no rotation, no shift), a constant learning rate after the config's
warm-up, then evaluates every ``model.test_cfg.mode`` on those same images
with the config's test pipeline and ``CocoMetric``. It prints one markdown
table (AP, AP50, AP75, AR per mode) and the last epoch's mean
``oks_gate_ratio`` (the share of training proposals that passed the OKS
gate). MMEngine's logger shows progress and ETA.

A fit is not a generalisation test: it shows whether the refinement learns
what it should on data it has seen, in minutes on a CPU.

Example (about 15 minutes on 2 CPU cores)::

    python tools/fit_check.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        --data-root ../shared/data/coco-mini --epochs 100 --out fit.md
"""
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, List

from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from logocap_mmpose.models.refinement import MODES  # the table's rows
from logocap_mmpose.utils.tooling import (Column, Stopwatch,
                                          labelled_image_ids, load_config,
                                          markdown_table, parse_tool_args,
                                          write_coco_subset)

# extra rows: row name -> (test mode, kams_only_decode or None for the
# config's, test_cfg.kam_score)
EXTRA_ROWS = {
    'kams_only_top2': ('kams_only', 'top2', None),
    'full_kam_product': ('full', None, 'product'),
    'full_kam_replace': ('full', None, 'replace'),
}
METRICS = [('AP', 'coco/AP'), ('AP50', 'coco/AP .5'),
           ('AP75', 'coco/AP .75'), ('AR', 'coco/AR')]


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a LOGO-CAP config on a few images and score '
        'every test_cfg.mode on them (the ablation-fit benchmark).')
    parser.add_argument('config', help='LOGO-CAP config file')
    parser.add_argument(
        '--data-root', default='../shared/data/coco-mini',
        help='COCO-style root with annotations/ and the image folder')
    parser.add_argument(
        '--ann-file', default='annotations/person_keypoints_train2017.json',
        help='annotation file, relative to --data-root')
    parser.add_argument('--img-prefix', default='train2017/',
                        help='image folder, relative to --data-root')
    parser.add_argument('--num-images', type=int, default=16,
                        help='images to fit (the first ones by id that hold '
                        'a person with keypoints)')
    parser.add_argument(
        '--first-image', type=int, default=0,
        help='skip this many of those images first (e.g. 16 with '
        '--num-images 16: a second, disjoint set)')
    parser.add_argument('--epochs', type=int, default=100,
                        help='training epochs over the N images')
    parser.add_argument(
        '--modes', nargs='+', default=list(MODES) + list(EXTRA_ROWS),
        choices=MODES + tuple(EXTRA_ROWS),
        help='test_cfg.mode values to score; kams_only_top2 is kams_only '
        "with head.adaptation_cfg.kams_only_decode='top2', full_kam_product "
        "and full_kam_replace are full with test_cfg.kam_score='product' / "
        "'replace' (pose scores from the KAMs)")
    parser.add_argument('--work-dir', default='work_dirs/fit_check',
                        help='logs, the subset annotation file and the '
                        'final checkpoint go here')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='config overrides (key=value), applied after the fit settings')
    return parse_tool_args(parser)


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


def markdown(rows: Dict[str, Dict[str, float]], gate: float, args,
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


def main():
    args = parse_args()
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
        mode, decode, kam_score = EXTRA_ROWS.get(row, (row, None, None))
        test_cfg.update(mode=mode, kam_score=kam_score)
        head.kams_only_decode = decode or default_decode
        rows[row] = runner.test()
    table = markdown(rows, recorder.last_epoch_mean(), args,
                     watch.seconds / 60, recorder.ungated())
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
