"""Scan every regular expression in pipeline/ for superlinear backtracking: a developer's tool
(not part of `make bench`), the scan behind the "Large inputs" fixes of 2026-12-05.

    nice -n 19 .venv/bin/python bench/scan_regexes.py [WORD]     # WORD: only patterns containing it

Patterns are collected from the imported modules (module and class attributes, the lists and
dicts they hold, the classifier's Phrases) and from every `re.compile/search/match/...` call with
a literal pattern in the source (inside functions too). For each, inputs are built as a prefix
of a string the pattern matches (generated from its parse tree: literals, one character of each
class, alternatives) followed by a long run of one of RUNS (or the prefix itself repeated), then
a character that makes the match fail; search, findall and match are timed at 500 and 2,000
characters, and a pattern whose time grows more than 7-fold is measured again at 2,000 and 8,000
(best of 3) and reported when it grows more than 8-fold (linear: 4). A pattern used only with
match() or fullmatch() may be reported for search: check how the code calls it.
"""
import ast
import importlib
import inspect
import json
import os
import pathlib
import pkgutil
import re
import signal
import sys
import time
from re import _constants as C
from re import _parser as P

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.chdir(REPO)
import pipeline  # noqa: E402

found = {}  # (pattern, flags) -> set of where
def add(p, flags, where):
    if isinstance(p, bytes): p = 'B:' + p.decode('latin-1')
    else: p = 'S:' + p
    found.setdefault((p, int(flags)), set()).add(where)
SKIP = set()
for m in pkgutil.walk_packages(pipeline.__path__, 'pipeline.'):
    try:
        mod = importlib.import_module(m.name)
    except Exception as e:
        print('import failed:', m.name, e, file=sys.stderr); continue
    def visit(obj, where, depth=0):
        if isinstance(obj, re.Pattern):
            add(obj.pattern, obj.flags & ~re.UNICODE, where)
        elif depth < 3 and isinstance(obj, (tuple, list, set, frozenset)):
            for i, x in enumerate(obj): visit(x, where + f'[{i}]', depth+1)
        elif depth < 3 and hasattr(type(obj), '__slots__') and 'regexes' in getattr(type(obj), '__slots__', ()):
            visit(obj.regexes, where + '.regexes', depth+1)
        elif depth < 3 and isinstance(obj, dict):
            for k, v in obj.items(): visit(v, where + f'[{k!r}]', depth+1); visit(k, where+'.key', depth+1)
    for name, obj in vars(mod).items():
        if inspect.ismodule(obj): continue
        if inspect.isclass(obj) and obj.__module__ == mod.__name__:
            for an, av in vars(obj).items(): visit(av, f'{m.name}.{name}.{an}')
        else:
            visit(obj, f'{m.name}.{name}')
# literal patterns in the source (inside functions too)
FL = {'I': re.I, 'IGNORECASE': re.I, 'M': re.M, 'MULTILINE': re.M, 'S': re.S, 'DOTALL': re.S, 'X': re.X, 'VERBOSE': re.X, 'A': re.A, 'ASCII': re.A}
def const(n):
    try: return ast.literal_eval(n)
    except Exception:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            a, b = const(n.left), const(n.right)
            if isinstance(a, str) and isinstance(b, str): return a + b
        return None
def flags_of(n):
    if n is None: return 0
    if isinstance(n, ast.Attribute) and n.attr in FL: return FL[n.attr]
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
        a, b = flags_of(n.left), flags_of(n.right)
        return None if a is None or b is None else a | b
    return None
nonconst = []
for f in pathlib.Path('pipeline').rglob('*.py'):
    tree = ast.parse(f.read_text())
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) and n.func.value.id == 're' and n.func.attr in ('compile','search','match','fullmatch','findall','finditer','sub','subn','split') and n.args:
            p = const(n.args[0])
            fl = None
            for k in n.keywords:
                if k.arg == 'flags': fl = k.value
            if fl is None:
                idx = {'compile':1,'search':2,'match':2,'fullmatch':2,'findall':2,'finditer':2,'split':3,'sub':4,'subn':4}[n.func.attr]
                if len(n.args) > idx: fl = n.args[idx]
            flags = flags_of(fl)
            if isinstance(p, (str, bytes)) and flags is not None:
                add(p, flags, f'{f}:{n.lineno} re.{n.func.attr}')
            else:
                nonconst.append(f'{f}:{n.lineno} re.{n.func.attr} {ast.unparse(n.args[0])[:100]}')

d = {'patterns': [[p, fl, sorted(w)] for (p, fl), w in found.items()]}
RUNS = [' ', '\t', ':', '-', '.', '5', 'a', '<', '[', '=', "'", '"', '\u3000', '、', ' -', ': ', 'a ', 'a.', '@', '/', '>', '\n', 'x@', '" ', '5 ', '5.', 'あ', '(', ')', ';', ',', '_', '\\', '#', '*']
ENDS = ['\x01', '']

def cat_char(c):
    return {C.CATEGORY_DIGIT: '5', C.CATEGORY_NOT_DIGIT: 'a', C.CATEGORY_SPACE: ' ', C.CATEGORY_NOT_SPACE: 'a',
            C.CATEGORY_WORD: 'a', C.CATEGORY_NOT_WORD: ' '}.get(c, 'a')

def in_chars(items):
    neg = items and items[0][0] is C.NEGATE
    cands = []
    for op, av in items:
        if op is C.LITERAL: cands.append(chr(av))
        elif op is C.RANGE: cands.append(chr(av[0])); cands.append(chr(av[1]))
        elif op is C.CATEGORY: cands.append(cat_char(av))
    if neg:
        excl = set(cands)
        return [c for c in ' a5.x-:' if c not in excl][:2] or ['\u00e9']
    return cands[:3] or ['a']

def gen(seq):
    out = []
    for op, av in seq:
        if op is C.LITERAL: out.append(chr(av))
        elif op is C.NOT_LITERAL: out.append('a' if av != ord('a') else 'b')
        elif op is C.ANY: out.append('x')
        elif op is C.IN: out.append(in_chars(av)[0])
        elif op is C.SUBPATTERN: out.append(gen(av[-1]))
        elif op is C.ATOMIC_GROUP: out.append(gen(av))
        elif op is C.BRANCH: out.append(gen(av[1][0]))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, sub = av; out.append(gen(sub) * max(lo, 1 if hi else 0))
        elif op is C.CATEGORY: out.append(cat_char(av))
    return ''.join(out)

def merge(seq):
    out = []
    for op, av in seq:
        if op is C.LITERAL and out and out[-1][0] == 'LIT':
            out[-1] = ('LIT', out[-1][1] + chr(av))
        elif op is C.LITERAL:
            out.append(('LIT', chr(av)))
        else:
            out.append((op, av))
    return out

def prefixes(seq, limit=60):
    res = {''}; acc = ''
    for op, av in merge(seq):
        if op == 'LIT':
            acc += av; res.add(acc); continue
        for p in item_prefixes(op, av): res.add(acc + p)
        acc += gen([(op, av)])
        res.add(acc)
        if len(res) > limit: break
    return res

def item_prefixes(op, av):
    if op is C.LITERAL: return {chr(av)}
    if op is C.IN: return set(in_chars(av))
    if op is C.SUBPATTERN: return prefixes(av[-1])
    if op is C.ATOMIC_GROUP: return prefixes(av)
    if op is C.BRANCH:
        s = set()
        for b in av[1][:40]: s |= prefixes(b, 30)
        return s
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        lo, hi, sub = av
        g = gen(sub)
        s = {g * lo + p for p in prefixes(sub, 20)}
        return s
    return {gen([(op, av)])}

def timed(fn, limit):
    t = time.perf_counter(); fn(); return time.perf_counter() - t

class TO(Exception): pass
def handler(*a): raise TO()
signal.signal(signal.SIGALRM, handler)


results = []
only = sys.argv[1] if len(sys.argv) > 1 else None
SH = int(os.environ.get('SHARD', '0')); NSH = int(os.environ.get('NSHARDS', '1'))  # SHARD=i NSHARDS=n: every n-th pattern
for idx, (ptxt, flags, where) in enumerate(d['patterns']):
    if idx % NSH != SH: continue
    isb = ptxt.startswith('B:'); src = ptxt[2:]
    if only and only not in src: continue
    try:
        pat = re.compile(src.encode('latin-1') if isb else src, flags)
        tree = P.parse(src, flags)
    except Exception as e:
        print('SKIP', src[:60], e); continue
    prefs = sorted(prefixes(list(tree)), key=len)
    prefs = prefs[:30] + prefs[30::max(1, len(prefs)//30)] if len(prefs) > 60 else prefs
    worst = None
    try:
      for pre in prefs:
        for run in RUNS + ([pre, pre + ' '] if pre else []):
            for end in ENDS:
                def mk(n, run=run):
                    if run in (pre, pre + ' '):
                        s = run * (n // len(run) + 1) + end
                    else:
                        s = pre + run * (n // len(run)) + end
                    return s.encode('utf-8') if isb else s
                small, big = mk(500), mk(2000)
                for meth in ('search', 'findall', 'match'):
                    f = getattr(pat, meth)
                    try:
                        signal.setitimer(signal.ITIMER_REAL, 5)
                        t1 = min(timed(lambda: f(small), 0) for _ in range(2))
                        t2 = timed(lambda: f(big), 0)
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    except TO:
                        t1, t2 = 1, 99
                    if t2 > 1:
                        worst = ((t2, t2 / max(t1, 1e-7)), meth, pre, run, end); raise StopIteration
                    ratio = t2 / max(t1, 1e-7)
                    if t2 > 0.002 and ratio > 7:
                        # verify: best of 3 at 2000 and 8000
                        b2 = mk(2000); b8 = mk(8000)
                        try:
                            signal.setitimer(signal.ITIMER_REAL, 10)
                            t2 = min(timed(lambda: f(b2), 0) for _ in range(3))
                            t8 = min(timed(lambda: f(b8), 0) for _ in range(2))
                            signal.setitimer(signal.ITIMER_REAL, 0)
                        except TO:
                            t2, t8 = 1, 99
                        ratio = t8 / max(t2, 1e-7)
                        t2 = t8
                        if ratio < 8 or t8 < 0.01: continue
                        key = (t2, ratio)
                        if worst is None or key > worst[0]:
                            worst = (key, meth, pre, run, end)
    except StopIteration:
        pass
    if worst:
        (t2, ratio), meth, pre, run, end = worst
        print(f'FLAG {t2:8.3f}s x{ratio:5.1f} {meth:7} pre={pre!r} run={run!r} end={end!r} :: {src[:150]!r} flags={flags} @ {where[:2]}', flush=True)
        results.append([src, flags, where, t2, ratio, meth, pre, run, end])
print('done', len(results))
