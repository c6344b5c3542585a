#!/usr/bin/env python
"""The paper's Fig. 2 analysis: COCO AP of the centre-offset (initial) poses
and of the oracle that moves each initial keypoint to the best cell of an
s x s local window (the head's local KEM grid) using the ground truth. A
second oracle keeps the initial keypoints and scores each pose by its true
OKS (the best ranking a pose-quality score could give); ``--kam-scores``
scores the model's rows with ``test_cfg.kam_score`` settings beside it. A
second table gives, per row, the Spearman correlation of the pose scores
with the poses' true OKS.

It runs the model in ``test_cfg.mode='baseline'`` on the config's test set (or
on ``--data-root`` / ``--ann-file``), scores the initial poses and each oracle
with the config's evaluator (``CocoMetric``), prints one markdown table and
saves it with a plot (PNG) and the raw metrics (JSON) in ``--out-dir``. The
computation lives in ``logocap_mmpose/evaluation/upper_bound.py``.

Example (coco-mini val, a checkpoint of ``tools/fit_check.py``)::

    python tools/upper_bound.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        work_dirs/fit/epoch_100.pth --data-root ../shared/data/coco-mini \\
        --out-dir work_dirs/upper_bound
"""
import json
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

from logocap_mmpose.models.refinement import MODES
from logocap_mmpose.analysis import (labelled_image_ids, parse_tool_args,
                                     write_coco_subset)

DEFAULT_WINDOWS = [1, 3, 5, 7, 9, 11]


def parse_args(argv=None):
    from logocap_mmpose.analysis import tool_parser
    parser = tool_parser(
        'AP of the initial (centre-offset) poses and of their '
        's x s local-window oracles (the paper\'s Fig. 2 upper bound).',
        config='LOGO-CAP config file',
        checkpoint='checkpoint file')
    parser.add_argument(
        '--data-root', help='COCO-style root with annotations/ and the '
        "image folder (default: the config's test set)")
    parser.add_argument(
        '--ann-file', help="annotation file, relative to --data-root "
        "(default: the config's test annotation file)")
    parser.add_argument(
        '--img-prefix', help="image folder, relative to --data-root "
        "(default: the config's)")
    parser.add_argument(
        '--labelled-only', action='store_true',
        help='score only the images that hold a person with labelled '
        'keypoints (the paper\'s 2346 COCO val2017 images)')
    parser.add_argument(
        '--num-images', type=int,
        help='score only the first N images (by id; after --labelled-only)')
    parser.add_argument(
        '--windows', type=int, nargs='+', default=DEFAULT_WINDOWS,
        help='window sizes s (odd, at most the head\'s local_kem_size)')
    parser.add_argument(
        '--modes', nargs='*', default=['full'],
        choices=MODES,
        help='test_cfg.mode values of the model to score as well (none: '
        'pass the flag alone)')
    parser.add_argument(
        '--kam-scores', nargs='+', default=[],
        choices=['none', 'product', 'replace'],
        help='score each --modes row with these test_cfg.kam_score values '
        "(none: the heatmap score; default: the config's own setting)")
    parser.add_argument(
        '--pose-scores', nargs='+', default=[],
        choices=['heatmap', 'quality', 'product'],
        help='score each --modes row with these test_cfg.pose_score values '
        "(quality, product: the learned pose-quality score of a head with "
        "quality_cfg; default: the config's own setting)")
    parser.add_argument('--out-dir', default='work_dirs/upper_bound',
                        help='upper_bound.md / .png / .json go here')
    from logocap_mmpose.analysis import (
        add_config_arguments, add_device_arguments)
    add_device_arguments(parser, threads=False)
    add_config_arguments(parser)
    return parse_tool_args(parser, argv)


def subset_annotations(src: str, dst: str, labelled_only: bool,
                       num_images: Optional[int]) -> List[int]:
    """Write the chosen images of ``src`` (all their annotations) to
    ``dst`` and return their ids (sorted)."""
    with open(src) as f:
        coco = json.load(f)
    ids = sorted(im['id'] for im in coco['images'])
    if labelled_only:
        labelled = set(labelled_image_ids(coco))
        ids = [i for i in ids if i in labelled]
    if num_images is not None:
        ids = ids[:num_images]
    if not ids:
        raise ValueError(f'no image of {src} is left to score')
    write_coco_subset(coco, ids, dst)
    return ids


def analysis_config(args) -> Config:
    """The config with its test set (and evaluator) set by the options."""
    cfg = Config.fromfile(args.config)
    dataset = cfg.test_dataloader.dataset
    root = args.data_root if args.data_root else dataset.get('data_root', '')
    ann_file = args.ann_file or dataset.ann_file
    dataset.data_root = osp.abspath(root) if root else root
    if args.img_prefix:
        dataset.data_prefix = dict(img=args.img_prefix)
    ann_path = ann_file if osp.isabs(ann_file) else osp.join(
        dataset.data_root, ann_file)
    if not osp.exists(ann_path):
        raise FileNotFoundError(f'annotation file {ann_path} not found (set '
                                '--data-root / --ann-file)')
    if args.labelled_only or args.num_images is not None:
        os.makedirs(args.out_dir, exist_ok=True)
        subset = osp.abspath(osp.join(args.out_dir, 'annotations.json'))
        subset_annotations(ann_path, subset, args.labelled_only,
                           args.num_images)
        ann_path = subset
    dataset.ann_file = osp.abspath(ann_path)
    dataset.test_mode = True
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict):
        cfg.test_evaluator = dict(evaluator, ann_file=dataset.ann_file)
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv=None) -> str:
    args = parse_args(argv)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import logocap_mmpose  # noqa: F401  (registers the plugin)
    from logocap_mmpose.analysis.upper_bound import (correlation_table,
                                                     evaluate_upper_bound,
                                                     upper_bound_table,
                                                     plot_upper_bound)
    from mmpose.apis import init_model

    init_default_scope('mmpose')
    cfg = analysis_config(args)
    model = init_model(cfg, args.checkpoint, device=args.device)
    model.eval()
    dataloader = Runner.build_dataloader(cfg.test_dataloader)
    kam_scores = [None if k == 'none' else k for k in args.kam_scores]
    result = evaluate_upper_bound(model, dataloader, cfg.test_evaluator,
                                  args.windows, args.modes, progress=True,
                                  kam_scores=kam_scores,
                                  pose_scores=args.pose_scores)
    table = upper_bound_table(result)
    n = len(dataloader.dataset)
    note = (f'{n} images of {cfg.test_dataloader.dataset.ann_file}; '
            f'checkpoint {args.checkpoint}')
    ranking = correlation_table(result)
    print(table, ranking, note, sep='\n\n')
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'upper_bound.md'), 'w') as f:
        f.write('\n\n'.join([table, ranking, note]) + '\n')
    with open(osp.join(args.out_dir, 'upper_bound.json'), 'w') as f:
        json.dump(
            dict(
                initial=result['initial'],
                oks_scored=result['oks_scored'],
                oracle={str(s): m
                        for s, m in result['oracle'].items()},
                modes=result['modes'],
                modes_oks_scored=result['modes_oks_scored'],
                score_oks_spearman=result['score_oks_spearman'],
                images=n), f, indent=1)
    plot_upper_bound(result, osp.join(args.out_dir, 'upper_bound.png'),
                     title=f'{osp.basename(args.config)}, {n} images')
    return table


if __name__ == '__main__':
    main()
