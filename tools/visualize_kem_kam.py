#!/usr/bin/env python
"""Draw LOGO-CAP's stages for one person of one image (the paper's Fig. 1).

For the chosen proposal (``--person``: 0 is the highest centre score, before
the pose NMS) and keypoints it draws, in one PNG: the initial pose, the local
KEM grid, the KAM, the global KEM window before and after the contextual
adaptation, and the final keypoint. The image goes through the config's test
pipeline; everything is drawn in input pixels. The drawing lives in
``logocap_mmpose/analysis/kem_kam.py``.

Example (a checkpoint of ``tools/fit_check.py``, one of its fitted images)::

    python tools/visualize_kem_kam.py \\
        ../shared/data/coco-mini/train2017/000000000241.jpg \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        work_dirs/fit/epoch_100.pth --person 0 \\
        --keypoints left_wrist right_wrist 0 --out kem_kam.png
"""
import os
import os.path as osp



def parse_args(argv=None):
    from logocap_mmpose.analysis import tool_parser
    parser = tool_parser(
        'Draw the initial pose, local KEM, KAM, global KEM '
        'before / after adaptation and final keypoints of one person.',
        img='image file',
        config='LOGO-CAP config file',
        checkpoint="checkpoint file ('none': random weights, to try "
        'the tool)')
    parser.add_argument(
        '--person', type=int, default=0,
        help='proposal index, by centre score (0: the highest)')
    parser.add_argument(
        '--keypoints', nargs='+',
        help='keypoint indices or names (default: the 3 that the refinement '
        'moved most)')
    parser.add_argument('--out', default='kem_kam.png', help='output PNG')
    from logocap_mmpose.analysis import (
        add_config_arguments, add_device_arguments)
    add_device_arguments(parser, threads=False)
    add_config_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.img):
        raise FileNotFoundError(f'image {args.img} not found')
    from mmengine.registry import init_default_scope

    import logocap_mmpose  # noqa: F401  (registers the plugin)
    from logocap_mmpose.analysis import (build_model, load_config,
                                         prepare_batches)
    from logocap_mmpose.analysis.kem_kam import visualize_kem_kam

    init_default_scope('mmpose')
    cfg = load_config(args.config, cfg_options=args.cfg_options)
    if cfg.model.head.get('type') != 'LOGOCAPHead':
        raise ValueError(f'{args.config} is not a LOGO-CAP config (head '
                         f"{cfg.model.head.get('type')})")
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    model = build_model(cfg, checkpoint, args.device)
    batch = prepare_batches(model, [args.img])[0]
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    summary = visualize_kem_kam(
        model, batch, args.person, args.keypoints, args.out,
        title=f'{osp.basename(args.img)}, {osp.basename(args.config)}')
    stages = summary['stages']
    names = [stages['keypoint_names'][k] for k in summary['keypoints']]
    print(f"person {args.person} of {stages['num_proposals']}; keypoints "
          f"{', '.join(names)}; {summary['num_panels']} panels -> "
          f'{args.out}')
    summary['figure'].clf()
    return summary


if __name__ == '__main__':
    main()
