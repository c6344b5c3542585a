from .loading import ImageInputError, LOGOCAPLoadImage, as_bgr_image
from .transforms import LOGOCAPTestResize

__all__ = [
    'ImageInputError', 'LOGOCAPLoadImage', 'LOGOCAPTestResize', 'as_bgr_image'
]
