"""Names of the ``torch.profiler.record_function`` ranges of LOGO-CAP.

Defined once: the head opens the ``logocap/*`` ranges around its stages and
``tools/benchmark_inference.py`` reads them back for the paper's Table 4
breakdown (local KEMs, local KAMs, global KAMs / adaptation, decode).
"""
from collections import OrderedDict

LOCAL_KEM = 'logocap/local_kem'
KAM = 'logocap/kam'
GLOBAL_KEM_ADAPTATION = 'logocap/global_kem_adaptation'
DECODE = 'logocap/decode'

#: head stage ranges and the row label a breakdown table gives each
HEAD_STAGES = OrderedDict([
    (LOCAL_KEM, 'local KEMs'),
    (KAM, 'local KAMs (message passing)'),
    (GLOBAL_KEM_ADAPTATION, 'global KAMs / contextual adaptation'),
    (DECODE, 'decode'),
])
