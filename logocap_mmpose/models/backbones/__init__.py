from .efficientnet_lite import EfficientNetLite, convert_lite_state_dict

__all__ = ['EfficientNetLite', 'convert_lite_state_dict']
