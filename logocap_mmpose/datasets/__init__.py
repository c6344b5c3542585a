from .transforms import LOGOCAPTestResize

__all__ = ['LOGOCAPTestResize']
