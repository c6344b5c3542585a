from .timm_features import TIMMFeatures, convert_efficientnet_pytorch

__all__ = ['TIMMFeatures', 'convert_efficientnet_pytorch']
