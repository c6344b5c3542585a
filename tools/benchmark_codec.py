#!/usr/bin/env python
"""Encode cost of LOGOCAPLabel vs MMPose's SPR (DEKR's codec), one run.

    python tools/benchmark_codec.py --persons 10 --repeats 9

Random persons (17 keypoints) in a 512x512 input, 128x128 heatmaps; prints
the median milliseconds of both and their ratio
(``logocap_mmpose.analysis.codec``).
"""
import logocap_mmpose  # noqa: F401  (registers the codec)
from logocap_mmpose.analysis import tool_parser
from logocap_mmpose.analysis.codec import codec_encode_report


def main(argv=None) -> str:
    parser = tool_parser(__doc__.split('\n')[0])
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random keypoints (default: 0)')
    parser.add_argument(
        '--persons', type=int, default=10,
        help='random persons (17 keypoints each) per encoded image '
        '(default: 10)')
    parser.add_argument(
        '--repeats', type=int, default=9,
        help='encodes per codec; the median counts (default: 9)')
    args = parser.parse_args(argv)
    report = codec_encode_report(args.persons, args.repeats, args.seed)
    print(report)
    return report


if __name__ == '__main__':
    main()
