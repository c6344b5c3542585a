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

from logocap_mmpose.analysis.video import DEFAULT_IMG_DIR, run_video_benchmark


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def parse_args(argv=None):
    from logocap_mmpose.analysis import (
        add_config_arguments, add_timing_arguments, tool_parser)
    parser = tool_parser(
        'Frames per second of MMPose\'s inferencer on a video at '
        'batch size 1 and N (BatchedMMPoseInferencer), one markdown table.',
        config='pose config (e.g. LOGO-CAP)')
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
    add_timing_arguments(parser, warmup=1, repeats=1)
    add_config_arguments(parser, seed='the random weights')
    parser.add_argument('--no-flip', action='store_true',
                        help='flip test off (default: on, whatever the '
                        'config says)')
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.batch_sizes):
        parser.error('--batch-sizes must be >= 1')
    if args.frames < 1:
        parser.error('--frames must be >= 1')
    return args


def main(argv=None) -> str:
    """Run the benchmark; print and return the report (table and notes)."""
    return run_video_benchmark(parse_args(argv))


if __name__ == '__main__':
    main()
