from .logocap_label import LOGOCAPLabel

__all__ = ['LOGOCAPLabel']
