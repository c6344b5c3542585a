#!/usr/bin/env python
"""Export LOGO-CAP's dense network (backbone, neck and the head's heatmap,
offset and embedding branches) to ONNX.

The graph has a fixed input height and width (``--input-shape``, default: the
codec's input size) and a free batch size. The rest of inference (centre
decoding, KEMs, message passing, adaptation, pose NMS) runs in PyTorch on the
graph's outputs: ``logocap_mmpose.deploy.onnx_inference``. With onnxruntime
installed the tool checks the exported graph against PyTorch on a random
input and prints the largest differences.

Needs the ``onnx`` extra (``pip install -e .[onnx]``)::

    python tools/export_onnx.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        work_dirs/fit/epoch_100.pth logocap_effnetlite0_256x256.onnx \\
        --input-shape 256 256 --with-preprocess
"""
import argparse
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export the dense network of a LOGO-CAP model to ONNX.')
    parser.add_argument('config', help='LOGO-CAP config file')
    parser.add_argument('checkpoint',
                        help="checkpoint file ('none': random weights)")
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument(
        '--input-shape', type=int, nargs=2, metavar=('H', 'W'),
        help="input height and width (default: the codec's input_size)")
    parser.add_argument(
        '--with-preprocess', action='store_true',
        help='put the data preprocessor\'s BGR->RGB and mean/std '
        'normalisation into the graph (it then takes raw BGR images, 0-255)')
    parser.add_argument('--static-batch', action='store_true',
                        help='fix the batch size to 1 (default: free)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset')
    parser.add_argument('--no-check', action='store_true',
                        help='skip the onnxruntime check after export')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='config overrides (key=value)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import logocap_mmpose  # noqa: F401  (registers the plugin)
    from logocap_mmpose.deploy import (DenseNetwork, export_onnx,
                                       preprocess_from_config)
    from mmpose.apis import init_model

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    if checkpoint is None:  # random weights: no pretrained backbone either
        cfg.model.backbone.pop('init_cfg', None)
        if 'pretrained' in cfg.model.backbone:
            cfg.model.backbone.pretrained = False
    model = init_model(cfg, checkpoint, device='cpu')
    model.eval()
    if args.input_shape:
        shape = tuple(args.input_shape)
    else:
        w, h = cfg.codec.input_size if 'codec' in cfg else \
            cfg.model.head.decoder.input_size
        shape = (h, w)
    preprocess = preprocess_from_config(cfg) if args.with_preprocess else None
    export_onnx(model, args.out, shape, preprocess,
                dynamic_batch=not args.static_batch,
                opset_version=args.opset)
    report = dict(out=osp.abspath(args.out), input_shape=shape,
                  preprocess=preprocess)
    print(f'wrote {report["out"]}: input (B, 3, {shape[0]}, {shape[1]})'
          f'{" raw BGR 0-255" if preprocess else " preprocessed"}; outputs '
          'heatmaps, displacements, embedding')
    if args.no_check:
        return report
    try:
        from logocap_mmpose.deploy import ONNXDenseNetwork
        network = ONNXDenseNetwork(args.out)
    except ImportError:
        print('onnxruntime is not installed: no check')
        return report
    torch.manual_seed(0)
    x = torch.rand(1, 3, *shape)
    x = x * 255 if preprocess else x * 2 - 1
    with torch.no_grad():
        expected = DenseNetwork(model, preprocess)(x)
    got = network(x.numpy())
    diffs = {}
    for name, e, g in zip(('heatmaps', 'displacements', 'embedding'),
                          expected, got):
        e = e.numpy()
        diffs[name] = float(np.abs(e - g).max())
        print(f'{name}: shape {tuple(g.shape)}, max |onnxruntime - torch| '
              f'{diffs[name]:.3g} (max |torch| {np.abs(e).max():.3g})')
    report['max_abs_diff'] = diffs
    return report


if __name__ == '__main__':
    main()
