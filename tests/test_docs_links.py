"""The README and the pages under ``docs/`` link to each other and into the
repository; a moved section or a renamed file must not leave a dead link.

Every relative markdown link ``[text](target)`` (and ``![alt](src)``, and
reference definitions ``[name]: target``) of README.md, docs/*.md and
configs/logocap/README.md must name a file or folder that exists, relative to
the markdown file; a ``#anchor`` (alone, or after a ``.md`` target) must be a
heading of that page under GitHub's slug rule. Links inside code blocks and
inline code are not links. Absolute URLs (``http(s)://``, ``mailto:``) are not
checked.

The README is the project's front page: short, and it keeps the test command
that ``.ci/run`` runs.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_COMMAND = '.venv/bin/python -m pytest tests'
README_MAX_LINES = 250


def markdown_files() -> List[str]:
    """README.md, every docs/*.md and configs/logocap/README.md, as paths
    relative to the repository root."""
    files = ['README.md']
    docs = osp.join(REPO, 'docs')
    if osp.isdir(docs):
        files += sorted(
            osp.join('docs', name) for name in os.listdir(docs)
            if name.endswith('.md'))
    files.append(osp.join('configs', 'logocap', 'README.md'))
    return [f for f in files if osp.isfile(osp.join(REPO, f))]


# ---------------------------------------------------------------- parsing

_FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
_INLINE_CODE = re.compile(r'(`+)(.+?)\1', re.S)
# [text](target "title"): the text may hold one level of brackets and line
# breaks; the target is <...> or has no spaces (balanced parentheses allowed).
_LINK = re.compile(
    r'!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]'
    r'\(\s*(<[^>\n]*>|(?:[^\s()]|\([^\s()]*\))*)'
    r'(?:\s+(?:"[^"]*"|\'[^\']*\'|\([^)]*\)))?\s*\)')
_REF_DEF = re.compile(r'^ {0,3}\[([^\]]+)\]:\s*(<[^>]*>|\S+)', re.M)
_ATX = re.compile(r'^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$')
_SETEXT = re.compile(r'^ {0,3}(=+|-+)[ \t]*$')
_HTML_ID = re.compile(r'<a\s[^>]*(?:name|id)\s*=\s*["\']([^"\']+)["\']',
                      re.I)
_SCHEME = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')


def blank_code_blocks(text: str) -> str:
    """``text`` with every line of a fenced code block (fences included)
    emptied, so that line numbers stay those of the file."""
    out = []
    fence = None  # the opening fence while inside a block
    for line in text.split('\n'):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                out.append('')
                continue
            out.append(line)
        else:
            # a block closes with a fence of the same character, at least as
            # long as the opening one, and nothing after it
            if (match and match.group(1)[0] == fence[0]
                    and len(match.group(1)) >= len(fence)
                    and not line.strip().lstrip(fence[0])):
                fence = None
            out.append('')
    return '\n'.join(out)


def _blank_inline_code(text: str) -> str:
    # same length, no brackets or parentheses left inside code spans
    return _INLINE_CODE.sub(lambda m: 'x' * len(m.group(0)), text)


def extract_links(text: str) -> List[Tuple[int, str]]:
    """(line number, target) of every markdown link, image and reference
    definition of ``text``, in order; code blocks and inline code hold no
    link. Targets keep their ``#anchor``; ``<...>`` is unwrapped."""
    prose = _blank_inline_code(blank_code_blocks(text))
    found = []
    for match in list(_LINK.finditer(prose)) + list(_REF_DEF.finditer(prose)):
        target = match.group(2).strip()
        if target.startswith('<') and target.endswith('>'):
            target = target[1:-1].strip()
        line = prose.count('\n', 0, match.start()) + 1
        found.append((match.start(), line, target))
    return [(line, target) for _, line, target in sorted(found)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (before de-duplication): the
    rendered text lower-cased, every character that is not a letter, digit,
    ``_``, ``-`` or space removed, each space replaced by ``-``."""
    text = heading.strip()
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)  # links -> text
    text = re.sub(r'<[^>]+>', '', text)  # inline HTML tags
    text = text.replace('`', '')
    text = text.lower()
    text = ''.join(ch for ch in text if ch.isalnum() or ch in '_- ')
    return text.replace(' ', '-')


def heading_anchors(text: str) -> Set[str]:
    """Every anchor a page offers: its headings' slugs, repeated slugs
    numbered as GitHub numbers them (``x``, ``x-1``, ``x-2``, ...), and
    ``<a name=...>`` / ``id=...`` anchors."""
    lines = blank_code_blocks(text).split('\n')
    headings = []
    for i, line in enumerate(lines):
        match = _ATX.match(line)
        if match:
            headings.append(match.group(2) or '')
            continue
        previous = lines[i - 1] if i else ''
        if (_SETEXT.match(line) and previous.strip()
                and not _ATX.match(previous)
                and not previous.lstrip().startswith(('|', '-', '*', '>'))):
            headings.append(previous)
    anchors: Set[str] = set()
    seen: Dict[str, int] = {}
    for heading in headings:
        slug = github_slug(heading)
        if slug in seen:
            seen[slug] += 1
            anchors.add(f'{slug}-{seen[slug]}')
        else:
            seen[slug] = 0
            anchors.add(slug)
    anchors.update(_HTML_ID.findall(text))
    return anchors


def check_links(md_path: str, root: str) -> List[str]:
    """The broken links of the markdown file ``md_path`` (absolute), one
    message each; ``root`` is the repository root, which no link may leave."""
    with open(md_path, encoding='utf-8') as f:
        text = f.read()
    here = osp.dirname(md_path)
    name = osp.relpath(md_path, root)
    problems = []
    for line, target in extract_links(text):
        if not target or _SCHEME.match(target) or target.startswith('//'):
            continue
        path, _, anchor = target.partition('#')
        path = unquote(path.split('?')[0])
        if path:
            if path.startswith('/'):  # GitHub: relative to the repository
                resolved = osp.normpath(osp.join(root, path.lstrip('/')))
            else:
                resolved = osp.normpath(osp.join(here, path))
            if osp.relpath(resolved, root).startswith(os.pardir):
                problems.append(f'{name}:{line}: {target}: leaves the '
                                'repository')
                continue
            if not osp.exists(resolved):
                problems.append(f'{name}:{line}: {target}: no such file or '
                                'folder')
                continue
        else:
            resolved = md_path
        if anchor and resolved.endswith('.md') and osp.isfile(resolved):
            with open(resolved, encoding='utf-8') as f:
                anchors = heading_anchors(f.read())
            if unquote(anchor) not in anchors:
                problems.append(
                    f'{name}:{line}: {target}: no heading with the anchor '
                    f'#{anchor} in {osp.relpath(resolved, root)}')
    return problems


# ------------------------------------------------------------------ tests

HANDMADE = '''# Title

See [the design](docs/design.md), ![a figure](img/fig.png "Figure 1") and
[`tools/x.py`](../tools/x.py#L10), a [link over two
lines](other.md#some-section), [a (bracketed) [word]](a_(b).md) and
[the web](https://example.org/x) or [mail](mailto:a@b.c).
Not links: `[code](inline.md)` and

```python
x = [a](not_a_link.md)
```

~~~~
[also](not_a_link.md)
```
still inside
~~~~

[ref]: <ref target.md>
[jump](#title)
'''


def test_extract_links_on_a_handmade_page():
    assert extract_links(HANDMADE) == [
        (3, 'docs/design.md'),
        (3, 'img/fig.png'),
        (4, '../tools/x.py#L10'),
        (4, 'other.md#some-section'),
        (5, 'a_(b).md'),
        (6, 'https://example.org/x'),
        (6, 'mailto:a@b.c'),
        (19, 'ref target.md'),
        (20, '#title'),
    ]


def test_github_slug():
    cases = {
        "Use the authors' released checkpoints":
            'use-the-authors-released-checkpoints',
        'Upper bound of a local-window search (paper, Fig. 2)':
            'upper-bound-of-a-local-window-search-paper-fig-2',
        'Quick start (CPU, about 30 minutes)':
            'quick-start-cpu-about-30-minutes',
        '2. Memory': '2-memory',
        '3.1 Training': '31-training',
        '`LOGOCAPHead` and `test_cfg`': 'logocaphead-and-test_cfg',
        'Design notes: a -> b, and why': 'design-notes-a---b-and-why',
        'See [the docs](docs/x.md)': 'see-the-docs',
    }
    for heading, slug in cases.items():
        assert github_slug(heading) == slug, heading


def test_heading_anchors_number_repeats_and_skip_code():
    text = ('# Results\n\n## Setup\n\n## Setup\n\n```bash\n# not a heading\n'
            '```\n\nSetext heading\n--------------\n\n| a |\n|---|\n'
            '<a name="custom"></a>\n')
    assert heading_anchors(text) == {
        'results', 'setup', 'setup-1', 'setext-heading', 'custom'}


def test_check_links_reports_broken_links(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'page.md').write_text('# Page\n\n## Real section\n')
    readme = tmp_path / 'README.md'
    readme.write_text(
        '# Front\n\n'
        '[ok](docs/page.md), [ok](docs/page.md#real-section), [ok](docs),\n'
        '[ok](#front), [ok](https://nowhere.invalid/x.md)\n'
        '[missing](docs/gone.md)\n'
        '[bad anchor](docs/page.md#no-such-section)\n'
        '[bad local anchor](#nowhere)\n'
        '[outside](../elsewhere.md)\n')
    problems = check_links(str(readme), str(tmp_path))
    assert len(problems) == 4, problems
    assert 'README.md:5: docs/gone.md: no such file or folder' in problems
    assert any('#no-such-section' in p for p in problems)
    assert any('#nowhere' in p for p in problems)
    assert any('leaves the repository' in p for p in problems)


@pytest.mark.parametrize('md_file', markdown_files())
def test_markdown_links_resolve(md_file):
    problems = check_links(osp.join(REPO, md_file), REPO)
    assert not problems, 'broken links:\n' + '\n'.join(problems)


def test_every_page_is_checked():
    files = markdown_files()
    assert 'README.md' in files
    assert osp.join('configs', 'logocap', 'README.md') in files
    assert any(f.startswith('docs' + os.sep) for f in files)


def _readme_lines() -> List[str]:
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        return f.read().split('\n')


def test_readme_is_a_front_page():
    lines = _readme_lines()
    if lines and lines[-1] == '':
        lines = lines[:-1]
    assert len(lines) <= README_MAX_LINES, (
        f'README.md has {len(lines)} lines (at most {README_MAX_LINES}): '
        'move details to a page under docs/ and link it')


def test_readme_keeps_the_test_command_in_a_code_block():
    lines = _readme_lines()
    assert TEST_COMMAND in lines, (
        f'README.md must hold the line {TEST_COMMAND!r} (.ci/run runs it)')
    # inside a code block: blanking the code blocks removes it
    blanked = blank_code_blocks('\n'.join(lines)).split('\n')
    assert TEST_COMMAND not in blanked
    with open(osp.join(REPO, '.ci', 'run'), encoding='utf-8') as f:
        assert TEST_COMMAND in f.read().split('\n')


def test_readme_links_every_docs_page():
    linked = {osp.normpath(target.partition('#')[0])
              for _, target in extract_links('\n'.join(_readme_lines()))}
    pages = [f for f in markdown_files() if f.startswith('docs' + os.sep)]
    missing = [f for f in pages if f not in linked]
    assert not missing, f'README.md does not link {missing}'
