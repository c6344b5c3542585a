#!/usr/bin/env python
"""Frames per second of MMPose's inferencer on a video, one frame per model
step against ``N`` frames per step.

The tool writes a short video (``--frames`` frames of ``--frame-size``
pixels, each a coco-mini val image centre-cropped to the frame's aspect
ratio and resized) with OpenCV into a temporary folder, or takes
``--video``. It then runs ``logocap_mmpose.apis.BatchedMMPoseInferencer``
(MMPose's ``MMPoseInferencer`` whose ``batch_size`` reaches a bottom-up
model; MMPose's own class runs one frame per step whatever ``batch_size``
says) over the video file at every ``--batch-sizes`` value, for one config
or two (e.g. LOGO-CAP and its DEKR peer side by side), in one run, and
prints one markdown table: per config and batch size the model steps, the
poses per frame, the seconds and frames per second of the whole inferencer
call (video decoding, test pipeline, network, decoding; no drawing), and
the speed-up over the first batch size.

Each (config, batch size) first runs ``--warmup`` untimed times over the
video (the first steps of a model, and of every new input shape, are slow:
weights folded, kernels chosen, caches filled), then ``--repeats`` timed
times; the median counts. The settings (device, threads, flip test,
weights) are columns of the table. Without a checkpoint the weights are
random (``--seed``): the timings are then those of whatever the random
model decodes, which the poses-per-frame column states.

A model that cannot predict several images per step gets a row with a note
instead of timings at that batch size: MMPose 1.3.2's ``DEKRHead.predict``
asserts a batch of one image, so DEKR is timed at batch size 1 only.

Example (CPU-sized pair, random weights)::

    python tools/benchmark_video.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        configs/logocap/coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py \\
        --frames 40 --batch-sizes 1 8 --threads 2 --out video_fps.md
"""
import argparse
import glob
import os.path as osp
import statistics
import tempfile
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from logocap_mmpose.utils.tooling import (Column, Stopwatch, load_config,
                                          markdown_table, short_name,
                                          write_report)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_IMG_DIR = osp.join(osp.dirname(REPO), 'shared', 'data', 'coco-mini',
                           'val2017')

COLUMNS = [
    Column('config', 'config'),
    Column('weights', 'weights'),
    Column('device', 'device'),
    Column('threads', 'threads'),
    Column('flip', 'flip test'),
    Column('batch_size', 'batch size'),
    Column('steps', 'model steps'),
    Column('frames', 'frames'),
    Column('poses', 'poses/frame', '{:.1f}'),
    Column('seconds', 's', '{:.2f}'),
    Column('fps', 'fps', '{:.2f}'),
    Column('speedup', 'vs first batch size', '{:.2f}x'),
    Column('note', 'note'),
]


# --------------------------------------------------------------------------
# the video
# --------------------------------------------------------------------------
def centre_crop_resize(img: np.ndarray, width: int,
                       height: int) -> np.ndarray:
    """``img`` cropped about its centre to the aspect ratio ``width /
    height``, then resized to ``width`` x ``height`` (OpenCV, area)."""
    import cv2
    h, w = img.shape[:2]
    if w * height > h * width:  # too wide: crop the sides
        new_w = max(1, round(h * width / height))
        x0 = (w - new_w) // 2
        img = img[:, x0:x0 + new_w]
    else:  # too tall: crop top and bottom
        new_h = max(1, round(w * height / width))
        y0 = (h - new_h) // 2
        img = img[y0:y0 + new_h]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def video_frames(img_dir: str, num_frames: int,
                 size: Tuple[int, int]) -> List[np.ndarray]:
    """``num_frames`` BGR frames of ``size`` (width, height) from the
    ``*.jpg`` of ``img_dir`` in name order (cycling if there are fewer)."""
    import cv2
    paths = sorted(glob.glob(osp.join(img_dir, '*.jpg')))
    if not paths:
        raise FileNotFoundError(
            f'no *.jpg in {img_dir} (give --img-dir, e.g. '
            '../shared/data/coco-mini/val2017, or --video)')
    frames = []
    for i in range(num_frames):
        img = cv2.imread(paths[i % len(paths)])
        frames.append(centre_crop_resize(img, *size))
    return frames


def write_video(frames: Sequence[np.ndarray], path: str,
                fps: float = 10.0) -> str:
    """Write BGR frames of one size to ``path`` (``.mp4``: mp4v) and check
    that OpenCV reads the same number back.

    Returns:
        str: ``path``.
    """
    import cv2
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {path} (mp4v)')
    for frame in frames:
        writer.write(frame)
    writer.release()
    count = len(read_frames(path, len(frames) + 1))
    if count != len(frames):
        raise RuntimeError(f'{path}: wrote {len(frames)} frames, OpenCV '
                           f'reads {count}')
    return path


def read_frames(path: str, limit: int) -> List[np.ndarray]:
    """The first ``limit`` frames of a video (BGR)."""
    import cv2
    reader = cv2.VideoCapture(path)
    frames = []
    while len(frames) < limit:
        ok, frame = reader.read()
        if not ok:
            break
        frames.append(frame)
    reader.release()
    return frames


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
@contextmanager
def counted_steps(model: torch.nn.Module) -> Iterator[List[int]]:
    """Batch sizes of the ``model.test_step`` calls made in the block."""
    steps: List[int] = []
    test_step = model.test_step

    def counted(data):
        steps.append(len(data['inputs']))
        return test_step(data)

    model.test_step = counted
    try:
        yield steps
    finally:
        del model.test_step


def build_inferencer(cfg, checkpoint: Optional[str], device: str,
                     seed: int):
    """``BatchedMMPoseInferencer`` of a loaded config; random weights drawn
    after ``torch.manual_seed(seed)`` when there is no checkpoint."""
    from logocap_mmpose.apis import BatchedMMPoseInferencer
    torch.manual_seed(seed)
    return BatchedMMPoseInferencer(pose2d=cfg, pose2d_weights=checkpoint,
                                   device=device)


def time_video(inferencer, video: str, batch_size: int, device: str,
               warmup: int = 1, repeats: int = 1) -> Dict[str, float]:
    """Seconds of the inferencer over a video file at one batch size.

    Args:
        inferencer: a ``BatchedMMPoseInferencer``.
        video (str): video file path.
        batch_size (int): frames per model step.
        device (str): the model's device (for :class:`Stopwatch`).
        warmup (int): untimed runs over the video first.
        repeats (int): timed runs over the whole video; the median counts.

    Returns:
        dict: ``seconds``, ``frames``, ``steps`` (model steps per run),
        ``poses`` (mean per frame).
    """
    for _ in range(max(0, warmup)):
        for _ in inferencer(video, batch_size=batch_size):
            pass
    model = inferencer.inferencer.model
    times, counts, poses, steps = [], 0, 0, []
    for _ in range(max(1, repeats)):
        counts, poses = 0, 0
        with counted_steps(model) as steps, Stopwatch(device) as watch:
            for result in inferencer(video, batch_size=batch_size):
                counts += len(result['predictions'])
                poses += sum(len(p) for p in result['predictions'])
        times.append(watch.seconds)
    return dict(seconds=statistics.median(times), frames=counts,
                steps=len(steps), poses=poses / max(counts, 1))


def benchmark(args: argparse.Namespace, video: str) -> List[dict]:
    """Rows of the table: every config at every batch size."""
    configs = [(args.config, args.checkpoint)]
    if args.second_config:
        configs.append((args.second_config, args.second_checkpoint))
    rows = []
    for path, checkpoint in configs:
        cfg = load_config(path, cfg_options=args.cfg_options)
        cfg.model.setdefault('test_cfg', {})
        cfg.model.test_cfg['flip_test'] = not args.no_flip
        inferencer = build_inferencer(cfg, checkpoint, args.device,
                                      args.seed)
        weights = (osp.basename(checkpoint) if checkpoint else
                   f'random (seed {args.seed})')
        first = None
        for batch_size in args.batch_sizes:
            row = dict(config=short_name(path), weights=weights,
                       device=args.device, threads=torch.get_num_threads(),
                       flip='off' if args.no_flip else 'on',
                       batch_size=batch_size)
            try:
                timed = time_video(inferencer, video, batch_size,
                                   args.device, args.warmup, args.repeats)
            except (AssertionError, NotImplementedError) as exc:
                if batch_size == 1:
                    raise
                # e.g. MMPose's DEKRHead: one image per prediction only
                row['note'] = 'not run: ' + str(exc).splitlines()[0]
                rows.append(row)
                continue
            fps = timed['frames'] / timed['seconds']
            first = fps if first is None else first
            row.update(steps=timed['steps'], frames=timed['frames'],
                       poses=timed['poses'], seconds=timed['seconds'],
                       fps=fps, speedup=fps / first)
            rows.append(row)
        del inferencer
    return rows


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Frames per second of MMPose\'s inferencer on a video at '
        'batch size 1 and N (BatchedMMPoseInferencer), one markdown table.')
    parser.add_argument('config', help='pose config (e.g. LOGO-CAP)')
    parser.add_argument(
        'second_config', nargs='?',
        help='optional second config timed alike (e.g. its DEKR peer)')
    parser.add_argument(
        '--checkpoint',
        help='weights of the first config (default: random weights)')
    parser.add_argument(
        '--second-checkpoint',
        help='weights of the second config (default: random weights)')
    parser.add_argument(
        '--video', help='time this video file instead of building one')
    parser.add_argument(
        '--img-dir', default=DEFAULT_IMG_DIR,
        help='images (*.jpg, name order) the video is built from (default: '
        '../shared/data/coco-mini/val2017 beside the repository)')
    parser.add_argument('--frames', type=int, default=40,
                        help='frames of the built video (default: 40)')
    parser.add_argument(
        '--frame-size', type=int, nargs=2, default=[480, 360],
        metavar=('WIDTH', 'HEIGHT'),
        help='frame size of the built video (default: 480 360)')
    parser.add_argument(
        '--batch-sizes', type=int, nargs='+', default=[1, 8],
        help='frames per model step, each timed (default: 1 8)')
    parser.add_argument(
        '--device', default='cpu',
        help="torch device, e.g. 'cpu', 'cuda' or 'cuda:0' (default: cpu)")
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument('--no-flip', action='store_true',
                        help='flip test off (default: on, whatever the '
                        'config says)')
    parser.add_argument(
        '--warmup', type=int, default=1,
        help='untimed runs over the video before timing each batch size '
        '(default: 1)')
    parser.add_argument(
        '--repeats', type=int, default=1,
        help='timed runs over the video; the median counts (default: 1)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights (default: 0)')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='overrides applied to both configs')
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.batch_sizes):
        parser.error('--batch-sizes must be >= 1')
    if args.frames < 1:
        parser.error('--frames must be >= 1')
    return args


def main(argv=None) -> str:
    """Run the benchmark; print and return the report (table and notes)."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    import logocap_mmpose  # noqa: F401  (registers the plugin)

    with tempfile.TemporaryDirectory() as tmp:
        if args.video:
            video = source = args.video
        else:
            frames = video_frames(args.img_dir, args.frames,
                                  tuple(args.frame_size))
            video = write_video(frames, osp.join(tmp, 'clip.mp4'))
            source = (f'{args.frames} frames of {args.frame_size[0]}x'
                      f'{args.frame_size[1]} px built from {args.img_dir} '
                      '(mp4v)')
        rows = benchmark(args, video)

    notes = [
        f'Video: {source}.',
        'Timed: the whole inferencer call over the video file (decoding, '
        'test pipeline, network, pose decoding; no drawing), after '
        f'{args.warmup} untimed run(s) per batch size; median of '
        f'{args.repeats} run(s). Inferencer: '
        'logocap_mmpose.apis.BatchedMMPoseInferencer (MMPoseInferencer '
        'whose batch_size reaches the model).',
        f'torch {torch.__version__}, {torch.get_num_threads()} threads.',
    ]
    report = markdown_table(COLUMNS, rows) + '\n\n' + '\n'.join(notes)
    print('\n' + report)
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
