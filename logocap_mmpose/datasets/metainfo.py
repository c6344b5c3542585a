"""Dataset-meta lookups shared by the head and the configs."""
import os.path as osp
from typing import Optional, Sequence

import numpy as np


def resolve_metainfo_file(path: str) -> str:
    """Find a dataset-meta config file without MMPose's fallback warning.

    MMPose's configs name their meta files relative to the MMPose repository
    (``'configs/_base_/datasets/coco.py'``), which only exists when the
    working directory is an MMPose checkout. ``parse_pose_metainfo`` then
    falls back to its packaged copy with a warning. This looks the path up in
    this order, and returns the first file that exists: the path as given
    (absolute, or relative to the working directory), ``mmpose::REL`` and
    ``configs/REL`` under MMPose's packaged ``.mim/configs``, and the file
    name under ``.mim/configs/_base_/datasets``. A path found nowhere is
    returned unchanged, so ``parse_pose_metainfo`` reports it.
    """
    path = str(path)
    if osp.isfile(path):
        return path
    import mmpose
    mim_configs = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs')
    rel = path
    if rel.startswith('mmpose::'):
        rel = rel[len('mmpose::'):]
    rel = rel.replace('\\', '/')
    if rel.startswith('configs/'):
        rel = rel[len('configs/'):]
    for candidate in (osp.join(mim_configs, rel),
                      osp.join(mim_configs, '_base_', 'datasets',
                               osp.basename(rel))):
        if not osp.isabs(rel) and osp.isfile(candidate):
            return candidate
    return path


def resolve_keypoint_sigmas(keypoint_sigmas: Optional[Sequence[float]],
                            metainfo: Optional[dict],
                            num_keypoints: int) -> np.ndarray:
    """Per-keypoint OKS sigmas (K,), given or read from the dataset meta.

    Raises:
        ValueError: when neither is given, or when their count is not
            ``num_keypoints``.
    """
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    if keypoint_sigmas is None:
        if metainfo is None:
            raise ValueError('LOGOCAPHead needs keypoint sigmas: set '
                             '`keypoint_sigmas` or `metainfo` (e.g. '
                             "dict(from_file='configs/_base_/datasets/"
                             "coco.py'))")
        metainfo = dict(metainfo)
        if 'from_file' in metainfo:
            metainfo['from_file'] = resolve_metainfo_file(
                metainfo['from_file'])
        keypoint_sigmas = parse_pose_metainfo(metainfo)['sigmas']
    sigmas = np.asarray(keypoint_sigmas, np.float32).reshape(-1)
    if len(sigmas) != num_keypoints:
        raise ValueError(f'LOGOCAPHead has num_keypoints={num_keypoints} '
                         f'but {len(sigmas)} keypoint sigmas were given; '
                         'the dataset meta and the head disagree')
    return sigmas
