from .heatmap_mask import (LOGOCAPGetHeatmapMask, regions_to_mask,
                           warp_to_heatmap)
from .loading import ImageInputError, LOGOCAPLoadImage, as_bgr_image
from .transforms import LOGOCAPTestResize

__all__ = [
    'ImageInputError', 'LOGOCAPGetHeatmapMask', 'LOGOCAPLoadImage',
    'LOGOCAPTestResize', 'as_bgr_image', 'regions_to_mask', 'warp_to_heatmap'
]
