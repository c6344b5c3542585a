"""Let torch >= 2.6 load MMEngine checkpoints with its default ``weights_only``.

Since torch 2.6, ``torch.load`` unpickles only allow-listed globals. MMEngine
0.10 checkpoints also pickle numpy arrays and scalars (in ``meta`` and the
message hub) and MMEngine's ``HistoryBuffer``, so ``tools/test.py`` with a
checkpoint, ``--resume`` and ``MMPoseInferencer`` fail with
``UnpicklingError``. Instead of switching ``weights_only`` off globally, we
allow-list exactly the classes those checkpoints reference.
"""
import builtins
from typing import List

import numpy as np
import torch


def mmengine_checkpoint_globals() -> List[object]:
    """The globals an MMEngine (0.10.x) checkpoint pickles beyond tensors."""
    from mmengine.logging import HistoryBuffer
    try:  # numpy >= 1.25 exposes the core module under a private name too
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 2
        from numpy._core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
        np.uint16, np.uint32, np.uint64, np.float16, np.float32, np.float64,
        np.str_, np.object_)]
    return [
        HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype,
        builtins.getattr, *dtype_classes
    ]


def register_safe_globals() -> bool:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``torch.load``.

    Returns:
        bool: False on a torch without ``add_safe_globals`` (< 2.4), where
        ``weights_only`` does not default to True and nothing is needed.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    add(mmengine_checkpoint_globals())
    return True
