"""How close each float comparison of the suite comes to its bound.

Float kernels round differently on other CPUs (PyTorch and oneDNN pick
their vector code by CPU), so a bound must hold with a margin on every CPU,
not only on the one a test was written on. This module measures that margin.

With ``LOGOCAP_FLOAT_AUDIT=<file.jsonl>`` set, every call of
``torch.testing.assert_close`` and ``numpy.testing.assert_allclose`` made from
a test, and every :func:`assert_below`, appends one JSON line to the file:

- ``test``: the pytest node id; ``site``: ``tests/<file>.py:<line>``, the
  line of the test that made the comparison (``via`` the helper's line when
  a helper in a test file made it);
- ``deviation``: the largest ``|actual - expected|`` (or the value checked);
- ``usage``: the largest ``|actual - expected| / (atol + rtol * |expected|)``,
  the share of the bound used (1 fails; 0.1 is the 10x margin required);
- ``variant``: the CPU-emulation settings of the run
  (``ATEN_CPU_CAPABILITY``, ``DNNL_MAX_CPU_ISA``, ``OMP_NUM_THREADS``).

Without the variable the comparisons are untouched. The report merges the
files of several runs (e.g. one per emulated CPU)::

    python -m tests.float_audit audit_*.jsonl [--min-usage 0.01]
"""
import argparse
import functools
import json
import math
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional

import numpy as np

AUDIT_ENV = 'LOGOCAP_FLOAT_AUDIT'
VARIANT_ENV = ('ATEN_CPU_CAPABILITY', 'DNNL_MAX_CPU_ISA', 'OMP_NUM_THREADS',
               'NPY_DISABLE_CPU_FEATURES')
TESTS = osp.dirname(osp.abspath(__file__))
REQUIRED_MARGIN = 10.0
_THIS = osp.abspath(__file__)

_current_test: List[str] = ['']


def set_current_test(nodeid: str) -> None:
    _current_test[0] = nodeid


def _site() -> str:
    """``tests/<file>.py:<line>`` of the outermost caller in a test file
    (the line of the test itself, not of a helper it called), followed by
    ``via <file>:<line>`` of the innermost one where they differ."""
    lines = []
    frame = sys._getframe(2)
    while frame is not None:
        path = osp.abspath(frame.f_code.co_filename)
        if path.startswith(TESTS) and path != _THIS:
            lines.append(f'tests/{osp.relpath(path, TESTS)}:{frame.f_lineno}')
        frame = frame.f_back
    if not lines:
        return '?'
    if len(lines) == 1:
        return lines[0]
    return f'{lines[-1]} via {lines[0].split("/")[-1]}'


def _record(deviation: float, usage: float) -> None:
    path = os.environ.get(AUDIT_ENV)
    if not path:
        return
    entry = dict(test=_current_test[0], site=_site(),
                 deviation=float(deviation), usage=float(usage),
                 variant={k: os.environ.get(k, '') for k in VARIANT_ENV})
    with open(path, 'a') as f:
        f.write(json.dumps(entry) + '\n')


def _usage(actual, expected, atol: float, rtol: float):
    """(largest |a - e|, largest |a - e| / (atol + rtol |e|)) over the
    finite pairs; NaN and inf are left to the assertion itself."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    try:
        a, e = np.broadcast_arrays(a, e)
    except ValueError:
        return math.nan, math.nan
    finite = np.isfinite(a) & np.isfinite(e)
    if not finite.any():
        return 0.0, 0.0
    diff = np.abs(a - e)[finite]
    allowed = atol + rtol * np.abs(e)[finite]
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    return float(diff.max()), float(ratio.max())


def _to_numpy(x):
    if hasattr(x, 'detach'):
        return x.detach().cpu().double().numpy()
    return x


def _wrap_torch(original: Callable) -> Callable:

    @functools.wraps(original)
    def assert_close(actual, expected, *args, rtol=None, atol=None,
                     **kwargs):
        import torch
        if torch.is_tensor(actual) and actual.dtype.is_floating_point:
            default_rtol, default_atol = {
                torch.float16: (1e-3, 1e-5),
                torch.bfloat16: (1.6e-2, 1e-5),
                torch.float64: (1e-7, 1e-7),
            }.get(actual.dtype, (1.3e-6, 1e-5))
            r = default_rtol if rtol is None else rtol
            a = default_atol if atol is None else atol
            _record(*_usage(_to_numpy(actual), _to_numpy(expected),
                            float(a), float(r)))
        return original(actual, expected, *args, rtol=rtol, atol=atol,
                        **kwargs)

    return assert_close


def _wrap_numpy(original: Callable) -> Callable:

    @functools.wraps(original)
    def assert_allclose(actual, desired, rtol=1e-7, atol=0, *args,
                        **kwargs):
        a = np.asarray(_to_numpy(actual))
        if a.dtype.kind == 'f':
            _record(*_usage(a, _to_numpy(desired), float(atol), float(rtol)))
        return original(actual, desired, rtol, atol, *args, **kwargs)

    return assert_allclose


def assert_below(value: float, bound: float, what: str = '') -> None:
    """``assert value <= bound`` for a measured deviation, recorded by the
    audit (usage ``value / bound``)."""
    value = float(value)
    _record(value, value / bound if bound > 0 else math.inf)
    assert value <= bound, f'{what}: {value:.3g} > bound {bound:.3g}'


def install() -> None:
    """Wrap the two comparison functions (idempotent). Called by
    ``tests/conftest.py`` when the audit is on."""
    import numpy.testing
    import torch.testing
    if not getattr(torch.testing.assert_close, '_audited', False):
        torch.testing.assert_close = _wrap_torch(torch.testing.assert_close)
        torch.testing.assert_close._audited = True
    if not getattr(numpy.testing.assert_allclose, '_audited', False):
        numpy.testing.assert_allclose = _wrap_numpy(
            numpy.testing.assert_allclose)
        numpy.testing.assert_allclose._audited = True


def _variant_name(variant: Dict[str, str]) -> str:
    isa = variant.get('ATEN_CPU_CAPABILITY') or 'native'
    dnnl = variant.get('DNNL_MAX_CPU_ISA') or 'native'
    threads = variant.get('OMP_NUM_THREADS') or '?'
    return f'{isa}/{dnnl}/{threads}t'


def report(paths: List[str], min_usage: float = 0.0,
           out: Optional[str] = None) -> List[dict]:
    """One row per comparison site: the largest deviation and share of the
    bound over all runs, which variant gave it, and how many runs saw it."""
    rows: Dict[str, dict] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                row = rows.setdefault(e['site'], dict(
                    site=e['site'], deviation=0.0, usage=0.0, variant='',
                    variants=set()))
                row['variants'].add(_variant_name(e['variant']))
                if e['usage'] != e['usage']:  # NaN: unbroadcastable
                    continue
                row['deviation'] = max(row['deviation'], e['deviation'])
                if e['usage'] >= row['usage']:
                    row['usage'] = e['usage']
                    row['variant'] = _variant_name(e['variant'])
    ordered = sorted(rows.values(), key=lambda r: -r['usage'])
    lines = ['| site | largest deviation | share of bound | margin | '
             'variant | runs |', '|---|---|---|---|---|---|']
    for r in ordered:
        if r['usage'] < min_usage:
            continue
        margin = (f"{1 / r['usage']:.0f}x" if r['usage'] > 0 else 'exact')
        flag = ' **(<10x)**' if r['usage'] * REQUIRED_MARGIN > 1 else ''
        lines.append(f"| `{r['site']}` | {r['deviation']:.3g} | "
                     f"{r['usage']:.3g} | {margin}{flag} | {r['variant']} | "
                     f"{len(r['variants'])} |")
    text = '\n'.join(lines)
    print(text)
    if out:
        with open(out, 'w') as f:
            f.write(text + '\n')
    return ordered


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('files', nargs='+', help='audit JSON-lines files')
    parser.add_argument('--min-usage', type=float, default=0.0,
                        help='list only sites above this share of the bound')
    parser.add_argument('--out', help='also write the table here')
    args = parser.parse_args(argv)
    rows = report(args.files, args.min_usage, args.out)
    short = [r for r in rows if r['usage'] * REQUIRED_MARGIN > 1]
    print(f'\n{len(rows)} sites, {len(short)} with less than '
          f'{REQUIRED_MARGIN:.0f}x margin')
    return 1 if short else 0


if __name__ == '__main__':
    raise SystemExit(main())
