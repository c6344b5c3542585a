"""Let MMEngine 0.10's distributed launchers run on machines without CUDA.

MMEngine 0.10.7 assumes a GPU per process in two places:

- ``mmengine.dist.utils._init_dist_pytorch`` (``--launcher pytorch``) and
  ``_init_dist_mpi`` call ``torch.cuda.set_device(local_rank)`` before
  ``init_process_group``; on a CPU build of torch that fails with
  ``module 'torch._C' has no attribute '_cuda_setDevice'``.
- ``Runner.wrap_model`` builds ``MMDistributedDataParallel`` with
  ``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` refuses for
  a module on the CPU.

:func:`enable_cpu_distributed` (run when ``logocap_mmpose`` is imported, so
by every config of this package through ``custom_imports``) wraps those
launcher functions and ``MMDistributedDataParallel.__init__``. The wrappers
change nothing while ``torch.cuda.is_available()`` is True. Without CUDA they
skip ``torch.cuda.set_device``, use the ``gloo`` backend where ``nccl`` (which
needs GPUs) was asked for, and build DDP without ``device_ids`` for a module
on the CPU, so that

    python -m torch.distributed.run --nproc_per_node=2 tools/train.py CFG \\
        --launcher pytorch

trains on CPU processes (and ``tools/test.py`` tests) with no user patch.
"""
import functools
from typing import Callable

import torch

_MARK = '_logocap_cpu_compat'


def _cuda_missing() -> bool:
    return not torch.cuda.is_available()


def _without_cuda_set_device(init_fn: Callable) -> Callable:
    """Wrap an MMEngine ``_init_dist_*`` function (first argument: backend)."""

    @functools.wraps(init_fn)
    def wrapper(backend, *args, **kwargs):
        if not _cuda_missing():
            return init_fn(backend, *args, **kwargs)
        if backend == 'nccl':
            from mmengine.logging import print_log
            print_log(
                'logocap_mmpose: CUDA is not available, so the distributed '
                "backend 'nccl' is replaced by 'gloo' (set env_cfg.dist_cfg."
                "backend='gloo' to silence this)", logger='current',
                level=30)
            backend = 'gloo'
        set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda device: None
        try:
            return init_fn(backend, *args, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    setattr(wrapper, _MARK, True)
    return wrapper


def _ddp_init_for_cpu(init: Callable) -> Callable:
    """Wrap ``MMDistributedDataParallel.__init__``: no ``device_ids`` for a
    module whose parameters all live on the CPU (DDP's rule for CPU
    modules)."""

    @functools.wraps(init)
    def wrapper(self, module, *args, **kwargs):
        if _cuda_missing() and kwargs.get('device_ids') is not None and all(
                p.device.type == 'cpu' for p in module.parameters()):
            kwargs['device_ids'] = None
            kwargs['output_device'] = None
        return init(self, module, *args, **kwargs)

    setattr(wrapper, _MARK, True)
    return wrapper


def enable_cpu_distributed() -> bool:
    """Install the wrappers described in the module docstring (once).

    Returns:
        bool: True when they are installed (now or before), False when this
        MMEngine lacks the functions they wrap.
    """
    try:
        from mmengine.dist import utils as dist_utils
        from mmengine.model.wrappers import MMDistributedDataParallel
    except ImportError:  # pragma: no cover - MMEngine without these modules
        return False
    names = ('_init_dist_pytorch', '_init_dist_mpi')
    if not all(hasattr(dist_utils, name) for name in names):
        return False  # pragma: no cover - another MMEngine layout
    for name in names:
        fn = getattr(dist_utils, name)
        if not getattr(fn, _MARK, False):
            setattr(dist_utils, name, _without_cuda_set_device(fn))
    init = MMDistributedDataParallel.__init__
    if not getattr(init, _MARK, False):
        MMDistributedDataParallel.__init__ = _ddp_init_for_cpu(init)
    return True
