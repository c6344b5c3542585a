"""The float audit (``tests/float_audit.py``): the share of a bound that a
comparison used, its records, and the report over several runs."""
import json

import numpy as np
import pytest
import torch

from tests import float_audit


def test_share_of_the_bound_by_hand():
    # |1.3 - 1| / (0.1 + 0.5 * 1) = 0.5; |2 - 2| = 0 uses nothing
    dev, usage = float_audit._usage([1.3, 2.0], [1.0, 2.0], 0.1, 0.5)
    assert dev == pytest.approx(0.3) and usage == pytest.approx(0.5)
    # NaN is left to the assertion, a zero bound with a difference is inf
    assert float_audit._usage([np.nan], [1.0], 0.1, 0)[1] == 0.0
    assert float_audit._usage([1.0], [2.0], 0.0, 0.0)[1] == np.inf


def test_records_every_wrapped_comparison(tmp_path, monkeypatch):
    path = tmp_path / 'audit.jsonl'
    monkeypatch.setenv(float_audit.AUDIT_ENV, str(path))
    monkeypatch.setenv('ATEN_CPU_CAPABILITY', 'default')
    close = float_audit._wrap_torch(torch.testing.assert_close)
    allclose = float_audit._wrap_numpy(np.testing.assert_allclose)
    close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.004]), atol=0.01,
          rtol=0)
    allclose(np.array([3.0]), np.array([3.5]), atol=1.0)
    float_audit.assert_below(0.25, 1.0, 'a value')
    with pytest.raises(AssertionError, match='a value: 2 > bound 1'):
        float_audit.assert_below(2.0, 1.0, 'a value')
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [round(e['usage'], 3) for e in lines] == [0.4, 0.5, 0.25, 2.0]
    assert lines[0]['site'].startswith('tests/test_float_audit.py:')
    assert lines[0]['variant']['ATEN_CPU_CAPABILITY'] == 'default'


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(float_audit.AUDIT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    float_audit.assert_below(0.5, 1.0)
    assert list(tmp_path.iterdir()) == []


def test_report_keeps_the_worst_run_per_site(tmp_path, capsys):
    files = []
    for name, usage in (('a', 0.02), ('b', 0.3)):
        path = tmp_path / f'{name}.jsonl'
        path.write_text(json.dumps(dict(
            test='tests/x.py::t[p]', site='tests/x.py:1', deviation=usage,
            usage=usage, variant=dict(ATEN_CPU_CAPABILITY=name,
                                      OMP_NUM_THREADS='1'))) + '\n')
        files.append(str(path))
    assert float_audit.main(files) == 1  # 0.3 of the bound: under 10x
    out = capsys.readouterr().out
    assert '| `tests/x.py:1` | 0.3 | 0.3 | 3x **(<10x)** | b/native/1t | 2 |' \
        in out
    assert float_audit.main(files[:1]) == 0
