"""The grouped settings of :class:`LOGOCAPHead` and their defaults.

Architecture comes in sub-configs, as MMPose users read heads such as RTMO:

- ``branch_cfg``: the three 1x1 conv branches on the stride-4 features
  (``heatmap_channels``, ``offset_channels``, ``embedding_channels``,
  ``norm_cfg``, ``act_cfg``);
- ``kem_cfg``: KEM geometry and sampling (``local_size`` S,
  ``local_extent``, the half range of the unscaled local grid in px,
  ``global_size`` a, ``reweigh_sigma``, None for ``(a - 1) / 6``, and
  ``sampling``: 'centred', cell ``u`` centred at input ``s*u + (s-1)/2``,
  this package's convention, or 'authors', the authors' reading of the maps
  that their weights need; see ``models/kem.py``);
- ``cmp_cfg``: the message passing (``channels`` of its three blocks and the
  ``norm_cfg`` of the second block: Attentive Norm, or BN for the paper's
  Table 5 ablation);
- ``adaptation_cfg``: contextual adaptation and decoding (``impl`` 'fft',
  the true convolution through FFTs, or 'conv', the authors' grouped
  conv2d; ``top2_lambda``; ``kams_only_decode``, the decoding of the
  ``kams_only`` test mode: 'argmax', the authors' partial refinement, the
  largest KAM cell scored by its value, or 'top2', the top-2 average of the
  other modes);
- ``quality_cfg``: the learned pose-quality score (``models/quality.py``),
  off when None: ``inputs``, ``hidden``, ``detach``, ``seed``, ``loss``.

Training-only settings (``num_proposals``, ``oks_threshold``,
``inject_gt_proposals``) are read from ``model.train_cfg``, which MMPose's
pose estimators hand to ``head.loss``, as ``model.test_cfg`` reaches
``head.predict``. A flat key on the head (``global_kem_size=...``) is a
``TypeError`` naming it.

:data:`TEST_CFG` lists every key of ``model.test_cfg`` that the package
reads (the head, ``LOGOCAPPoseEstimator`` and MMPose's
``BottomupPoseEstimator`` it extends), with its default: the one list the
ONNX deployment's decisions are checked against
(``deploy/settings.py``, ``tests/test_deploy/test_export_settings.py``).
"""
import copy
from typing import Dict, Optional

from ..adaptation import ADAPTATION_IMPLS
from ..refinement import SAMPLINGS

BRANCH_CFG = dict(
    heatmap_channels=32,
    offset_channels=256,
    embedding_channels=64,
    norm_cfg=dict(type='BN'),
    act_cfg=dict(type='ReLU', inplace=True))
KEM_CFG = dict(
    local_size=11,
    local_extent=5.0,
    global_size=97,
    reweigh_sigma=None,
    sampling='centred')
CMP_CFG = dict(
    channels=(512, 256, 128),
    norm_cfg=dict(type='AttentiveNorm', num_mixtures=20))
ADAPTATION_CFG = dict(
    impl='fft', top2_lambda=0.75, kams_only_decode='argmax')
# the quality head (models/quality.py), off unless quality_cfg is given:
# its inputs (all three groups: chosen on the fit benchmark,
# docs/measurements.md), hidden width, whether its features carry no
# gradient, the seed of its own initialisation, and its loss
QUALITY_CFG = dict(
    inputs=('scores', 'kam_stats', 'cmp_pool'),
    hidden=64,
    detach=True,
    seed=0,
    loss=dict(type='PoseQualityLoss', loss_weight=1.0))
# nonfinite_loss is read by LOGOCAPPoseEstimator (models/nonfinite.py)
TRAIN_CFG = dict(num_proposals=30, oks_threshold=0.5,
                 inject_gt_proposals=False, nonfinite_loss='raise')
KAMS_ONLY_DECODES = ('argmax', 'top2')

#: every ``model.test_cfg`` key read by the package, and its default
TEST_CFG = dict(
    # LOGOCAPPoseEstimator / MMPose's BottomupPoseEstimator
    flip_test=False,  # add the horizontally flipped image's maps
    flip_in_one_pass=True,  # image and flip through the network as one batch
    fuse_conv_bn=True,  # fold BatchNorm into the convs before predicting
    channels_last=False,  # run the network on channels-last memory
    scales=None,  # multi-scale test, e.g. [0.5, 1, 2] (None: [1])
    multiscale_size_divisor=32,  # input sides of the other scales
    multiscale_test=False,  # MMPose's multi-scale test (aug_scales)
    # LOGOCAPHead.predict
    mode='full',  # models/refinement.py MODES
    max_proposals=None,  # centres decoded per image (None: the codec's)
    nms_before_refine=False,  # drop duplicate initial poses first
    kam_score=None,  # None | 'product' | 'replace'
    pose_score='heatmap',  # 'heatmap' | 'quality' | 'product'
    output_heatmaps=False,  # also return the fused maps (pred_fields)
    # models/pose_nms.py
    nms_dist_thr=0.05,  # <= 0: no pose NMS
    nms_joints_thr=None,  # None: K // 2
    max_num_people=30,
    nms_order='score',  # 'score' (MMPose) | 'proposal' (the authors)
)

DEFAULTS = dict(branch_cfg=BRANCH_CFG, kem_cfg=KEM_CFG, cmp_cfg=CMP_CFG,
                adaptation_cfg=ADAPTATION_CFG)


def _merged(defaults: dict, given: Optional[dict], group: str,
            error: type = TypeError) -> dict:
    """A deep copy of ``defaults`` updated by ``given``; an unknown key
    is an ``error`` naming ``group``."""
    cfg = copy.deepcopy(defaults)
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise error(f'{group} has keys LOGOCAPHead does not use: '
                    f'{unknown}; known: {sorted(defaults)}')
    cfg.update(given)
    return cfg


def group_head_settings(groups: Dict[str, Optional[dict]]
                        ) -> Dict[str, dict]:
    """Complete the sub-configs.

    Args:
        groups (dict): ``branch_cfg``, ``kem_cfg``, ``cmp_cfg`` and
            ``adaptation_cfg`` as given (None for the defaults).

    Returns:
        dict: the four complete sub-configs.

    Raises:
        TypeError: an unknown key.
        ValueError: an unknown ``sampling``, ``impl`` or
            ``kams_only_decode``.
    """
    cfgs = {name: _merged(DEFAULTS[name], groups.get(name), name)
            for name in DEFAULTS}
    cfgs['cmp_cfg']['norm_cfg'] = dict(cfgs['cmp_cfg']['norm_cfg'])
    if cfgs['kem_cfg']['sampling'] not in SAMPLINGS:
        raise ValueError(f'kem_cfg.sampling must be one of {SAMPLINGS}, '
                         f"got {cfgs['kem_cfg']['sampling']!r}")
    if cfgs['adaptation_cfg']['impl'] not in ADAPTATION_IMPLS:
        raise ValueError(f'adaptation_cfg.impl must be one of '
                         f"{ADAPTATION_IMPLS}, got "
                         f"{cfgs['adaptation_cfg']['impl']!r}")
    if cfgs['adaptation_cfg']['kams_only_decode'] not in KAMS_ONLY_DECODES:
        raise ValueError(f'adaptation_cfg.kams_only_decode must be one of '
                         f'{KAMS_ONLY_DECODES}, got '
                         f"{cfgs['adaptation_cfg']['kams_only_decode']!r}")
    return cfgs


def quality_settings(quality_cfg: Optional[dict]) -> Optional[dict]:
    """``QUALITY_CFG`` updated by ``quality_cfg``; None (no quality head)
    when ``quality_cfg`` is None."""
    if quality_cfg is None:
        return None
    cfg = _merged(QUALITY_CFG, quality_cfg, 'quality_cfg')
    cfg['inputs'] = tuple(cfg['inputs'])
    return cfg


def training_settings(train_cfg: Optional[dict]) -> dict:
    """``TRAIN_CFG`` updated by ``model.train_cfg``; an unknown key of
    ``train_cfg`` is an error."""
    return _merged(TRAIN_CFG, train_cfg, 'model.train_cfg', KeyError)
