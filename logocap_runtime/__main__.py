"""``python -m logocap_runtime GRAPH IMAGE [IMAGE ...]``: the poses of each
image as JSON lines (image pixels), with onnxruntime only."""
import argparse
import json
import sys
from typing import List, Optional

from .graph import RUNTIMES, PoseRunner


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(
        prog='python -m logocap_runtime',
        description='LOGO-CAP poses of images with an exported one graph '
        '(onnxruntime, numpy and OpenCV only)')
    parser.add_argument('graph', help='.onnx file (export_onnx.py '
                        '--one-graph --with-preprocess)')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--threads', type=int, default=None,
                        help='onnxruntime intra-op threads')
    parser.add_argument('--runtime', default='onnxruntime',
                        choices=RUNTIMES, help='onnxruntime (default) or '
                        'openvino (pip install openvino)')
    args = parser.parse_args(argv)
    runner = PoseRunner(args.graph, threads=args.threads,
                        runtime=args.runtime)
    results = []
    for path in args.images:
        pose = runner(path)
        line = dict(image=path, **{k: v.tolist() for k, v in pose.items()})
        print(json.dumps(line))
        results.append(line)
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
