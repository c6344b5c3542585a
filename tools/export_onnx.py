#!/usr/bin/env python
"""Export LOGO-CAP to ONNX as two graphs (by default both):

1. ``OUT``, the dense network: backbone, neck and the head's heatmap, offset
   and embedding branches. Fixed input height and width (``--input-shape``,
   default: the codec's input size), free batch size.
2. ``--refinement-out`` (default ``OUT`` with ``_refinement`` before the
   extension), the refinement of ``test_cfg.mode`` (``--mode``): local KEM
   sampling, message passing (CMP, Attentive Norm), global KEMs, contextual
   adaptation and top-2 decoding. Inputs: the flip-fused ``heatmaps``
   (B, K+1, h, w), ``embedding`` (B, C, h, w) and the initial poses
   ``initial`` (B, N, K, 2); outputs ``keypoints`` (B, N, K, 2) and ``scores``
   (B, N, K). B, N, h and w are free. Needs opset >= 16 (GridSample).

What stays in Python / PyTorch between and after them: data preprocessing
(unless ``--with-preprocess``), the input flip and the flip fusion of the
maps, the proposal decoding (centre NMS, ``decoder.decode_batch``), the
scores times the centre scores, pose NMS and packing, and the mapping back
to image pixels: ``logocap_mmpose.deploy.ONNXRuntimePipeline`` (both graphs)
or ``onnx_inference`` without a refinement graph (``--dense-only``: the
refinement in PyTorch). With onnxruntime installed the tool checks each
graph against PyTorch on a random input and prints the largest differences.

``--one-graph`` exports instead the whole model as ONE graph, ``OUT``:
input the resized, padded images (B, 3, H, W) (preprocessed, or raw BGR
with ``--with-preprocess``), outputs ``keypoints`` (B, M, K, 2) in input
pixels, ``keypoint_scores`` (B, M, K), ``pose_scores`` (B, M) and
``num_people`` (B,), the poses best first; flip test and fusion, proposal
decoding, the refinement of ``test_cfg.mode`` and the pose NMS inside, the
config's ``test_cfg`` fixed in the graph
(``logocap_mmpose.deploy.one_graph``; run it with ``ONNXOneGraph`` /
``one_graph_inference``). With onnxruntime the tool checks it against
``OneGraphNetwork`` in PyTorch on a random input.

Needs the ``onnx`` extra (``pip install -e .[onnx]``)::

    python tools/export_onnx.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        work_dirs/fit/epoch_100.pth logocap_effnetlite0_256x256.onnx \\
        --input-shape 256 256 --with-preprocess
    # -> logocap_effnetlite0_256x256.onnx and
    #    logocap_effnetlite0_256x256_refinement.onnx
"""
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config


def parse_args(argv=None):
    from logocap_mmpose.models.refinement import MODES
    from logocap_mmpose.analysis import tool_parser
    parser = tool_parser(
        'Export a LOGO-CAP model to ONNX: the dense network and '
        '(unless --dense-only) the refinement. Proposal decoding, flip fusion '
        'and pose NMS stay in Python (logocap_mmpose.deploy.'
        'ONNXRuntimePipeline).',
        config='LOGO-CAP config file',
        checkpoint="checkpoint file ('none': random weights)",
        out='output .onnx file of the dense network '
                        '(with --one-graph: of the whole model)')
    parser.add_argument(
        '--refinement-out',
        help='output .onnx file of the refinement (default: OUT with '
        '"_refinement" before the extension)')
    parser.add_argument(
        '--dense-only', action='store_true',
        help='export only the dense network (the refinement then runs in '
        'PyTorch: logocap_mmpose.deploy.onnx_inference)')
    parser.add_argument(
        '--one-graph', action='store_true',
        help='export the whole model (flip, decoding, refinement, pose NMS) '
        'as one graph, OUT, with the config\'s test_cfg (--mode overrides '
        'its mode): images in, poses out (logocap_mmpose.deploy.one_graph)')
    parser.add_argument(
        '--mode', choices=MODES,
        help="refinement mode of the second graph (default: the config's "
        "test_cfg.mode, else 'full')")
    parser.add_argument(
        '--input-shape', type=int, nargs=2, metavar=('H', 'W'),
        help="input height and width (default: the codec's input_size)")
    parser.add_argument(
        '--with-preprocess', action='store_true',
        help='put the data preprocessor\'s BGR->RGB and mean/std '
        'normalisation into the graph (it then takes raw BGR images, 0-255)')
    parser.add_argument('--static-batch', action='store_true',
                        help='fix the batch size to 1 (default: free)')
    parser.add_argument('--opset', type=int, default=17,
                        help='ONNX opset (the refinement needs >= 16)')
    parser.add_argument('--no-check', action='store_true',
                        help='skip the onnxruntime checks after export')
    from logocap_mmpose.analysis import add_config_arguments
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    from logocap_mmpose.deploy import missing_reason
    missing = missing_reason('tools/export_onnx.py', ['onnx'])
    if missing:  # before the model is built
        parser.error(missing)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import logocap_mmpose  # noqa: F401  (registers the plugin)
    from logocap_mmpose.deploy import (DenseNetwork, export_onnx,
                                       export_refinement_onnx,
                                       preprocess_from_config)
    from mmpose.apis import init_model

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    if checkpoint is None:  # random weights: no pretrained backbone either
        cfg.model.backbone.pop('init_cfg', None)
    model = init_model(cfg, checkpoint, device='cpu')
    model.eval()
    if args.input_shape:
        shape = tuple(args.input_shape)
    else:
        w, h = cfg.codec.input_size if 'codec' in cfg else \
            cfg.model.head.decoder.input_size
        shape = (h, w)
    preprocess = preprocess_from_config(cfg) if args.with_preprocess else None
    if args.one_graph:
        return export_whole(model, args, shape, preprocess)
    export_onnx(model, args.out, shape, preprocess,
                dynamic_batch=not args.static_batch,
                opset_version=args.opset)
    report = dict(out=osp.abspath(args.out), input_shape=shape,
                  preprocess=preprocess)
    print(f'wrote {report["out"]}: input (B, 3, {shape[0]}, {shape[1]})'
          f'{" raw BGR 0-255" if preprocess else " preprocessed"}; outputs '
          'heatmaps, displacements, embedding')
    if not args.dense_only:
        refinement_out = args.refinement_out or \
            '{}_refinement{}'.format(*osp.splitext(args.out))
        mode = args.mode or model.test_cfg.get('mode', 'full')
        stride = float(model.head.stride)
        export_refinement_onnx(
            model, refinement_out, mode,
            tuple(max(1, int(v // stride)) for v in shape), args.opset)
        report['refinement_out'] = osp.abspath(refinement_out)
        report['mode'] = mode
        print(f'wrote {report["refinement_out"]}: refinement ({mode}), '
              'inputs heatmaps (B, K+1, h, w), embedding (B, C, h, w), '
              'initial (B, N, K, 2); outputs keypoints (B, N, K, 2), scores '
              '(B, N, K); B, N, h, w free. In Python: flip fusion, proposal '
              'decoding, pose NMS (logocap_mmpose.deploy.'
              'ONNXRuntimePipeline)')
    from logocap_mmpose.deploy import ONNXDenseNetwork, ONNXRefinement
    outputs = None if args.no_check else both_outputs(
        lambda: ONNXDenseNetwork(args.out), DenseNetwork(model, preprocess),
        shape, preprocess)
    if outputs is None:
        return report
    expected, got = outputs
    diffs, scales = {}, {}
    for name, e, g in zip(('heatmaps', 'displacements', 'embedding'),
                          expected, got):
        e = e.numpy()
        diffs[name] = float(np.abs(e - g).max())
        scales[name] = float(np.abs(e).max())
        print(f'{name}: shape {tuple(g.shape)}, max |onnxruntime - torch| '
              f'{diffs[name]:.3g} (max |torch| {np.abs(e).max():.3g})')
    report['max_abs_diff'], report['max_abs'] = diffs, scales
    if 'refinement_out' in report:
        report['refinement_check'] = check_refinement(
            model, ONNXRefinement(report['refinement_out']), expected)
    return report


def random_input(shape, preprocess) -> torch.Tensor:
    """The seeded (1, 3, H, W) input both checks compare on: raw BGR 0-255
    with the normalisation in the graph, else the normalised range."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, *shape)
    return x * 255 if preprocess else x * 2 - 1


def both_outputs(open_graph, network, shape, preprocess):
    """PyTorch's ``network`` and the exported graph (``open_graph()``) on
    the seeded random input, or None (printed) without onnxruntime."""
    try:
        graph = open_graph()
    except ImportError as exc:  # onnxruntime missing (one line)
        print(f'no onnxruntime check: {exc}')
        return None
    x = random_input(shape, preprocess)
    with torch.no_grad():
        expected = network(x)
    return expected, graph(x.numpy())


def export_whole(model, args, shape, preprocess) -> dict:
    """``--one-graph``: export the one graph and, unless ``--no-check``,
    compare onnxruntime with ``OneGraphNetwork`` on a random input."""
    from logocap_mmpose.deploy import OneGraphNetwork, export_one_graph
    test_cfg = dict(model.test_cfg)
    if args.mode:
        test_cfg['mode'] = args.mode
    export_one_graph(model, args.out, shape, preprocess, test_cfg,
                     opset_version=args.opset)
    report = dict(out=osp.abspath(args.out), input_shape=shape,
                  preprocess=preprocess, mode=test_cfg.get('mode', 'full'),
                  one_graph=True)
    print(f'wrote {report["out"]}: the whole model ({report["mode"]}), '
          f'input (B, 3, H, W), traced at {shape[0]}x{shape[1]}'
          f'{" raw BGR 0-255" if preprocess else " preprocessed"}; outputs '
          'keypoints (B, M, K, 2), keypoint_scores (B, M, K), pose_scores '
          '(B, M), num_people (B,)')
    from logocap_mmpose.deploy import ONNXOneGraph
    outputs = None if args.no_check else both_outputs(
        lambda: ONNXOneGraph(args.out),
        OneGraphNetwork(model, test_cfg, preprocess).eval(), shape,
        preprocess)
    if outputs is None:
        return report
    expected, got = outputs
    n = int(expected[3][0])
    check = dict(num_people=n, same_count=int(got['num_people'][0]) == n,
                 max_keypoint_diff_px=float(np.abs(
                     got['keypoints'][0, :n] - expected[0][0, :n].numpy()
                 ).max()) if n else 0.0,
                 max_score_diff=float(np.abs(
                     got['keypoint_scores'][0, :n] -
                     expected[1][0, :n].numpy()).max()) if n else 0.0)
    print(f'one graph on a random input: {n} poses in PyTorch, '
          f'{int(got["num_people"][0])} in onnxruntime; max |onnxruntime - '
          f'torch| keypoints {check["max_keypoint_diff_px"]:.3g} px, scores '
          f'{check["max_score_diff"]:.3g}')
    report['one_graph_check'] = check
    return report


def check_refinement(model, graph, maps) -> dict:
    """The refinement graph vs ``head.refine`` on PyTorch's maps of the
    random input and the codec's proposals (``test_cfg.max_proposals``, no
    threshold); prints and returns the largest differences."""
    head = model.head
    heatmaps, displacements, embedding = maps
    K = head.num_keypoints
    with torch.no_grad():
        initial, _, _ = head.decoder.decode_batch(
            heatmaps, displacements, model.test_cfg.get('max_proposals'),
            thr=float('-inf'))
        keypoints, scores = head.refine(graph.mode, heatmaps[:, :K],
                                        embedding, initial)
    got_keypoints, got_scores = graph(heatmaps.numpy(), embedding.numpy(),
                                      initial.numpy())
    px = np.abs(got_keypoints - keypoints.numpy()).max(-1)
    check = dict(proposals=int(initial.shape[1]),
                 max_score_diff=float(np.abs(got_scores -
                                             scores.numpy()).max()),
                 max_keypoint_diff_px=float(px.max()),
                 near_tie_share=float((px > 1e-3).mean()))
    print(f'refinement on {check["proposals"]} proposals: max |onnxruntime '
          f'- torch| scores {check["max_score_diff"]:.3g}, keypoints '
          f'{check["max_keypoint_diff_px"]:.3g} px (share of keypoints off '
          f'by > 1e-3 px, near-ties of the top-2 decoding: '
          f'{check["near_tie_share"]:.3g})')
    return check


if __name__ == '__main__':
    main()
