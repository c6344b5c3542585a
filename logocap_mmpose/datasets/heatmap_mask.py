"""The ignore mask of the heatmap loss, as the authors compute it.

The heatmap loss ignores the regions of persons it cannot learn from: crowd
regions and persons with no labelled keypoint. COCO stores a person's region
as polygons and a crowd region as run-length encoding (RLE).
:class:`LOGOCAPGetHeatmapMask` differs from MMPose 1.3.2's
``BottomupGetHeatmapMask`` in two ways, both visible on the two images of
the parity fixture (48 x 48 maps; ``tests/test_parity`` checks the mask):

- it decodes RLE regions; MMPose's transform skips them, so crowd regions
  stay in the loss (image 0 of the fixture: 13 ignored cells instead of the
  authors' 200);
- it warps the image-size mask straight to the heatmap grid (the image ->
  input affine scaled by heatmap / input size, bilinear, threshold 0.5), as
  the authors; MMPose warps to the input size and then resizes, which moves
  the border (57 and 39 of the 2304 cells of the fixture's images even with
  RLE decoded).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.image import imflip
from mmcv.transforms import BaseTransform
from xtcocotools import mask as cocomask

from mmpose.registry import TRANSFORMS


def regions_to_mask(segs: Sequence, height: int, width: int) -> np.ndarray:
    """Union of COCO regions as one (height, width) uint8 mask.

    Args:
        segs (Sequence): COCO ``segmentation`` values: a list of polygons
            (flat x, y lists), an uncompressed RLE (dict with a list of
            counts) or a compressed RLE (dict with a string of counts).
            None (datasets without regions, e.g. CrowdPose) adds nothing.
        height (int): image height.
        width (int): image width.

    Raises:
        TypeError: a region of none of these kinds.
    """
    rles: List[dict] = []
    for seg in segs:
        if seg is None:
            continue
        if isinstance(seg, dict) and isinstance(seg.get('counts'),
                                                (str, bytes)):
            rles.append(seg)
        elif isinstance(seg, dict):
            rles.append(cocomask.frPyObjects(seg, height, width))
        elif isinstance(seg, (list, tuple)):
            polygons = [p for p in seg if len(p) >= 6]  # 3+ points
            if polygons:
                rles.extend(cocomask.frPyObjects(polygons, height, width))
        else:
            raise TypeError('a COCO segmentation is a list of polygons or '
                            f'an RLE dict, got {type(seg).__name__}')
    if not rles:
        return np.zeros((height, width), np.uint8)
    return cocomask.decode(cocomask.merge(rles)).astype(np.uint8)


def warp_to_heatmap(mask: np.ndarray, warp_mat: Optional[np.ndarray],
                    input_size: Tuple[int, int],
                    heatmap_size: Tuple[int, int]) -> np.ndarray:
    """Warp an image-size mask to the heatmap grid: (h, w) bool, True where
    more than half of a cell's bilinear sample lies in the mask.

    Args:
        mask (np.ndarray): (H_img, W_img) mask.
        warp_mat (np.ndarray, optional): (2, 3) image -> input affine; None
            for an input that is the image resized to ``input_size``.
        input_size (tuple): input (w, h).
        heatmap_size (tuple): heatmap (w, h).
    """
    (in_w, in_h), (w, h) = input_size, heatmap_size
    if warp_mat is None:
        warp_mat = np.array([[in_w / mask.shape[1], 0, 0],
                             [0, in_h / mask.shape[0], 0]])
    to_heatmap = np.diag([w / in_w, h / in_h])
    mat = to_heatmap @ np.asarray(warp_mat, np.float64)
    warped = cv2.warpAffine(mask.astype(np.float32), mat, (w, h),
                            flags=cv2.INTER_LINEAR)
    return warped > 0.5


@TRANSFORMS.register_module()
class LOGOCAPGetHeatmapMask(BaseTransform):
    """``heatmap_mask``: (h, w) bool, False on the regions of crowds and of
    persons with no labelled keypoint (``invalid_segs``, which MMPose's COCO
    datasets gather in bottom-up mode), True elsewhere.

    Put it after ``GenerateTarget`` (it reads the heatmap size from
    ``heatmaps``). Required keys: ``heatmaps``, ``ori_shape`` (or
    ``img_shape``), ``input_size``; optional: ``invalid_segs``,
    ``warp_mat``, ``flip``, ``flip_direction``.
    """

    def transform(self, results: Dict) -> Dict:
        if 'heatmaps' not in results:
            raise KeyError('LOGOCAPGetHeatmapMask needs the heatmaps of '
                           'GenerateTarget: put it after GenerateTarget')
        if not isinstance(results['heatmaps'], np.ndarray):
            raise TypeError('LOGOCAPGetHeatmapMask takes one heatmap array '
                            '(no multi-level heatmaps), got '
                            f"{type(results['heatmaps']).__name__}")
        h, w = results['heatmaps'].shape[-2:]
        shape = results.get('ori_shape')
        img_h, img_w = (shape if shape is not None else
                        results['img_shape'])[:2]
        invalid = regions_to_mask(results.get('invalid_segs', []), img_h,
                                  img_w)
        input_size = tuple(results.get('input_size', (img_w, img_h)))
        invalid = warp_to_heatmap(invalid, results.get('warp_mat'),
                                  input_size, (w, h))
        if results.get('flip', False) and results.get('flip_direction'):
            invalid = imflip(invalid, results['flip_direction'])
        results['heatmap_mask'] = ~invalid
        return results
