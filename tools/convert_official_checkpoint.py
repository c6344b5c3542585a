"""Convert the authors' released LOGO-CAP checkpoint into an MMPose one.

    python tools/convert_official_checkpoint.py \
        logocap-hrnet-w32-coco.pth.tar logocap_hrnet-w32_official_coco.pth
    mim test mmpose \
        configs/logocap/coco/logocap_hrnet-w32_official_coco-512x512.py \
        -C logocap_hrnet-w32_official_coco.pth

The architecture (HRNet-W32 or W48) is read from the weights; ``--arch``
checks it. ``--config`` names the config whose model must load the result
(default: the official config of that architecture). The logic lives in
``logocap_mmpose/utils/official_checkpoint.py``.
"""
import sys

import logocap_mmpose  # noqa: F401  (registers the plugin)
from logocap_mmpose.utils.official_checkpoint import (
    OfficialCheckpointError, convert_official_checkpoint)


def parse_args(argv=None):
    from logocap_mmpose.analysis import tool_parser
    parser = tool_parser(
        "Convert the authors' LOGO-CAP checkpoint "
        '(logocap-hrnet-w{32,48}-coco.pth.tar) into an MMPose checkpoint',
        src="the authors' checkpoint",
        dst='output MMEngine checkpoint (.pth)')
    parser.add_argument('--arch', choices=['w32', 'w48'],
                        help='expected HRNet width (checked; inferred from '
                        'the weights when omitted)')
    parser.add_argument('--config',
                        help='config whose model must load the result '
                        '(default: the official config of the arch)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        out = convert_official_checkpoint(args.src, args.dst, args.arch,
                                          args.config)
    except OfficialCheckpointError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'HRNet-{out["arch"].upper()}: {len(out["state_dict"])} tensors '
          f'checked against {out["config"]}; saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
