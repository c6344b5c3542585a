"""Frames per second of MMPose's inferencer on a video, one frame per model
step against ``N`` frames per step: what ``tools/benchmark_video.py`` runs
(its docstring says what is timed and how).

The video is a short clip of coco-mini val images centre-cropped and resized
(:func:`video_frames`, :func:`write_video`), or a given file;
:func:`time_video` times ``logocap_mmpose.apis.BatchedMMPoseInferencer`` over
it at one batch size, :func:`benchmark` every config at every batch size,
and :func:`run_video_benchmark` writes the report.
"""
import argparse
import glob
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import (Column, load_config, markdown_table, median_seconds,
               short_name, write_report)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_IMG_DIR = osp.join(osp.dirname(REPO), 'shared', 'data', 'coco-mini',
                           'val2017')

COLUMNS = [Column(*spec) for spec in (
    ('config', 'config'), ('weights', 'weights'), ('device', 'device'),
    ('threads', 'threads'), ('flip', 'flip test'),
    ('batch_size', 'batch size'), ('steps', 'model steps'),
    ('frames', 'frames'), ('poses', 'poses/frame', '{:.1f}'),
    ('seconds', 's', '{:.2f}'), ('fps', 'fps', '{:.2f}'),
    ('speedup', 'vs first batch size', '{:.2f}x'), ('note', 'note'))]


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
    model = inferencer.inferencer.model

    def run() -> Tuple[int, int, int]:
        counts, poses = 0, 0
        with counted_steps(model) as steps:
            for result in inferencer(video, batch_size=batch_size):
                counts += len(result['predictions'])
                poses += sum(len(p) for p in result['predictions'])
        return counts, poses, len(steps)

    seconds, (counts, poses, steps) = median_seconds(
        run, max(1, repeats), device, warmup=warmup)
    return dict(seconds=seconds, frames=counts, steps=steps,
                poses=poses / max(counts, 1))


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


def run_video_benchmark(args: argparse.Namespace) -> str:
    """Build (or take) the video, time every config at every batch size,
    print and write (``args.out``) the report: the table and its notes.
    ``args``: the namespace of ``tools/benchmark_video.py``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')

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

