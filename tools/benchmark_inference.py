#!/usr/bin/env python
"""LOGO-CAP vs DEKR inference time, and LOGO-CAP's stage breakdown: the
command line over ``logocap_mmpose/analysis/benchmark.py``, whose docstring
says what is timed and how.

Example (CPU-sized pair on coco-mini, random weights when no checkpoint)::

    python tools/benchmark_inference.py \
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \
        configs/logocap/coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py \
        --data-root ../shared/data/coco-mini --num-images 10
"""

from logocap_mmpose.analysis.benchmark import run_benchmark
from logocap_mmpose.analysis import parse_tool_args


def parse_args(argv=None):
    from logocap_mmpose.analysis import (
        add_config_arguments, add_timing_arguments, comparison_parser)
    parser = comparison_parser(
        'LOGO-CAP vs DEKR inference time and LOGO-CAP stage '
        'breakdown (paper Table 4), measured in one run.')
    parser.add_argument(
        '--logocap-checkpoint',
        help='LOGO-CAP weights (default: random weights, timing only)')
    parser.add_argument(
        '--dekr-checkpoint',
        help='DEKR weights (default: random weights, timing only)')
    parser.add_argument(
        '--data-root',
        help='COCO-layout folder whose val images are timed (overrides the '
        'configs\' data_root), e.g. ../shared/data/coco-mini')
    parser.add_argument(
        '--img-dir', help='time these images (*.jpg) instead of the val set')
    parser.add_argument(
        '--num-images', type=int, default=10,
        help='number of images timed, the first by image id (default: 10; '
        '0: all)')
    add_timing_arguments(parser)
    add_config_arguments(parser, seed='the random weights of a model without a checkpoint')
    parser.add_argument(
        '--proposals', type=int, nargs='+', default=[1, 30],
        help='LOGO-CAP proposal counts of the stage breakdown (default: 1 '
        '30)')
    parser.add_argument(
        '--force-proposals', type=int, default=None,
        help='also time both models with exactly this many proposals per '
        'image (LOGO-CAP refines them, DEKR decodes them; decoding '
        'thresholds removed), i.e. equal work (default: the largest '
        '--proposals value; 0: skip)')
    parser.add_argument(
        '--skip-changes', action='store_true',
        help='leave out the table that adds the speed changes one at a time '
        '(one flip pass, BatchNorm folding, duplicates dropped before '
        'refining)')
    parser.add_argument('--out', help='also write the report to this file')
    parser.add_argument(
        '--skip-onnx', action='store_true',
        help='do not export LOGO-CAP to ONNX and time it in onnxruntime '
        '(timed by default where onnxruntime is installed, on the CPU)')
    return parse_tool_args(parser, argv)


def main(argv=None) -> str:
    return run_benchmark(parse_args(argv))


if __name__ == '__main__':
    main()
