from .logocap_head import LOGOCAPHead

__all__ = ['LOGOCAPHead']
