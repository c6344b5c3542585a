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


from logocap_mmpose.analysis.fit import (EXTRA_ROWS, MODES, QUALITY_ROWS,
                                         run_fit_check)
from logocap_mmpose.analysis import parse_tool_args


def parse_args():
    from logocap_mmpose.analysis import tool_parser
    parser = tool_parser(
        'Train a LOGO-CAP config on a few images and score '
        'every test_cfg.mode on them (the ablation-fit benchmark).',
        config='LOGO-CAP config file')
    parser.add_argument('--img-prefix', default='train2017/',
                        help='image folder, relative to --data-root')
    parser.add_argument(
        '--data-root', default='../shared/data/coco-mini',
        help='COCO-style root with annotations/ and the image folder')
    parser.add_argument(
        '--ann-file', default='annotations/person_keypoints_train2017.json',
        help='annotation file, relative to --data-root')
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
        choices=MODES + tuple(EXTRA_ROWS) + tuple(QUALITY_ROWS),
        help='test_cfg.mode values to score; kams_only_top2 is kams_only '
        "with head.adaptation_cfg.kams_only_decode='top2', full_kam_product "
        "and full_kam_replace are full with test_cfg.kam_score='product' / "
        "'replace' (pose scores from the KAMs); full_quality and "
        "full_quality_product are full with test_cfg.pose_score='quality' / "
        "'product' (the learned score of a head with quality_cfg)")
    parser.add_argument('--work-dir', default='work_dirs/fit_check',
                        help='logs, the subset annotation file and the '
                        'final checkpoint go here')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    from logocap_mmpose.analysis import add_config_arguments
    add_config_arguments(parser)
    return parse_tool_args(parser)


def main():
    return run_fit_check(parse_args())


if __name__ == '__main__':
    main()
