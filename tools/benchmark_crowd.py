#!/usr/bin/env python
"""Inference time against the number of people per image: LOGO-CAP and
DEKR (bottom-up) beside a top-down model; the command line over
``logocap_mmpose/analysis/crowd.py``, whose docstring says how the images
are made and what each model gets.

Example (random weights; the top-down model gets the pasted boxes as
ground-truth boxes; ``--detector`` adds a person detector's time beside it)::

    python tools/benchmark_crowd.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        configs/logocap/coco/logocap_hrnet-w32_4xb12-140e_coco-512x512.py \\
        configs/logocap/coco/dekr_hrnet-w32_4xb12-140e_coco-512x512.py \\
        --topdown mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py \\
        --detector mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \\
        --data-root ../shared/data/coco-mini --out-dir work_dirs/crowd
"""
import os
import os.path as osp

import torch

from logocap_mmpose.analysis.crowd import (add_detector_columns, crowd_images,
                                           crowd_plot, crowd_table, time_crowd,
                                           time_detector)
from logocap_mmpose.analysis import (build_model, load_config, parse_tool_args,
                                     short_name, tool_parser, write_report)


def parse_args(argv=None):
    parser = tool_parser(
        'ms/image against people per image, bottom-up models beside a '
        'top-down one (ground-truth boxes).',
        configs=dict(nargs='+', help='bottom-up configs (LOGO-CAP, DEKR)'))
    parser.add_argument('--topdown', default=None,
                        help='a top-down config (e.g. an mmpose:: path)')
    parser.add_argument(
        '--detector', default=None,
        help='MMDetection config of a person detector to time on the same '
        'composites (random weights), added to the top-down model\'s '
        'time in its own column, e.g. '
        'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    parser.add_argument('--data-root', required=True,
                        help='COCO-layout folder the person crops come '
                        'from, e.g. ../shared/data/coco-mini')
    parser.add_argument('--ann-file',
                        default='annotations/person_keypoints_val2017.json',
                        help='annotation file under --data-root')
    parser.add_argument('--img-dir', default='val2017',
                        help='image folder under --data-root')
    parser.add_argument('--people', type=int, nargs='+',
                        default=[1, 2, 4, 8, 16, 30],
                        help='people per image (default: 1 2 4 8 16 30)')
    parser.add_argument('--canvas', type=int, nargs=2, default=[640, 480],
                        metavar=('W', 'H'),
                        help='composite size (default: 640 480)')
    from logocap_mmpose.analysis import add_timing_arguments
    add_timing_arguments(parser)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights (default: 0)')
    parser.add_argument('--out-dir', default='work_dirs/crowd',
                        help='composites, crowd.md and crowd.png go here')
    return parse_tool_args(parser, argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    images = crowd_images(args.data_root, args.people, tuple(args.canvas),
                          osp.join(args.out_dir, 'images'), args.ann_file,
                          args.img_dir)
    models = {}
    for path, topdown in [(c, False) for c in args.configs] + (
            [(args.topdown, True)] if args.topdown else []):
        torch.manual_seed(args.seed)
        name = short_name(path) + (' (GT boxes)' if topdown else '')
        models[name] = (build_model(load_config(path), None, args.device),
                        topdown)
    rows = time_crowd(models, images, args.warmup, args.repeats, args.device)
    names = list(models)
    detector = ''
    if args.detector:
        det = short_name(args.detector)
        times = time_detector(args.detector, images, args.warmup,
                              args.repeats, args.device, args.seed)
        topdown = [n for n, (_, is_topdown) in models.items() if is_topdown]
        names += add_detector_columns(rows, det, times, topdown)
        detector = (f'; detector {det} (random weights) timed on the same '
                    'composites')
    setting = (f'{args.device}, {torch.get_num_threads()} threads, random '
               f'weights, flip test as configured, {args.canvas[0]}x'
               f'{args.canvas[1]} composites of coco-mini persons, median of '
               f'{args.repeats} after {args.warmup} warm-up; bottom-up: '
               'exactly one proposal per person; top-down: ground-truth '
               'boxes' + (detector or ', no detector cost'))
    text = '\n'.join([crowd_table(rows, names), '', setting])
    os.makedirs(args.out_dir, exist_ok=True)
    crowd_plot(rows, names, osp.join(args.out_dir, 'crowd.png'),
               'ms/image against people per image')
    write_report(text, osp.join(args.out_dir, 'crowd.md'))
    print(text)
    return text


if __name__ == '__main__':
    main()
