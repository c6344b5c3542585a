"""Analyses of trained models (nothing here is registered)."""
from .upper_bound import (DEFAULT_WINDOWS, annotation_arrays,
                          correlation_table, evaluate_upper_bound,
                          upper_bound_table, oks_scored_samples,
                          oracle_keypoints, oracle_samples, plot_upper_bound,
                          score_oks_correlation, true_pose_oks,
                          window_offsets)

__all__ = [
    'DEFAULT_WINDOWS', 'annotation_arrays', 'correlation_table',
    'evaluate_upper_bound', 'upper_bound_table', 'oks_scored_samples',
    'oracle_keypoints', 'oracle_samples', 'plot_upper_bound',
    'score_oks_correlation', 'true_pose_oks', 'window_offsets'
]
