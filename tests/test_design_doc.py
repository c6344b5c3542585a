"""``docs/design.md`` matches the code: every module path it cites exists,
and every code name it cites is defined in this repository (or in MMPose,
MMEngine or torch, which it also names).

A path may be written from the repository root, from ``logocap_mmpose/``
or from its own folder (``refinement.py`` in the row of ``models/``), so a
path is found when a file or folder of the repository ends with it. The
proposal's names that section 6 compares the layout with are the only
paths allowed to be absent, and they must stay absent."""
import glob
import os.path as osp
import re

import pytest

from tests.conftest import REPO

DOC = osp.join(REPO, 'docs', 'design.md')
# the proposal's file names that section 6 compares the layout with
PROPOSED_ONLY = {'codecs/center_offset.py'}
# the shared data the tests read, beside the repository
SHARED_DATA = '../shared/data'
# where a cited name may be defined
SOURCES = ('logocap_mmpose/**/*.py', 'logocap_runtime/**/*.py', 'tools/*.py',
           'configs/**/*.py')
# modules whose attributes the document names (``torch.no_grad``)
LIBRARIES = ('torch', 'torch.nn.functional', 'torch.profiler')
# `name`, `a.b.name`, `name(...)`: code, not prose (a word with '_', a
# capital inside, or a call)
CODE_NAME = re.compile(r'^[A-Za-z_][\w.]*(\(.*\))?$')
DEFINITION = r'(?:def|class)\s+{0}\b|\b{0}\s*[:=]|\b{0}\b\s*=|[\'"]{0}[\'"]'


def cited_spans():
    with open(DOC) as f:
        text = f.read()
    # inline code only: fenced blocks hold diagrams and shell lines
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    return re.findall(r'`([^`\n]+)`', text)


def is_path(span: str) -> bool:
    return ('/' in span or span.endswith(('.py', '.md'))) and \
        ' ' not in span and '::' not in span and '*' not in span and \
        '<' not in span


def repo_paths():
    """Every file and folder of the repository, relative to its root."""
    import subprocess
    files = subprocess.run(
        ['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
        cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    paths = set(files)
    for path in files:
        parts = path.split('/')
        paths.update('/'.join(parts[:i]) for i in range(1, len(parts)))
    return paths


def found(span: str, paths) -> bool:
    span = span.rstrip('/')
    return any(p == span or p.endswith('/' + span) for p in paths)


def in_mmpose_checkout(span: str) -> bool:
    """A path of MMPose's own repository (``tools/train.py``), as its
    package ships it under ``.mim``."""
    import mmpose
    mim = osp.join(osp.dirname(mmpose.__file__), '.mim')
    return osp.exists(osp.join(mim, span.rstrip('/')))


def test_every_cited_path_exists():
    paths = repo_paths()
    missing = sorted({
        span for span in cited_spans()
        if is_path(span) and span not in PROPOSED_ONLY
        and not span.startswith(SHARED_DATA) and not found(span, paths)
        and not in_mmpose_checkout(span)
    })
    assert missing == [], f'docs/design.md cites paths that do not exist: ' \
        f'{missing}'
    assert not any(found(span, paths) for span in PROPOSED_ONLY)


def test_a_missing_path_would_be_caught():
    paths = repo_paths()
    assert found('models/refinement.py', paths)
    assert found('refinement.py', paths) and found('test_models/', paths)
    assert not found('evaluation/upper_bound.py', paths)
    assert not found('visualization/', paths)


def code_names():
    names = set()
    for span in cited_spans():
        if is_path(span) or not CODE_NAME.match(span):
            continue
        name = span.split('(')[0].split('.')[-1]
        if '_' in name.strip('_') or re.search(r'[a-z][A-Z]', name) or \
                '(' in span:
            names.add(name)
    return sorted(names)


@pytest.fixture(scope='module')
def source_text():
    import mmengine
    import mmpose
    texts = []
    roots = [REPO, osp.dirname(mmpose.__file__), osp.dirname(mmengine.__file__)]
    patterns = [osp.join(REPO, p) for p in SOURCES] + \
        [osp.join(root, '**', '*.py') for root in roots[1:]]
    for pattern in patterns:
        for path in glob.glob(pattern, recursive=True):
            with open(path, errors='replace') as f:
                texts.append(f.read())
    return '\n'.join(texts)


def defined(name: str, source_text: str, paths=()) -> bool:
    """A def, class, assignment or key in the sources, an attribute of
    :data:`LIBRARIES`, or a module or folder of the repository or of
    MMPose's checkout (``logocap_runtime``, ``analyze_logs``)."""
    import importlib
    if re.search(DEFINITION.format(re.escape(name)), source_text):
        return True
    if any(found(name + end, paths) or in_mmpose_checkout(
            f'tools/analysis_tools/{name}{end}') for end in ('', '.py')):
        return True
    return any(hasattr(importlib.import_module(m), name) for m in LIBRARIES)


def test_the_doc_cites_code_names():
    """Positive control: the check below has names to check."""
    names = code_names()
    assert {'RefinementGeometry', 'median_seconds', 'test_options',
            'kam_pose_scores'} <= set(names)
    assert len(names) > 40


def test_every_cited_name_is_defined(source_text):
    paths = repo_paths()
    undefined = [
        name for name in code_names() if not defined(name, source_text, paths)
    ]
    assert undefined == [], f'docs/design.md cites names defined nowhere: ' \
        f'{undefined}'


def test_a_renamed_name_would_be_caught(source_text):
    """The check fails for a name that is not defined."""
    assert defined('RefinementGeometry', source_text)
    assert not defined('RefinementGeometry' + 'Renamed', source_text)
