"""The optional ONNX packages (``onnx``, ``onnxruntime``: the ``onnx``
extra of ``setup.py``), imported in one place so that a missing one is one
line that names the package, what needs it and the fix.

- :func:`import_optional`: the module, or ``ImportError`` with that line;
- :func:`missing_reason`: that line for the first package of several that
  cannot be imported (None when all can), for tools that skip a step.
"""
import importlib
from types import ModuleType
from typing import Optional, Sequence

# setup.py: extras_require['onnx'] = ['onnx>=1.12', 'onnxruntime>=1.12']
ONNX_EXTRA = 'onnx'
ONNX_PACKAGES = ('onnx', 'onnxruntime')


def missing_message(package: str, purpose: str,
                    error: Optional[ImportError] = None) -> str:
    """The one-line reason why ``purpose`` cannot run without ``package``.

    Args:
        package (str): module name, e.g. ``'onnxruntime'``.
        purpose (str): what needs it, e.g. ``'the ONNX export'``.
        error (ImportError, optional): the failed import; one that is not
            the package's absence is quoted (its first line).
    """
    state = 'is not installed'
    if error is not None and getattr(error, 'name', None) != package:
        first_line = str(error).strip().splitlines()[:1]
        state = f'fails to import ({first_line[0] if first_line else error})'
    return (f'{package} {state}, and {purpose} needs it: pip install '
            f'{package}, or pip install -e ".[{ONNX_EXTRA}]" (onnx and '
            'onnxruntime)')


def import_optional(package: str, purpose: str) -> ModuleType:
    """Import an optional package.

    Args:
        package (str): module name, e.g. ``'onnx'``.
        purpose (str): what needs it, for the error.

    Raises:
        ImportError: one line, see :func:`missing_message`.
    """
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(missing_message(package, purpose, exc),
                          name=package) from exc


def missing_reason(purpose: str,
                   packages: Sequence[str] = ONNX_PACKAGES) -> Optional[str]:
    """:func:`missing_message` of the first of ``packages`` that cannot be
    imported; None when all can."""
    for package in packages:
        try:
            import_optional(package, purpose)
        except ImportError as exc:
            return str(exc)
    return None
