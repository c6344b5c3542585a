from .augmentation import (LOGOCAPRandomAffine, affine_params_of,
                           sample_authors_affine)
from .heatmap_mask import (LOGOCAPGetHeatmapMask, regions_to_mask,
                           warp_to_heatmap)
from .loading import ImageInputError, LOGOCAPLoadImage, as_bgr_image
from .transforms import LOGOCAPTestResize

__all__ = [
    'ImageInputError', 'LOGOCAPGetHeatmapMask', 'LOGOCAPLoadImage',
    'LOGOCAPRandomAffine', 'LOGOCAPTestResize', 'affine_params_of',
    'as_bgr_image', 'regions_to_mask', 'sample_authors_affine',
    'warp_to_heatmap'
]
