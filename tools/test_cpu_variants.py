"""Run the test suite as if on other CPUs, and report how close every float
comparison came to its bound.

PyTorch picks its vector kernels by CPU and oneDNN its instruction set, so a
float result can differ in its last bits between machines. Two variables
force other choices on this machine: ``ATEN_CPU_CAPABILITY`` (``default``,
``avx2``, ``avx512``) and ``DNNL_MAX_CPU_ISA`` (``SSE41``, ``AVX2``, ...);
``NPY_DISABLE_CPU_FEATURES`` does the same for NumPy's loops.
Each variant runs ``python -m pytest`` with the float audit on
(``tests/float_audit.py``); the tool prints passed / failed / minutes per
run, then the comparison sites whose margin is below 10x.

Examples::

    # the whole suite under the three variants, at 1 and 2 threads
    python tools/test_cpu_variants.py --threads 1 2 --out-dir work_dirs/cpu
    # what CI adds: the float-bound tests under the variant farthest from
    # any AVX2 / AVX-512 machine (scalar ATen kernels, SSE4.1 oneDNN code)
    python tools/test_cpu_variants.py --variants sse41 -- -m float_bound
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import float_audit  # noqa: E402

# NumPy dispatches its own SIMD loops (exp, sums of the codec's targets):
# NPY_DISABLE_CPU_FEATURES turns its AVX-512 (and AVX2) paths off; features
# a CPU lacks only raise an ImportWarning
_NPY_AVX512 = 'AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL'
VARIANTS = {
    'native': {},
    'avx2': dict(ATEN_CPU_CAPABILITY='avx2', DNNL_MAX_CPU_ISA='AVX2',
                 NPY_DISABLE_CPU_FEATURES=_NPY_AVX512),
    'sse41': dict(ATEN_CPU_CAPABILITY='default', DNNL_MAX_CPU_ISA='SSE41',
                  NPY_DISABLE_CPU_FEATURES='SSE42 POPCNT AVX F16C FMA3 AVX2 '
                  + _NPY_AVX512),
}
EMULATION_ENV = ('ATEN_CPU_CAPABILITY', 'DNNL_MAX_CPU_ISA',
                 'NPY_DISABLE_CPU_FEATURES')


def run_one(name: str, threads: int, pytest_args, out_dir: str) -> dict:
    audit = osp.join(out_dir, f'audit_{name}_{threads}t.jsonl')
    if osp.exists(audit):
        os.remove(audit)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), **VARIANTS[name])
    env[float_audit.AUDIT_ENV] = audit
    for key in EMULATION_ENV:
        if key not in VARIANTS[name]:
            env.pop(key, None)
    log = osp.join(out_dir, f'pytest_{name}_{threads}t.log')
    start = time.time()
    with open(log, 'w') as f:
        rc = subprocess.call([sys.executable, '-m', 'pytest', *pytest_args],
                             cwd=ROOT, env=env, stdout=f,
                             stderr=subprocess.STDOUT)
    minutes = (time.time() - start) / 60
    with open(log) as f:
        tail = f.read()[-4000:]
    counts = {word: int(n) for n, word in re.findall(
        r'(\d+) (passed|failed|skipped|error|errors|deselected)', tail)}
    print(f'{name:7s} {threads}t: rc={rc} {counts} {minutes:.1f} min '
          f'(log {log})', flush=True)
    return dict(variant=name, threads=threads, rc=rc, minutes=minutes,
                audit=audit, **counts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=list(VARIANTS), help='default: all three')
    parser.add_argument('--threads', nargs='+', type=int, default=[2])
    parser.add_argument('--out-dir', default='work_dirs/cpu_variants')
    parser.add_argument('--require-margin', action='store_true',
                        help='also fail when a comparison used more than a '
                        'tenth of its bound (default: only report it)')
    parser.add_argument('pytest_args', nargs='*', default=['tests'],
                        help='after --: arguments for pytest')
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    runs = [run_one(n, t, args.pytest_args or ['tests'], args.out_dir)
            for n in args.variants for t in args.threads]
    print('\n| variant | threads | passed | failed | minutes |\n'
          '|---|---|---|---|---|')
    for r in runs:
        print(f"| {r['variant']} | {r['threads']} | {r.get('passed', 0)} | "
              f"{r.get('failed', 0) + r.get('error', 0) + r.get('errors', 0)}"
              f" | {r['minutes']:.1f} |")
    audits = [r['audit'] for r in runs if osp.exists(r['audit'])]
    print()
    margin_rc = float_audit.main(
        audits + ['--min-usage', '0.01', '--out',
                  osp.join(args.out_dir, 'float_audit.md')]) if audits else 0
    if any(r['rc'] for r in runs):
        return 1
    return margin_rc if args.require_margin else 0


if __name__ == '__main__':
    raise SystemExit(main())
