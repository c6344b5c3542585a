"""How the measurement tools write what they measured: markdown tables
(:class:`Column`, :func:`markdown_table`; rows are mappings read by column
key), the report file (:func:`write_report`) and the sentences beside the
DEKR peer (:func:`time_ratio_sentence`, :func:`workload_note`)."""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence


@dataclass(frozen=True)
class Column:
    """A markdown table column: the row key it shows, its title and the
    format of its values (``str.format`` syntax, e.g. ``'{:.1f}'``)."""
    key: str
    title: str
    fmt: str = '{}'

    def cell(self, row: Mapping[str, Any], missing: str = '-') -> str:
        value = row.get(self.key)
        if value is None:
            return missing
        return self.fmt.format(value)


def proposals_word(num: int) -> str:
    """'proposal' or 'proposals', for ``num`` of them."""
    return 'proposal' if num == 1 else 'proposals'


def markdown_table(columns: Sequence[Column],
                   rows: Sequence[Mapping[str, Any]],
                   missing: str = '-') -> str:
    """A markdown table whose rows are mappings read by column key.

    A key absent from a row (or None) prints as ``missing``; keys of a row
    that no column names are left out.
    """
    lines = ['| ' + ' | '.join(c.title for c in columns) + ' |',
             '|' + '|'.join('---' for _ in columns) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(c.cell(row, missing)
                                       for c in columns) + ' |')
    return '\n'.join(lines)


def write_report(report: str, path: Optional[str]) -> None:
    """Write a tool's report (plus a final newline) to ``path``, creating
    its folder; nothing when ``path`` is empty."""
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            f.write(report + '\n')


def time_ratio_sentence(logocap_ms: float, dekr_ms: float,
                        condition: str = '') -> str:
    """The time ratio as a plain sentence: "LOGO-CAP takes 0.44x DEKR's time
    per image." (``condition`` and a colon in front when given)."""
    ratio = logocap_ms / dekr_ms
    sentence = f"LOGO-CAP takes {ratio:.2f}x DEKR's time per image."
    return f'{condition}: {sentence}' if condition else sentence


def workload_note(proposals: Mapping[str, float], trained: Mapping[str, bool],
                  forced: Optional[int] = None) -> str:
    """What the two models worked on, and whether that was the same.

    Args:
        proposals (dict): mean proposals per image of ``'DEKR'`` (instances
            decoded) and ``'LOGO-CAP'`` (proposals refined).
        trained (dict): whether each model loaded a checkpoint.
        forced (int, optional): the proposal count of the equal-work rows,
            if they were timed.

    Returns:
        str: empty when both models are trained and worked on the same
        number of proposals.
    """
    dekr, logocap = proposals['DEKR'], proposals['LOGO-CAP']
    random = [k for k in ('DEKR', 'LOGO-CAP') if not trained[k]]
    same = abs(dekr - logocap) < 0.05
    if not random and same:
        return ''
    weights = ('random weights' if len(random) == 2 else
               f'random {random[0]} weights' if random else 'trained weights')
    note = (f'{weights}: DEKR finds {dekr:.1f} instances per image, LOGO-CAP '
            f'refines {logocap:.1f} proposals; timings compare '
            + ('equal numbers of proposals' if same else 'unequal work'))
    if forced:
        note += (f'. The "{forced} proposals forced" rows give both models '
                 f'{forced} proposals per image')
    return note + '.'
