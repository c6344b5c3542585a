#!/usr/bin/env python
"""Encode cost of LOGOCAPLabel vs MMPose's SPR (DEKR's codec), one run.

    python tools/benchmark_codec.py --persons 10 --repeats 9

Random persons (17 keypoints) in a 512x512 input, 128x128 heatmaps; prints
the median milliseconds of both and their ratio.
"""
import argparse

import numpy as np

import logocap_mmpose  # noqa: F401
from logocap_mmpose.utils.tooling import median_seconds
from mmpose.codecs import SPR
from mmpose.registry import KEYPOINT_CODECS


def median_ms(fn, repeats: int) -> float:
    return 1e3 * median_seconds(fn, repeats)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--persons', type=int, default=10,
        help='random persons (17 keypoints each) per encoded image '
        '(default: 10)')
    parser.add_argument(
        '--repeats', type=int, default=9,
        help='encodes per codec; the median counts (default: 9)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='seed of the random keypoints (default: 0)')
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    kpts = rng.uniform(0, 511, (args.persons, 17, 2)).astype(np.float32)
    vis = np.ones((args.persons, 17), np.float32)
    area = np.full(args.persons, 5000.0, np.float32)
    ours = KEYPOINT_CODECS.build(
        dict(type='LOGOCAPLabel', input_size=(512, 512),
             heatmap_size=(128, 128)))
    spr = SPR(input_size=(512, 512), heatmap_size=(128, 128), sigma=(4, 2),
              minimal_diagonal_length=32**0.5,
              generate_keypoint_heatmaps=True)
    t_ours = median_ms(lambda: ours.encode(kpts, vis, area=area),
                       args.repeats)
    t_spr = median_ms(lambda: spr.encode(kpts, vis), args.repeats)
    print(f'| codec | ms / encode ({args.persons} persons) |\n|---|---|\n'
          f'| LOGOCAPLabel | {t_ours:.1f} |\n| SPR (DEKR) | {t_spr:.1f} |\n'
          f"\nLOGOCAPLabel takes {t_ours / t_spr:.3f}x SPR's time per "
          'encode.')


if __name__ == '__main__':
    main()
