"""The method does not import the tooling: nothing under
``logocap_mmpose/models``, ``codecs``, ``datasets`` or ``engine`` imports
``analysis``, ``evaluation``, ``deploy``, ``visualization`` or
``utils.tooling`` / ``utils.memory`` / ``utils.official_checkpoint`` of this
package (an import there would run upward, from the method into what
measures it). ``logocap_runtime`` imports nothing of torch, MMPose or this
package."""
import ast
import os
import os.path as osp

import pytest

from tests.conftest import REPO

METHOD = ('models', 'codecs', 'datasets', 'engine')
TOOLING = ('analysis', 'evaluation', 'deploy', 'visualization',
           'utils.tooling', 'utils.memory', 'utils.official_checkpoint')


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


@pytest.mark.parametrize('part', METHOD)
def test_the_method_imports_no_tooling(part):
    found = []
    for path in python_files(osp.join(REPO, 'logocap_mmpose', part)):
        rel = osp.relpath(osp.dirname(path), REPO).replace(os.sep, '.')
        for module in imported_modules(path, rel):
            if any(module == f'logocap_mmpose.{t}' or
                   module.startswith(f'logocap_mmpose.{t}.')
                   for t in TOOLING):
                found.append(f'{osp.relpath(path, REPO)}: {module}')
    assert found == []


def test_imported_modules_resolves_relative_imports(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text('from ..utils.tooling import x\nfrom .. import deploy\n'
                    'import numpy\n')
    names = set(imported_modules(str(path), 'logocap_mmpose.models'))
    assert {'logocap_mmpose.utils.tooling', 'logocap_mmpose.deploy',
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
