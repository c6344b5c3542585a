"""Make ``import torchvision`` work on a CPU-only torch.

The torchvision wheels on PyPI are CUDA builds. Next to a CPU torch their C++
extension cannot load, and ``import torchvision`` then fails inside its meta
registrations with ``operator torchvision::nms does not exist``. MMPose imports
torchvision for visualization, so every runner entry point would fail.

This module installs a one-shot import hook. The first time ``torchvision`` is
imported it checks whether torchvision's own extension can be loaded. Only when
it cannot, it defines the ``torchvision::nms`` / ``torchvision::qnms`` operator
schemas with ``torch.library`` and gives ``nms`` a plain-PyTorch CPU kernel.
Where the extension loads (a CUDA machine with a matching torch) it does
nothing. Nothing in this project calls torchvision's compiled ops; compiled
mmcv provides the ops MMPose needs.

The file imports nothing from ``logocap_mmpose`` so the set-up script can copy
it into a virtual environment's ``site-packages`` and start it from a ``.pth``
file, which covers ``mim``, MMPose's tools, the inferencer and the tests.
"""
import glob
import importlib.abc
import importlib.util
import os
import sys

_LIBRARY = None  # keeps the torch.library registration alive


def _nms_cpu(dets, scores, iou_threshold: float):
    """Greedy NMS in plain PyTorch. Returns kept indices by descending score."""
    import torch
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for pos in range(len(order)):
        i = order[pos]
        if suppressed[pos]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        w = (torch.minimum(x2[i], x2[rest]) -
             torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) -
             torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        suppressed[pos + 1:] |= iou > iou_threshold
    return torch.stack(keep) if keep else order[:0]


def _op_exists(torch) -> bool:
    try:
        torch.ops.torchvision.nms
        return True
    except (AttributeError, RuntimeError):
        return False


def ensure_torchvision_ops(search_dirs=None) -> bool:
    """Register fallback schemas when torchvision's extension cannot load.

    Args:
        search_dirs (list[str], optional): folders of the torchvision package.
            Found with ``importlib`` when not given.

    Returns:
        bool: True when the fallback was registered, False when torchvision's
        own operators are (or became) available.
    """
    global _LIBRARY
    import torch
    if _op_exists(torch):
        return False
    if search_dirs is None:
        spec = importlib.util.find_spec('torchvision')
        search_dirs = list(spec.submodule_search_locations or []) if spec \
            else []
    for folder in search_dirs:
        for lib in glob.glob(os.path.join(folder, '_C*.so')):
            try:
                torch.ops.load_library(lib)
            except (OSError, RuntimeError):
                continue
            if _op_exists(torch):
                return False
    if _op_exists(torch):  # registered meanwhile (e.g. by the other copy)
        return False
    lib = torch.library.Library('torchvision', 'DEF')
    lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) '
               '-> Tensor')
    lib.impl('nms', _nms_cpu, 'CPU')
    _LIBRARY = lib
    return True


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    """Runs :func:`ensure_torchvision_ops` right before torchvision loads."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'torchvision':
            uninstall()
            try:
                ensure_torchvision_ops()
            except Exception as exc:  # never break the import itself
                print(f'logocap_mmpose: torchvision fallback failed: {exc}',
                      file=sys.stderr)
        return None  # let the normal finders load the module


def _is_hook(finder) -> bool:
    # by name: the start-up copy in site-packages and this module are two
    # module objects, and only one hook may run
    return type(finder).__name__ == _TorchvisionFinder.__name__


def install() -> None:
    """Install the one-shot hook (no-op if torchvision is already imported
    or a hook, from either copy of this file, is installed)."""
    if 'torchvision' in sys.modules:
        return
    if not any(_is_hook(f) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFinder())


def uninstall() -> None:
    """Remove every copy of the hook (before it looks torchvision up)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_hook(f)]


install()
