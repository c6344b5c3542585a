"""A bottom-up estimator whose test results do not depend on the batch.

MMPose's ``PoseDataPreprocessor`` pads the images of a test batch at the
bottom and right to the largest one. A fully convolutional network then sees
different inputs for an image in a batch of mixed sizes than for the image
alone: every conv reads the padded neighbours instead of its own zero
padding, and the deep stages (stride 32, receptive fields of hundreds of
pixels) carry the difference far into the image. With EfficientNet-Lite0 at
256 px the stride-4 head outputs of an image in a padded batch differ from
its outputs alone by 10-20% of their range even 8 cells away from the
padding, so poses moved by pixels to hundreds of pixels (issue 9).

:class:`LOGOCAPPoseEstimator` is MMPose's ``BottomupPoseEstimator`` with one
change at test time: the images of a batch are grouped by their own size
(``pad_shape``, recorded by the data preprocessor) and each group runs
through the network cropped to that size, so a batch gives the poses that
each image gives alone (up to float rounding). A batch of equal sizes (the
usual case with a fixed input size) is still one forward pass. Training and
the state dict are those of ``BottomupPoseEstimator`` (checkpoints load into
either).
"""
from typing import Dict, List, Tuple, Union

from torch import Tensor

from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS
from mmpose.utils.typing import SampleList


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
    groups: Dict[Tuple[int, int], List[int]] = {}
    for i, sample in enumerate(data_samples):
        shape = sample.metainfo.get('pad_shape', (H, W))
        size = (min(H, int(shape[0])), min(W, int(shape[1])))
        groups.setdefault(size, []).append(i)
    return list(groups.items())


@MODELS.register_module()
class LOGOCAPPoseEstimator(BottomupPoseEstimator):
    """``BottomupPoseEstimator`` whose test results do not depend on the batch
    (see the module docstring). Same arguments."""

    def predict(self, inputs: Union[Tensor, List[Tensor]],
                data_samples: SampleList) -> SampleList:
        if not isinstance(inputs, Tensor) or data_samples is None:
            return super().predict(inputs, data_samples)  # e.g. multi-scale
        H, W = inputs.shape[-2:]
        groups = unpadded_groups(data_samples, (H, W))
        if len(groups) == 1 and groups[0][0] == (H, W):
            return super().predict(inputs, data_samples)
        for (h, w), index in groups:
            super().predict(inputs[index, :, :h, :w],
                            [data_samples[i] for i in index])
        # add_pred_to_datasample filled each sample in place
        return list(data_samples)
