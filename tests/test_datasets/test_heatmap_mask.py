"""``LOGOCAPGetHeatmapMask``: every COCO region kind, the warp to the heatmap
grid and the flip."""
import numpy as np
import pytest
from xtcocotools import mask as cocomask

from logocap_mmpose.datasets import (LOGOCAPGetHeatmapMask, regions_to_mask,
                                     warp_to_heatmap)

H, W = 40, 60


def box_polygon(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_polygons_and_both_rle_kinds_are_decoded():
    block = np.zeros((H, W), np.uint8, order='F')
    block[10:20, 30:50] = 1
    compressed = cocomask.encode(block)
    # uncompressed counts, alternating zeros and ones in column-major order:
    # columns 10..29, rows 10..19
    head = 10 * H + 10
    counts = [head] + [10, 30] * 19 + [10, H * W - head - 10 * 20 - 30 * 19]
    uncompressed = dict(size=[H, W], counts=counts)
    expected_unc = np.zeros((H, W), np.uint8)
    expected_unc[10:20, 10:30] = 1
    for seg, expected in ((compressed, block),
                          (uncompressed, expected_unc)):
        np.testing.assert_array_equal(regions_to_mask([seg], H, W), expected)
    poly = regions_to_mask([box_polygon(0, 0, 9.5, 4.5)], H, W)
    assert poly[:4, :9].all() and not poly[10:].any()
    union = regions_to_mask([compressed, box_polygon(0, 0, 9.5, 4.5)], H, W)
    assert union.sum() == block.sum() + poly.sum()
    assert regions_to_mask([], H, W).sum() == 0
    assert regions_to_mask([None], H, W).sum() == 0  # CrowdPose: no regions
    with pytest.raises(TypeError, match='segmentation'):
        regions_to_mask([3], H, W)


def test_warp_to_the_heatmap_grid_and_flip():
    block = np.zeros((H, W), np.uint8, order='F')
    block[8:24, 0:16] = 1  # image px, top left
    crowd = cocomask.encode(block)
    # the input is the image scaled by 2 (120 x 80), the heatmap by 1/4
    warp = np.array([[2.0, 0, 0], [0, 2.0, 0]])
    results = dict(heatmaps=np.zeros((18, 20, 30), np.float32),
                   ori_shape=(H, W), input_size=(120, 80),
                   warp_mat=warp, invalid_segs=[crowd])
    mask = LOGOCAPGetHeatmapMask()(dict(results))['heatmap_mask']
    assert mask.shape == (20, 30) and mask.dtype == bool
    # image px 0..15 x 8..23 -> heatmap cells 0..7 x 4..11 ignored
    assert not mask[4:12, 0:8].any() and mask[:, 9:].all()
    assert mask.sum() == 20 * 30 - 8 * 8
    flipped = LOGOCAPGetHeatmapMask()(
        dict(results, flip=True, flip_direction='horizontal'))['heatmap_mask']
    np.testing.assert_array_equal(flipped, mask[:, ::-1])
    # no affine: the image resized to the input
    direct = warp_to_heatmap(block, None, (120, 80), (30, 20))
    np.testing.assert_array_equal(~direct, mask)
    with pytest.raises(KeyError, match='GenerateTarget'):
        LOGOCAPGetHeatmapMask()(dict(ori_shape=(H, W), input_size=(W, H)))
