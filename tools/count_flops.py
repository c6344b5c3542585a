#!/usr/bin/env python
"""FLOPs of a LOGO-CAP model with the refinement, as rows of the paper's
Table 4 (backbone, heads, local KEMs, local KAMs, global KAMs, decoding) at
1 and 30 proposals; what is counted and how: ``logocap_mmpose/analysis/
flops.py`` (this file is its command line).

Example::

    python tools/count_flops.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        --proposals 1 30
"""
from typing import Optional, Sequence, Tuple

import torch.nn as nn

from logocap_mmpose.analysis.flops import (count_flops, default_input_shape,
                                           render)
from logocap_mmpose.analysis import build_model, load_config


def parse_args(argv=None):
    from logocap_mmpose.analysis import (
        add_config_arguments, add_device_arguments, tool_parser)
    parser = tool_parser(
        'FLOPs of a LOGO-CAP model including the refinement '
        '(paper Table 4 rows: backbone, heads, refinement at N proposals, '
        'total).',
        config='config of a LOGO-CAP model')
    parser.add_argument(
        '--input-shape', type=int, nargs='+', default=None,
        help='input H W (one value: square; default: the codec input_size)')
    parser.add_argument(
        '--proposals', type=int, nargs='+', default=[1, 30],
        help='proposal counts to count the refinement at (default: 1 30)')
    parser.add_argument(
        '--flip-test', action='store_true',
        help='count the dense network twice (image and flip), as a flip '
        'test runs it (default: one pass, as get_flops)')
    add_device_arguments(parser, threads=False)
    add_config_arguments(parser)
    return parser.parse_args(argv)


def input_shape_arg(values: Optional[Sequence[int]], model: nn.Module
                    ) -> Tuple[int, int]:
    if not values:
        return default_input_shape(model)
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise SystemExit('--input-shape takes H W or one side')


def main(argv=None) -> str:
    args = parse_args(argv)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    cfg = load_config(args.config, cfg_options=args.cfg_options)
    model = build_model(cfg, None, args.device)
    report = count_flops(model, input_shape_arg(args.input_shape, model),
                         args.proposals, args.flip_test)
    text = render(report, args.config, model.head.adaptation_impl)
    print(text)
    return text


if __name__ == '__main__':
    main()
