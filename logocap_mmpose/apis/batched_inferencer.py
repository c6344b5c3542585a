"""``MMPoseInferencer`` whose ``batch_size`` reaches a bottom-up model.

MMPose 1.3.2 accepts ``batch_size`` in ``MMPoseInferencer.__call__`` and
``Pose2DInferencer.__call__`` but drops it:
``BaseMMPoseInferencer.preprocess`` (which ``MMPoseInferencer.preprocess``
delegates to) yields one collated image at a time ("only supports inference
with batch size 1"), so every image is its own ``model.test_step``, whatever
``batch_size`` says. The model and the rest of the inferencer handle batches
already: ``Pose2DInferencer.forward`` passes the batch to ``test_step`` and
loops over its samples, ``visualize`` and ``postprocess`` loop over the
inputs and predictions of a batch (video frames are written in order).

:class:`BatchedMMPoseInferencer` and :class:`BatchedPose2DInferencer` are
MMPose's classes with one change: for a bottom-up model
(``data_mode='bottomup'``) their ``preprocess`` merges ``batch_size``
consecutive single-image batches of MMPose's own ``preprocess`` into one, so
the model runs ``batch_size`` images per ``test_step`` (the last batch may be
smaller). Each result that ``__call__`` yields then holds the predictions of
that many inputs (``result['predictions']`` is a list of one entry per
input, as before). Everything else (the pipeline, ``bbox_thr`` / ``nms_thr``
handling, visualisation, video input and output, ``pred_out_dir``) is
MMPose's code. Top-down models (one batch holds the boxes of one image, which
``forward`` merges back into one sample) and 3D models keep MMPose's one
image per step.

Images of different sizes in one batch: MMPose's ``PoseDataPreprocessor``
pads them to the largest. ``LOGOCAPPoseEstimator`` runs each size unpadded
(``models/pose_estimator.py``), so a LOGO-CAP batch gives the poses each
image gives alone; MMPose's ``BottomupPoseEstimator`` (e.g. DEKR) runs the
padded batch, whose poses can differ from those of the images alone unless
all inputs have one size (e.g. the frames of a video). MMPose 1.3.2's
``DEKRHead.predict`` asserts one image per step, so a DEKR model stays at
``batch_size=1``.

Example::

    from logocap_mmpose.apis import BatchedMMPoseInferencer
    inferencer = BatchedMMPoseInferencer(
        pose2d='configs/logocap/coco/'
        'logocap_effnetlite0_1xb8-40e_coco-256x256.py',
        pose2d_weights='epoch_40.pth', device='cpu')
    for result in inferencer('video.mp4', batch_size=8):
        ...  # result['predictions']: one list of poses per frame
"""
from typing import Any, Iterable, Iterator, List, Sequence, Tuple

import torch

from mmpose.apis.inferencers import (MMPoseInferencer, Pose2DInferencer)


def merge_collated(batches: Sequence[Any]) -> Any:
    """One collated batch from several, as if their items were collated
    together.

    Lists and tuples are concatenated (``pseudo_collate``: ``inputs`` and
    ``data_samples``), tensors are concatenated along dim 0
    (``default_collate``), dicts are merged key by key.

    Args:
        batches (Sequence): outputs of one ``collate_fn``, at least one.

    Returns:
        The merged batch, of the type of the first.

    Raises:
        TypeError: a value that cannot be merged (e.g. a number).
    """
    if not batches:
        raise ValueError('nothing to merge')
    first = batches[0]
    if len(batches) == 1:
        return first
    if isinstance(first, dict):
        return {key: merge_collated([b[key] for b in batches])
                for key in first}
    if isinstance(first, (list, tuple)):
        merged: List[Any] = []
        for batch in batches:
            merged.extend(batch)
        return type(first)(merged) if isinstance(first, tuple) else merged
    if isinstance(first, torch.Tensor):
        return torch.cat(list(batches))
    raise TypeError(f'cannot merge collated values of type '
                    f'{type(first).__name__}')


def group_batches(single: Iterable[Tuple[Any, list]],
                  batch_size: int) -> Iterator[Tuple[Any, list]]:
    """``batch_size`` consecutive single-input batches as one.

    Args:
        single (Iterable): ``(collated data, [original input])`` pairs, as
            MMPose's ``preprocess`` yields them.
        batch_size (int): inputs per merged batch (the last may hold fewer).

    Yields:
        tuple: merged collated data and the list of its original inputs.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    datas: List[Any] = []
    originals: List[Any] = []
    for data, inputs in single:
        datas.append(data)
        originals.extend(inputs)
        if len(datas) == batch_size:
            yield merge_collated(datas), originals
            datas, originals = [], []
    if datas:
        yield merge_collated(datas), originals


def batches_images(pose2d: Any) -> bool:
    """Whether an inferencer's model can take several images per step:
    a ``Pose2DInferencer`` of a bottom-up config."""
    return isinstance(pose2d, Pose2DInferencer) and \
        pose2d.cfg.get('data_mode', 'topdown') == 'bottomup'


class BatchedPose2DInferencer(Pose2DInferencer):
    """``Pose2DInferencer`` that runs ``batch_size`` images per
    ``test_step`` for bottom-up models (see the module docstring).
    Same arguments."""

    def preprocess(self, inputs: Iterable, batch_size: int = 1, **kwargs):
        """MMPose's ``preprocess``, its single-image batches merged
        ``batch_size`` at a time for a bottom-up model.

        Args:
            inputs (Iterable): inputs from ``_inputs_to_list`` (paths,
                arrays or the frames of a video).
            batch_size (int): images per model step.
            **kwargs: MMPose's preprocess arguments (``bboxes``,
                ``bbox_thr``, ``nms_thr``).

        Yields:
            tuple: collated data and the list of its original inputs.
        """
        single = super().preprocess(inputs, batch_size=1, **kwargs)
        if batch_size <= 1 or not batches_images(self):
            yield from single
        else:
            yield from group_batches(single, int(batch_size))


class BatchedMMPoseInferencer(MMPoseInferencer):
    """``MMPoseInferencer`` that runs ``batch_size`` images per
    ``test_step`` for bottom-up 2D models (see the module docstring).
    Same arguments."""

    def preprocess(self, inputs: Iterable, batch_size: int = 1, **kwargs):
        """MMPose's ``preprocess``, its single-image batches merged
        ``batch_size`` at a time for a bottom-up 2D model.

        Args:
            inputs (Iterable): inputs from ``_inputs_to_list``.
            batch_size (int): images per model step.
            **kwargs: the wrapped inferencer's preprocess arguments.

        Yields:
            tuple: collated data and the list of its original inputs.
        """
        single = super().preprocess(inputs, batch_size=1, **kwargs)
        if batch_size <= 1 or not batches_images(self.inferencer):
            yield from single
        else:
            yield from group_batches(single, int(batch_size))
