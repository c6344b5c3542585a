"""The authors' test-time resize, as an MMPose transform.

The authors' test loader (inherited from HigherHRNet) resizes like MMPose's
``BottomupResize(size_factor=64, resize_mode='expand')`` (short side to the
input size, long side to a multiple of 64, same scale on both axes, the image
centred with zero padding), but rounds differently:

- the image centre is ``(int(w / 2 + 0.5), int(h / 2 + 0.5))`` (an integer
  pixel); MMPose 1.3.2's ``BottomupResize`` uses ``(w / 2, h / 2)``, half a
  pixel apart when a side is odd;
- the long side is ``int((L + 63) // 64 * 64)`` of the float resized length
  ``L``, which rounds down when ``L`` lies just above a multiple of 64 (in
  ``(64m, 64m + 1)``), where ``BottomupResize`` takes the next multiple;
- the warp matrix comes from three float32 points through
  ``cv2.getAffineTransform``, as in the authors' ``get_affine_transform``.
"""
from typing import Dict, Sequence, Union

import cv2
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS

# the resize itself is numpy and OpenCV, shared with the torch-free ONNX
# runner
from logocap_runtime.resize import (authors_test_size,  # noqa: F401
                                    authors_test_warp)


@TRANSFORMS.register_module()
class LOGOCAPTestResize(BaseTransform):
    """Resize and pad an image for testing exactly as the authors' code.

    Required keys: ``img``, ``ori_shape``. Modified keys: ``img``,
    ``img_shape``. Added keys: ``input_size``, ``input_center``,
    ``input_scale`` (MMPose's meaning, read by ``add_pred_to_datasample``),
    ``warp_mat``.

    Args:
        input_size (int | tuple): short side of the canvas (a square
            ``(s, s)`` is accepted, as the codec's ``input_size``).
        size_factor (int): both canvas sides are multiples of it.
    """

    def __init__(self,
                 input_size: Union[int, Sequence[int]],
                 size_factor: int = 64):
        super().__init__()
        if not isinstance(input_size, int):
            sizes = set(int(s) for s in input_size)
            if len(sizes) != 1:
                raise ValueError('LOGOCAPTestResize resizes the short side '
                                 'to one size; got input_size='
                                 f'{tuple(input_size)}')
            input_size = sizes.pop()
        self.input_size = int(input_size)
        self.size_factor = int(size_factor)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        img_h, img_w = results.get('ori_shape', img.shape[:2])
        warp = authors_test_warp(img_w, img_h, self.input_size,
                                 self.size_factor)
        results['img'] = cv2.warpAffine(img, warp['warp_mat'],
                                        warp['input_size'])
        results['img_shape'] = warp['input_size'][::-1]
        results['input_size'] = warp['input_size']
        results['input_center'] = warp['input_center']
        results['input_scale'] = warp['input_scale']
        results['warp_mat'] = warp['warp_mat']
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'size_factor={self.size_factor})')
