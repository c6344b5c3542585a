"""Drawings of LOGO-CAP's intermediate stages (nothing here is registered)."""
from .kem_kam import (draw_kem_kam, kem_kam_stages, resolve_keypoints,
                      visualize_kem_kam)

__all__ = [
    'draw_kem_kam', 'kem_kam_stages', 'resolve_keypoints', 'visualize_kem_kam'
]
