"""Inference entry points that extend MMPose's (imported on demand: this
package imports ``mmpose.apis``)."""
from .batched_inferencer import (BatchedMMPoseInferencer,
                                 BatchedPose2DInferencer, merge_collated)

__all__ = ['BatchedMMPoseInferencer', 'BatchedPose2DInferencer',
           'merge_collated']
