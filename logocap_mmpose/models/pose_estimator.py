"""A bottom-up estimator whose test results do not depend on the batch.

MMPose's ``PoseDataPreprocessor`` pads the images of a test batch at the
bottom and right to the largest one. A fully convolutional network then sees
different inputs for an image in a batch of mixed sizes than for the image
alone: every conv reads the padded neighbours instead of its own zero
padding, and the deep stages (stride 32, receptive fields of hundreds of
pixels) carry the difference far into the image, so its poses move
(docs/measurements.md, "Batches of mixed sizes").

:class:`LOGOCAPPoseEstimator` is MMPose's ``BottomupPoseEstimator`` with one
change at test time: the images of a batch are grouped by their own size
(``pad_shape``, recorded by the data preprocessor) and each group runs
through the network cropped to that size, so a batch gives the poses that
each image gives alone (up to float rounding). A batch of equal sizes (the
usual case with a fixed input size) is still one forward pass. Training and
the state dict are those of ``BottomupPoseEstimator`` (checkpoints load into
either).

Every test step also opens the ``torch.profiler`` ranges of
``models/profiling.py`` (``PREPROCESS``, ``BACKBONE`` once per pass of the
image and of its flip, ``HEAD`` around ``head.predict``) that
``tools/benchmark_inference.py`` reads back; they cost microseconds when no
profiler records. Any bottom-up head works here (DEKR too), which is how the
benchmark profiles both models the same way.

``test_cfg.scales`` (e.g. ``[0.5, 1, 2]``) turns on the multi-scale test:
the network runs on the input resized by each scale (and on its flip), and
the head fuses the maps at the scale-1 resolution (``models/inference.py``).
It works with flip test and with batches, mixed sizes included.

With ``flip_test`` the image and its flip go
through backbone and neck as one batch of 2B (``test_cfg.flip_in_one_pass``,
default True), and a model that only predicts folds its BatchNorms into the
convs before its first prediction (``test_cfg.fuse_conv_bn``, default True;
see ``models/fusion.py`` for when it does and what it refuses afterwards).
Both change the poses by float rounding only.

Training: a NaN or infinite loss term stops the run before the update, or
skips the update, by ``model.train_cfg.nonfinite_loss`` (``'raise'`` |
``'skip'``; see ``models/nonfinite.py``).
"""
import logging
from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from mmengine.logging import print_log
from torch.profiler import record_function

from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS
from mmpose.utils.typing import SampleList
from .fusion import FusedModelError, fuse_for_inference
from .inference import check_scales, group_by_size, scaled_input_size
from .nonfinite import (check_policy, nonfinite_loss_keys, nonfinite_message,
                        zero_gradient_loss)
from .profiling import BACKBONE, HEAD, PREPROCESS


def unpadded_groups(data_samples: SampleList,
                    batch_shape: Tuple[int, int]
                    ) -> List[Tuple[Tuple[int, int], List[int]]]:
    """Images of a batch grouped by their size before the batch padding.

    Args:
        data_samples (list[PoseDataSample]): with ``pad_shape`` (set by
            ``PoseDataPreprocessor``) in their meta; an image without it
            counts as the whole batch shape.
        batch_shape (tuple): (H, W) of the padded batch.

    Returns:
        list: ``((h, w), indices)`` in order of first appearance.
    """
    H, W = batch_shape
    sizes = []
    for sample in data_samples:
        shape = sample.metainfo.get('pad_shape', (H, W))
        sizes.append((min(H, int(shape[0])), min(W, int(shape[1]))))
    return group_by_size(sizes)


@MODELS.register_module()
class LOGOCAPPoseEstimator(BottomupPoseEstimator):
    """``BottomupPoseEstimator`` whose test results do not depend on the batch
    and whose test steps carry profiler ranges (see the module docstring).
    Same arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._train_mode_seen = False
        self._conv_bn_fused = False
        self._channels_last = False
        self._skip_update = False
        self.nonfinite_loss = check_policy(
            self.train_cfg.get('nonfinite_loss', 'raise'))

    def train(self, mode: bool = True):
        """``nn.Module.train``; remembers that the model trains, so that it
        is never fused for inference (see ``models/fusion.py``).

        Raises:
            FusedModelError: ``mode`` True on a fused model.
        """
        if mode and self._channels_last:  # training runs as configured
            self._to_format(torch.contiguous_format)
            self._channels_last = False
        if mode:
            if self._conv_bn_fused:
                raise FusedModelError(
                    'this model was fused for inference (BatchNorm folded '
                    'into the convs; test_cfg.fuse_conv_bn) and cannot '
                    'train: rebuild it, or set '
                    'model.test_cfg.fuse_conv_bn=False')
            self._train_mode_seen = True
        return super().train(mode)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        if self._conv_bn_fused:
            raise FusedModelError(
                'cannot load weights into a model fused for inference '
                '(test_cfg.fuse_conv_bn): load them before the first '
                'prediction, or rebuild the model')
        super()._load_from_state_dict(state_dict, prefix, *args)

    def fuse_if_predicting_only(self) -> bool:
        """Fold BatchNorm into the convs (``models/fusion.py``) once, when
        ``test_cfg.fuse_conv_bn`` (default True) and the model is in eval
        mode and has never been put in training mode.

        Returns:
            bool: whether the model is fused.
        """
        if self._conv_bn_fused or self._train_mode_seen or self.training \
                or not self.test_cfg.get('fuse_conv_bn', True):
            return self._conv_bn_fused
        counts = fuse_for_inference(self)
        self._conv_bn_fused = True
        print_log(
            f'{type(self).__name__}: {counts["before"] - counts["after"]} '
            'BatchNorm layers folded into their convs for inference '
            '(test_cfg.fuse_conv_bn=False keeps them)', logger='current',
            level=logging.DEBUG)
        return True

    def set_memory_format(self) -> bool:
        """Put the weights in the memory format ``test_cfg.channels_last``
        asks for (default False), once per change of the setting, for a
        model that only predicts (as :meth:`fuse_if_predicting_only`; a
        model that has trained keeps the contiguous format). Channels-last
        makes the convolutions of an NCHW network read NHWC memory (faster
        for HRNet on CPUs and for AMP on GPUs); :meth:`scale_features` then
        converts the inputs per batch and returns the features contiguous.
        Only the backbone and neck change format. The same poses up to float
        rounding.

        Returns:
            bool: whether the weights are channels-last now.
        """
        want = bool(self.test_cfg.get('channels_last', False)) and not (
            self._train_mode_seen or self.training)
        if want != self._channels_last:
            self._to_format(torch.channels_last
                            if want else torch.contiguous_format)
            self._channels_last = want
        return want

    def _to_format(self, memory_format: torch.memory_format) -> None:
        # the backbone and neck only: the head's dense branches and the
        # refinement keep NCHW (MMPose's flip fusion views the maps)
        self.to(memory_format=memory_format)

    def parse_losses(self, losses: Dict[str, Tensor]
                     ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """``BaseModel.parse_losses``, then the check of
        ``models/nonfinite.py``.

        Raises:
            FloatingPointError: a loss term is NaN or infinite and
                ``train_cfg.nonfinite_loss`` is ``'raise'``.
        """
        loss, log_vars = super().parse_losses(losses)
        self._skip_update = False
        bad = nonfinite_loss_keys(log_vars)
        if not bad:
            return loss, log_vars
        message = nonfinite_message(bad, log_vars)
        if self.nonfinite_loss == 'raise':
            raise FloatingPointError(
                f'{message}; training stopped before the update of the '
                "weights. model.train_cfg.nonfinite_loss='skip' skips such "
                'steps instead')
        print_log(f'{message}; update skipped '
                  "(model.train_cfg.nonfinite_loss='skip')",
                  logger='current', level=logging.WARNING)
        self._skip_update = True
        kept = {k: v for k, v in log_vars.items() if 'loss' not in k}
        return zero_gradient_loss(self), kept

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper) -> Dict[str, Tensor]:
        """``BaseModel.train_step``; with ``train_cfg.nonfinite_loss=
        'skip'`` a step whose loss is not finite changes nothing: no
        update, and the buffers (BatchNorm statistics) its forward pass
        moved are put back."""
        buffers = [b.detach().clone() for b in self.buffers()] \
            if self.nonfinite_loss == 'skip' else None
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed, log_vars = self.parse_losses(losses)
        if not self._skip_update:
            optim_wrapper.update_params(parsed)
        elif buffers is not None:
            with torch.no_grad():
                for buf, saved in zip(self.buffers(), buffers):
                    buf.copy_(saved)
        return log_vars

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """``BaseModel.val_step`` with the preprocessing in a range."""
        return self.test_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """``BaseModel.test_step`` with the preprocessing in a range."""
        with record_function(PREPROCESS):
            data = self.data_preprocessor(data, False)
        return self._run_forward(data, mode='predict')

    def predict(self, inputs: Union[Tensor, List[Tensor]],
                data_samples: SampleList) -> SampleList:
        """Poses of every image as it gives them alone.

        Args:
            inputs (Tensor): (B, 3, H, W) batch, padded at the bottom and
                right to its largest image (a list of tensors, a multi-scale
                test, goes to ``BottomupPoseEstimator.predict``).
            data_samples (list[PoseDataSample]): B samples, ``pad_shape`` in
                their meta.

        Returns:
            list[PoseDataSample]: ``data_samples`` with ``pred_instances``
            (and ``pred_fields`` when the head returns fields).
        """
        self.fuse_if_predicting_only()
        self.set_memory_format()
        if not isinstance(inputs, Tensor) or data_samples is None or \
                self.test_cfg.get('multiscale_test', False):
            return super().predict(inputs, data_samples)
        H, W = inputs.shape[-2:]
        groups = unpadded_groups(data_samples, (H, W))
        if len(groups) == 1 and groups[0][0] == (H, W):
            return self.predict_one_size(inputs, data_samples)
        for (h, w), index in groups:
            self.predict_one_size(inputs[index, :, :h, :w],
                                  [data_samples[i] for i in index])
        # add_pred_to_datasample filled each sample in place
        return list(data_samples)

    def predict_one_size(self, inputs: Tensor,
                         data_samples: SampleList) -> SampleList:
        """``BottomupPoseEstimator.predict`` at one scale, in ranges.

        Args:
            inputs (Tensor): (B, 3, h, w), no padding between the images.
            data_samples (list[PoseDataSample]): their B samples.

        Returns:
            list[PoseDataSample]: ``data_samples``, predictions added.
        """
        assert self.with_head, 'predicting poses needs a head'
        feats = self.predict_features(inputs)
        with record_function(HEAD):
            preds = self.head.predict(feats, data_samples,
                                      test_cfg=self.test_cfg)
        instances, fields = preds if isinstance(preds, tuple) else (preds,
                                                                    None)
        return self.add_pred_to_datasample(instances, fields, data_samples)

    def predict_features(self, inputs: Tensor):
        """The features ``head.predict`` takes for ``inputs`` (B, 3, h, w):
        :meth:`scale_features` of scale 1, or a list with one entry per
        scale of ``test_cfg.scales``."""
        scales = check_scales(self.test_cfg.get('scales'))
        per_scale = [self.scale_features(inputs, s) for s in scales]
        return per_scale[0] if len(scales) == 1 else per_scale

    def _features(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """``extract_feat``; on channels-last weights the features return
        contiguous (the head's flip fusion views them as NCHW)."""
        return self.extract_feat(inputs)

    def dense_maps(self, inputs: Tensor, data_samples: SampleList
                   ) -> Tuple[Tensor, Tensor, Tensor]:
        """The maps that :meth:`predict` decodes, fused over flip and scales
        as ``test_cfg`` asks (for tools that look inside the model, e.g. the
        KEM / KAM drawing).

        The network as it stands: unlike :meth:`predict`, this does not
        fold the BatchNorms (``test_cfg.fuse_conv_bn``).

        Args:
            inputs (Tensor): (B, 3, h, w) preprocessed images of one size.
            data_samples (list[PoseDataSample]): their samples.

        Returns:
            tuple: heatmaps (B, K+1, h', w'), displacements (B, 2K, h', w')
            and embedding (B, C, h', w'), as ``head.dense_maps``.
        """
        return self.head.dense_maps(self.predict_features(inputs),
                                    data_samples, self.test_cfg)

    def scale_features(self, inputs: Tensor, scale: float):
        """Features of ``inputs`` resized by ``scale`` (bilinear, sides
        rounded to ``test_cfg.multiscale_size_divisor``, 32 by default),
        and of its horizontal flip with ``flip_test``: ``feats`` or
        ``[feats, flipped_feats]``, as ``head.predict`` takes them.

        The image and its flip run through the network as one batch of 2B
        (``test_cfg.flip_in_one_pass``, default True; False: two passes of
        B, the same features up to float rounding)."""
        if scale != 1:
            size = scaled_input_size(
                *inputs.shape[-2:], scale,
                self.test_cfg.get('multiscale_size_divisor', 32))
            inputs = F.interpolate(inputs, size=size, mode='bilinear',
                                   align_corners=False)
        if self._channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if not self.test_cfg.get('flip_test', False):
            with record_function(BACKBONE):
                return self._features(inputs)
        if not self.test_cfg.get('flip_in_one_pass', True):
            with record_function(BACKBONE):
                feats = self._features(inputs)
            with record_function(BACKBONE):
                return [feats, self._features(inputs.flip(-1))]
        with record_function(BACKBONE):  # image and flip: one batch of 2B
            both = self._features(torch.cat((inputs, inputs.flip(-1))))
        B = inputs.shape[0]
        return [tuple(f[:B] for f in both), tuple(f[B:] for f in both)]
