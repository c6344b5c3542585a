"""Analyses of trained models (nothing here is registered)."""
from .upper_bound import (DEFAULT_WINDOWS, annotation_arrays,
                          evaluate_upper_bound, markdown_table,
                          oracle_keypoints, oracle_samples, plot_upper_bound,
                          window_offsets)

__all__ = [
    'DEFAULT_WINDOWS', 'annotation_arrays', 'evaluate_upper_bound',
    'markdown_table', 'oracle_keypoints', 'oracle_samples',
    'plot_upper_bound', 'window_offsets'
]
