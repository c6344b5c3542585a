"""Side-by-side comparison of LOGO-CAP and DEKR from a pair of matching
configs (same backbone, input size, data and schedule).

For each model it trains with the same budget with MMPose's own
``tools/train.py`` (or takes a given checkpoint), evaluates on the same val
set with the same ``CocoMetric``, times inference on the same images and
device with the same test settings (flip on for both, warm-up, median of
repeats; see ``tools/benchmark_inference.py``; both tools share
``logocap_mmpose/analysis/inputs.py``) and counts parameters. It
prints one markdown table (the pose score each model used, AP, AP50,
AP75, APM, APL, AR, ms/image, the proposals and instances per image while
timed, params)
with LOGO-CAP's own ablation rows: the center-offset baseline (and any other
``model.test_cfg.mode``) evaluated on the same LOGO-CAP weights.

``tools/compare_with_dekr.py`` is the command line over
:func:`run_comparison` (its docstring has the examples).

With both checkpoints given the configs need not match (each model is
evaluated with the config it was released with; what differs is listed
under the table). DEKR is scored by MMPose's rescore net when its
checkpoint carries the net's weights (:func:`use_dekr_rescoring`), by its
heatmaps otherwise; LOGO-CAP by its ``test_cfg.pose_score``.
``proposals/image``: LOGO-CAP's refined proposals, DEKR's
instances decoded before pose NMS.
"""
import copy
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import torch

from . import (Column, build_model, count_params, is_logocap, load_config,
               markdown_table, prepare_batches, set_test_options, short_name,
               test_options, time_end_to_end, time_ratio_sentence,
               val_image_paths, workload_note, write_report)

METRICS = [('AP', 'coco/AP'), ('AP50', 'coco/AP .5'),
           ('AP75', 'coco/AP .75'), ('APM', 'coco/AP (M)'),
           ('APL', 'coco/AP (L)'), ('AR', 'coco/AR')]


# --------------------------------------------------------------------------
# config matching
# --------------------------------------------------------------------------
def _plain(obj):
    """Config objects -> plain python containers, for comparison.

    ``_scope_`` (added to dicts inherited through ``mmpose::``) is dropped.
    """
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _augmentation(cfg) -> List[dict]:
    """Train pipeline without the target encoder (which differs by design)."""
    steps = []
    for step in _plain(cfg.train_dataloader.dataset.pipeline):
        if step['type'] == 'GenerateTarget':
            step = dict(type='GenerateTarget')
        steps.append(step)
    return steps


def _test_pipeline(cfg) -> List[dict]:
    return _plain(cfg.test_dataloader.dataset.pipeline)


def _dataset(cfg, split: str) -> dict:
    ds = _plain(cfg[f'{split}_dataloader']['dataset'])
    return {k: ds.get(k) for k in ('type', 'data_root', 'ann_file',
                                   'data_prefix', 'data_mode')}


def matching_report(cfg_a, cfg_b) -> List[Tuple[str, bool]]:
    """What a fair comparison needs to be equal, and whether it is."""
    checks = [
        ('backbone', lambda c: _plain(c.model.backbone)),
        ('neck', lambda c: _plain(c.model.get('neck'))),
        ('data preprocessor', lambda c: _plain(c.model.data_preprocessor)),
        ('input size', lambda c: tuple(c.model.head.decoder.input_size)),
        ('heatmap size', lambda c: tuple(c.model.head.decoder.heatmap_size)),
        ('flip test', lambda c: c.model.test_cfg.get('flip_test', False)),
        ('train data', lambda c: _dataset(c, 'train')),
        ('val data', lambda c: _dataset(c, 'val')),
        ('train augmentation', _augmentation),
        ('test pipeline', _test_pipeline),
        ('batch size', lambda c: c.train_dataloader.batch_size),
        ('optimizer', lambda c: _plain(c.optim_wrapper)),
        ('lr schedule', lambda c: _plain(c.param_scheduler)),
        ('epochs', lambda c: c.train_cfg.max_epochs),
        ('evaluator', lambda c: _plain(c.val_evaluator)),
    ]
    return [(name, get(cfg_a) == get(cfg_b)) for name, get in checks]


# --------------------------------------------------------------------------
# training and evaluation
# --------------------------------------------------------------------------
def mmpose_tool(name: str) -> str:
    """Path of MMPose's packaged tools/<name> (what ``mim`` runs)."""
    import mmpose
    path = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', name)
    if not osp.exists(path):
        raise FileNotFoundError(f'{path} not found: MMPose installed '
                                'without its .mim folder')
    return path


def train(cfg, work_dir: str, epochs: Optional[int]) -> str:
    """Train with MMPose's tools/train.py in a subprocess; returns the final
    checkpoint. The (overridden) config is dumped to ``work_dir`` first."""
    cfg = copy.deepcopy(cfg)
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint.interval = cfg.train_cfg.max_epochs
    cfg.default_hooks.checkpoint.save_best = None
    os.makedirs(work_dir, exist_ok=True)
    cfg_file = osp.join(work_dir, 'train_config.py')
    cfg.dump(cfg_file)
    cmd = [sys.executable, mmpose_tool('train.py'), cfg_file,
           '--work-dir', work_dir, '--no-validate']
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(cfg, checkpoint: str, work_dir: str,
             test_options: Optional[dict] = None) -> Tuple[dict, int]:
    """``Runner.test()`` of the config's test set with ``checkpoint``;
    returns the metrics and the number of images evaluated."""
    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.model.test_cfg.flip_test = True
    if test_options:
        cfg.model.test_cfg.update(test_options)
    cfg.default_hooks.visualization.enable = False
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    return metrics, len(runner.test_dataloader.dataset)


def checkpoint_budget(path: str) -> Optional[dict]:
    """Training budget recorded in an MMEngine checkpoint's meta: epoch,
    iteration, batch size and lr schedule (None when not recorded)."""
    from mmengine.config import Config
    try:
        meta = torch.load(path, map_location='cpu')['meta']
        cfg = Config.fromstring(meta['cfg'], '.py')
        return dict(epoch=meta['epoch'], iter=meta['iter'],
                    batch_size=cfg.train_dataloader.batch_size,
                    schedule=_plain(cfg.param_scheduler))
    except Exception:  # not an MMEngine training checkpoint
        return None


def _dir(key: str) -> str:
    return key.lower().replace('-', '')


#: MMPose's DEKR rescore net (``DEKRHead.rescore_cfg``) per keypoint
#: count, without its pretrained-weights download: the weights must come
#: with the checkpoint
RESCORE_CFGS = {17: dict(in_channels=74, norm_indexes=(5, 6)),
                14: dict(in_channels=59, norm_indexes=(0, 1))}


def checkpoint_keys(path: str) -> List[str]:
    """The state-dict keys of a checkpoint file."""
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return list(ckpt.get('state_dict', ckpt))


def use_dekr_rescoring(cfg, keys) -> str:
    """Score a DEKR config with MMPose's rescore net when the checkpoint's
    state-dict ``keys`` carry its weights (``head.rescore_net.*``); return
    the score the table names."""
    if not any(k.startswith('head.rescore_net.') for k in keys):
        return 'heatmap (no rescore net in the checkpoint)'
    num_keypoints = cfg.model.head.get('num_keypoints', 17)
    cfg.model.head.rescore_cfg = dict(RESCORE_CFGS[num_keypoints])
    return 'rescore net (from the checkpoint)'


def logocap_score(cfg) -> str:
    """The pose score a LOGO-CAP config tests with
    (``test_cfg.pose_score``, and ``kam_score`` when set)."""
    test_cfg = cfg.model.get('test_cfg', {})
    score = test_cfg.get('pose_score', 'heatmap')
    score = {'heatmap': 'heatmap x centre',
             'quality': 'learned quality',
             'product': 'heatmap x centre x learned quality'}.get(score, score)
    kam = test_cfg.get('kam_score')
    return score + (f', kam_score={kam}' if kam else '')


#: the result table: one row per model / ablation mode, keyed as below
RESULT_COLUMNS = ([Column('label', 'model'), Column('score', 'pose score')] +
                  [Column(name, name, '{:.1f}') for name, _ in METRICS] +
                  [Column('ms', 'ms/image', '{:.1f}'),
                   Column('proposals', 'proposals/image', '{:.1f}'),
                   Column('instances', 'instances/image', '{:.1f}'),
                   Column('params_m', 'params (M)', '{:.2f}')])
LABELS = {
    'DEKR': 'DEKR ({})',
    'LOGO-CAP': 'LOGO-CAP, full ({})',
    'baseline': 'LOGO-CAP ablation: center-offset baseline (same weights)',
    'kems_only': 'LOGO-CAP ablation: KEMs only (same weights)',
    'kams_only': 'LOGO-CAP ablation: KAMs only (same weights)',
}


def metric_cells(metrics: Dict[str, float]) -> Dict[str, float]:
    """CocoMetric results -> percentages keyed by the table's metric names
    (a metric the evaluator did not report is left out: printed '-')."""
    return {name: 100 * metrics[key] for name, key in METRICS
            if key in metrics}


def time_models(cfgs: Dict[str, object], ckpts: Dict[str, str],
                modes: List[str], args) -> Tuple[Dict[str, dict], int]:
    """Time both models on the same val images (flip on) and the LOGO-CAP
    ablation modes on its weights.

    Returns:
        tuple: per row key ('DEKR', 'LOGO-CAP', each mode) the ``ms``,
        ``instances``, ``proposals`` and ``params_m`` entries of its row;
        the number of images timed.
    """
    img_paths = val_image_paths(cfgs['LOGO-CAP'], args.time_images)
    timing = dict(warmup=args.warmup, repeats=args.repeats,
                  device=args.device)
    rows = {}
    for key in ('DEKR', 'LOGO-CAP'):
        model = build_model(cfgs[key], ckpts[key], args.device)
        set_test_options(model, flip_test=True)
        batches = prepare_batches(model, img_paths)
        params_m = count_params(model) / 1e6
        runs = [(key, {})] + ([(m, dict(mode=m)) for m in modes]
                              if key == 'LOGO-CAP' else [])
        for row, options in runs:
            with test_options(model, **options):
                timed = time_end_to_end(model, batches, **timing)
            rows[row] = dict(ms=timed.ms_per_image,
                             instances=timed.instances,
                             proposals=timed.proposals, params_m=params_m)
        del model
    return rows, len(img_paths)


def budget_notes(ckpts: Dict[str, str]) -> List[str]:
    """The budget each checkpoint was trained with (given ones included),
    and a warning when the two differ."""
    budgets = {key: checkpoint_budget(path) for key, path in ckpts.items()}
    notes = []
    for key, budget in budgets.items():
        if budget is None:
            notes.append(f'{key}: not recorded')
        else:
            notes.append(f'{key}: epoch {budget["epoch"]}, {budget["iter"]} '
                         f'iterations of {budget["batch_size"]} images')
    if None not in budgets.values() and any(
            budgets['LOGO-CAP'][k] != budgets['DEKR'][k]
            for k in ('epoch', 'iter', 'batch_size', 'schedule')):
        notes.append('WARNING: the two checkpoints were NOT trained with the '
                     'same budget / lr schedule')
        print('WARNING: ' + notes[-1], flush=True)
    return notes


def check_configs(cfgs: Dict[str, object], allow_mismatch: bool,
                  released: bool = False) -> Optional[str]:
    """Print what the two configs share; stop when they differ (unless
    ``allow_mismatch``, or ``released``: both checkpoints given, each with
    the config it was released with, so the recipes differ by design).
    Returns the note on what differs, None when nothing does."""
    report = matching_report(cfgs['LOGO-CAP'], cfgs['DEKR'])
    mismatched = [name for name, same in report if not same]
    print('configs match on: ' +
          ', '.join(name for name, same in report if same))
    note = None
    if mismatched:
        msg = 'configs differ in: ' + ', '.join(mismatched)
        if not (allow_mismatch or released):
            raise SystemExit(msg + ' (use --allow-mismatch to go on; not '
                             'needed when both checkpoints are given)')
        print('WARNING: ' + msg)
        note = (('Released weights, each with its own config: ' if released
                 else 'WARNING: ') + msg + '.')
    if not is_logocap(cfgs['LOGO-CAP']):
        print('WARNING: the first config has no LOGOCAPHead')
    return note


def run_comparison(args) -> str:
    """Train (unless both checkpoints are given), evaluate and time both
    models and their ablation modes; print and return the table.

    Args:
        args (argparse.Namespace): the options of
            ``tools/compare_with_dekr.py`` (configs, checkpoints, data root,
            epochs, work dir, ablation modes, timing and output options).

    Returns:
        str: the markdown table and its notes.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')

    paths = {'LOGO-CAP': args.logocap_config, 'DEKR': args.dekr_config}
    cfgs = {k: load_config(p, args.data_root, args.cfg_options)
            for k, p in paths.items()}
    if args.epochs is not None:
        for cfg in cfgs.values():
            cfg.train_cfg.max_epochs = args.epochs
    released = bool(args.logocap_checkpoint and args.dekr_checkpoint)
    config_note = check_configs(cfgs, args.allow_mismatch, released)

    work_dir = args.work_dir or osp.join(
        'work_dirs', 'compare_' + short_name(args.logocap_config))
    ckpts = {'LOGO-CAP': args.logocap_checkpoint,
             'DEKR': args.dekr_checkpoint}
    for key, cfg in cfgs.items():
        if not ckpts[key]:
            ckpts[key] = train(cfg, osp.join(work_dir, _dir(key)),
                               args.epochs)
    budgets = budget_notes(ckpts)
    scores = {'DEKR': use_dekr_rescoring(cfgs['DEKR'],
                                         checkpoint_keys(ckpts['DEKR'])),
              'LOGO-CAP': logocap_score(cfgs['LOGO-CAP'])}

    # evaluation: same val set, same CocoMetric
    metrics = {}
    for key in ('DEKR', 'LOGO-CAP'):
        metrics[key], num_val = evaluate(cfgs[key], ckpts[key],
                                         osp.join(work_dir, _dir(key)))
    modes = args.ablation_modes if is_logocap(cfgs['LOGO-CAP']) else []
    for mode in modes:
        metrics[mode], _ = evaluate(cfgs['LOGO-CAP'], ckpts['LOGO-CAP'],
                                    osp.join(work_dir, 'logocap'),
                                    dict(mode=mode))

    # timing and parameters: same images, device, threads, flip
    timed, num_timed = time_models(cfgs, ckpts, modes, args)
    rows = []
    for key in ['DEKR', 'LOGO-CAP'] + list(modes):
        label = LABELS.get(key, 'LOGO-CAP ablation: mode={}').format(
            short_name(paths[key]) if key in paths else key)
        rows.append(dict(label=label, score=scores.get(key, scores[
            'LOGO-CAP']), **metric_cells(metrics[key]), **timed[key]))

    val_ds = cfgs['LOGO-CAP'].test_dataloader.dataset
    budget = (f'{args.epochs} epochs each' if args.epochs is not None else
              'the configs\' schedule')
    notes = [
        time_ratio_sentence(timed['LOGO-CAP']['ms'], timed['DEKR']['ms'],
                            'Full models'),
        f'Val set: {osp.join(val_ds.get("data_root", ""), val_ds.ann_file)}, '
        f'{num_val} images (same CocoMetric for all rows).',
        'Training: ' + ('given checkpoints' if args.logocap_checkpoint
                        and args.dekr_checkpoint else budget) + ' ('
        + '; '.join(budgets) + ').',
        f'Timing: {args.device}, {torch.get_num_threads()} threads, flip test '
        f'on, {num_timed} val images, median of {args.repeats} repeats '
        f'after {args.warmup} warm-up runs; model.test_step only (image '
        'reading/resizing excluded).',
        'Checkpoints: ' + ', '.join(f'{k}: {v}' for k, v in ckpts.items()),
    ]
    if config_note:
        notes.append(config_note)
    note = workload_note({k: timed[k]['proposals'] for k in ckpts},
                         {'DEKR': True, 'LOGO-CAP': True})
    if note:
        notes.insert(1, 'Workload: ' + note)
    table = markdown_table(RESULT_COLUMNS, rows) + '\n\n' + '\n'.join(notes)
    print('\n' + table)
    write_report(table, args.out)
    return table

