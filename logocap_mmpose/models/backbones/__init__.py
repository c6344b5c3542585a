from .timm_weights import (TimmOfflinePretrained, convert_efficientnet_pytorch,
                           load_timm_weights)

__all__ = [
    'TimmOfflinePretrained', 'convert_efficientnet_pytorch',
    'load_timm_weights'
]
