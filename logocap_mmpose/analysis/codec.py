"""The encode cost of ``LOGOCAPLabel`` beside MMPose's ``SPR`` (DEKR's
codec), on random persons in a 512x512 input with 128x128 heatmaps."""
import numpy as np

from .timing import median_seconds


def codec_encode_report(persons: int = 10, repeats: int = 9,
                        seed: int = 0) -> str:
    """Median milliseconds per encode of both codecs, measured in one run,
    and their ratio, as a markdown table and a sentence.

    Args:
        persons (int): random persons (17 keypoints each) per image.
        repeats (int): encodes per codec; the median counts.
        seed (int): seed of the random keypoints.
    """
    from mmpose.codecs import SPR
    from mmpose.registry import KEYPOINT_CODECS
    rng = np.random.default_rng(seed)
    kpts = rng.uniform(0, 511, (persons, 17, 2)).astype(np.float32)
    vis = np.ones((persons, 17), np.float32)
    area = np.full(persons, 5000.0, np.float32)
    ours = KEYPOINT_CODECS.build(
        dict(type='LOGOCAPLabel', input_size=(512, 512),
             heatmap_size=(128, 128)))
    spr = SPR(input_size=(512, 512), heatmap_size=(128, 128), sigma=(4, 2),
              minimal_diagonal_length=32**0.5,
              generate_keypoint_heatmaps=True)
    t_ours = 1e3 * median_seconds(
        lambda: ours.encode(kpts, vis, area=area), repeats)[0]
    t_spr = 1e3 * median_seconds(lambda: spr.encode(kpts, vis), repeats)[0]
    return (f'| codec | ms / encode ({persons} persons) |\n|---|---|\n'
            f'| LOGOCAPLabel | {t_ours:.1f} |\n| SPR (DEKR) | {t_spr:.1f} |\n'
            f"\nLOGOCAPLabel takes {t_ours / t_spr:.3f}x SPR's time per "
            'encode.')
