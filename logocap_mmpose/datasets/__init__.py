from .augmentation import (LOGOCAPRandomAffine, affine_params_of,
                           sample_authors_affine)
from .checked_datasets import (DataPathCheckMixin, LOGOCAPCocoDataset,
                               LOGOCAPCrowdPoseDataset, LOGOCAPOCHumanDataset)
from .heatmap_mask import (LOGOCAPGetHeatmapMask, regions_to_mask,
                           warp_to_heatmap)
from .loading import ImageInputError, LOGOCAPLoadImage, as_bgr_image
from .transforms import LOGOCAPTestResize

__all__ = [
    'DataPathCheckMixin', 'ImageInputError', 'LOGOCAPCocoDataset',
    'LOGOCAPCrowdPoseDataset', 'LOGOCAPGetHeatmapMask', 'LOGOCAPLoadImage',
    'LOGOCAPOCHumanDataset', 'LOGOCAPRandomAffine', 'LOGOCAPTestResize',
    'affine_params_of', 'as_bgr_image', 'regions_to_mask',
    'sample_authors_affine', 'warp_to_heatmap'
]
