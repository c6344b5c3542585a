"""No import runs upward: nothing under ``logocap_mmpose/models``,
``codecs``, ``datasets``, ``engine`` or ``apis`` (the method and its MMPose
entry points) imports ``analysis`` (what measures it), ``deploy`` (its
export) or ``utils.official_checkpoint`` of this package, and ``deploy``
imports nothing of ``analysis``. ``logocap_runtime`` imports nothing of
torch, MMPose or this package."""
import ast
import os
import os.path as osp

import pytest

from tests.conftest import REPO

METHOD = ('models', 'codecs', 'datasets', 'engine', 'apis')
TOOLING = ('analysis', 'deploy', 'utils.official_checkpoint')


def imported_modules(path: str, package: str):
    """Absolute names of the modules a file imports (relative imports
    resolved against ``package``, the file's package)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1])
                module = f'{base}.{node.module}' if node.module else base
            else:
                module = node.module or ''
            yield module
            for alias in node.names:  # `from .. import deploy`
                yield f'{module}.{alias.name}'


def python_files(folder: str):
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith('.py'):
                yield osp.join(root, name)


def upward_imports(part: str, above) -> list:
    """``file: module`` for every import under ``logocap_mmpose/<part>`` of
    a module of this package under one of ``above``."""
    found = []
    for path in python_files(osp.join(REPO, 'logocap_mmpose', part)):
        rel = osp.relpath(osp.dirname(path), REPO).replace(os.sep, '.')
        for module in imported_modules(path, rel):
            if any(module == f'logocap_mmpose.{t}' or
                   module.startswith(f'logocap_mmpose.{t}.') for t in above):
                found.append(f'{osp.relpath(path, REPO)}: {module}')
    return found


@pytest.mark.parametrize('part', METHOD)
def test_the_method_imports_no_tooling(part):
    assert upward_imports(part, TOOLING) == []


def test_the_export_imports_no_measurement():
    assert upward_imports('deploy', ('analysis', )) == []


def test_imported_modules_resolves_relative_imports(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text('from ..analysis.timing import x\nfrom .. import deploy\n'
                    'import numpy\n')
    names = set(imported_modules(str(path), 'logocap_mmpose.models'))
    assert {'logocap_mmpose.analysis.timing', 'logocap_mmpose.deploy',
            'numpy'} <= names


def test_the_runtime_imports_no_training_stack():
    found = []
    for path in python_files(osp.join(REPO, 'logocap_runtime')):
        for module in imported_modules(path, 'logocap_runtime'):
            top = module.split('.')[0]
            if top in ('torch', 'mmcv', 'mmengine', 'mmpose', 'mmdet',
                       'logocap_mmpose'):
                found.append(f'{osp.relpath(path, REPO)}: {module}')
    assert found == []
