"""Names of the ``torch.profiler.record_function`` ranges of LOGO-CAP.

Defined once, used where the ranges are opened and where they are read:

- :class:`~logocap_mmpose.models.LOGOCAPPoseEstimator` opens the
  ``estimator/*`` ranges in every test step: the data preprocessor
  (normalisation), backbone + neck (once per pass: the image and its flip
  in one, or one each with ``test_cfg.flip_in_one_pass=False``) and the
  head's ``predict``;
- the head opens the ``logocap/*`` ranges around its stages (dense branches
  with the flip fusion, local KEMs, local KAMs, global KAMs / adaptation,
  decode, pose NMS);
- ``tools/benchmark_inference.py`` reads both back from a ``torch.profiler``
  run for the paper's Table 4 breakdown.

A range costs a few microseconds when no profiler records.
"""
from collections import OrderedDict

# estimator ranges (models/pose_estimator.py)
PREPROCESS = 'estimator/preprocess'
BACKBONE = 'estimator/backbone'
HEAD = 'estimator/head'

# head stage ranges (models/heads/logocap_head.py)
DENSE = 'logocap/dense_branches'
LOCAL_KEM = 'logocap/local_kem'
KAM = 'logocap/kam'
GLOBAL_KEM_ADAPTATION = 'logocap/global_kem_adaptation'
DECODE = 'logocap/decode'
POSE_NMS = 'logocap/pose_nms'

#: head stage ranges and the row label a breakdown table gives each
HEAD_STAGES = OrderedDict([
    (DENSE, 'head: heatmap, offset, embedding convs and un-flip'),
    (LOCAL_KEM, 'local KEMs'),
    (KAM, 'local KAMs (message passing)'),
    (GLOBAL_KEM_ADAPTATION, 'global KAMs / contextual adaptation'),
    (DECODE, 'decode'),
    (POSE_NMS, 'pose NMS and packing'),
])
