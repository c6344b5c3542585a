#!/usr/bin/env python
"""Side-by-side comparison of LOGO-CAP and DEKR: train (or load), evaluate
and time both on the same data; the command line over
``logocap_mmpose/analysis/compare.py``, whose docstring says what is
compared and how.

Examples::

    # train both for 20 epochs on coco-mini, then compare
    python tools/compare_with_dekr.py \
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \
        configs/logocap/coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py \
        --data-root ../shared/data/coco-mini --epochs 20 --out table.md

    # compare given checkpoints
    python tools/compare_with_dekr.py LOGOCAP_CFG DEKR_CFG \
        --logocap-checkpoint a.pth --dekr-checkpoint b.pth

    # released weights: the authors' W32 (converted) and MMPose's DEKR-W32
    # with MMPose's own config (``package::path`` names a packaged config)
    python tools/compare_with_dekr.py \
        configs/logocap/coco/logocap_hrnet-w32_official_coco-512x512.py \
        mmpose::body_2d_keypoint/dekr/coco/dekr_hrnet-w32_8xb10-140e_coco-512x512.py \
        --logocap-checkpoint logocap_w32_converted.pth \
        --dekr-checkpoint dekr_hrnet-w32_8xb10-140e_coco-512x512_ac7c17bf-20221228.pth \
        --data-root data/coco

With both checkpoints given the configs need not match (each model is
evaluated with the config it was released with; what differs is listed
under the table). ``proposals/image``: LOGO-CAP's refined proposals, DEKR's
instances decoded before pose NMS.
"""

from logocap_mmpose.analysis.compare import run_comparison
from logocap_mmpose.analysis import parse_tool_args


def parse_args(argv=None):
    from logocap_mmpose.analysis import (
        add_config_arguments, add_timing_arguments, comparison_parser)
    parser = comparison_parser(
        'Train (or load), evaluate and time LOGO-CAP and DEKR '
        'from matching configs; print one markdown table.')
    parser.add_argument('--logocap-checkpoint',
                        help='skip training LOGO-CAP, use these weights')
    parser.add_argument('--dekr-checkpoint',
                        help='skip training DEKR, use these weights')
    parser.add_argument(
        '--epochs', type=int,
        help='training budget for both (default: the configs\' epochs)')
    parser.add_argument(
        '--work-dir',
        help='where checkpoints, logs and predictions go (default: '
        'work_dirs/compare_<LOGO-CAP config name>)')
    parser.add_argument(
        '--data-root', help='COCO-layout folder for train/val in both '
        'configs, e.g. ../shared/data/coco-mini')
    parser.add_argument(
        '--ablation-modes', nargs='*', default=['baseline'],
        help='extra LOGO-CAP test_cfg.mode rows on the same weights '
        '(baseline, kems_only, kams_only)')
    parser.add_argument('--time-images', type=int, default=10,
                        help='val images timed (0: all)')
    add_timing_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument('--allow-mismatch', action='store_true',
                        help='compare even if the configs do not match')
    parser.add_argument('--out', help='also write the table to this file')
    return parse_tool_args(parser, argv)


def main(argv=None) -> str:
    return run_comparison(parse_args(argv))


if __name__ == '__main__':
    main()
