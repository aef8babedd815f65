"""Port a sql/ query (DuckDB dialect, the single source) to Spark SQL with sqlglot.

Reads the query text, its parameters and sql/macros.sql; returns Spark SQL text; writes nothing.
The rewrites, in order (tests/test_lake_port.py holds each sql/ file to its golden port):

1. DuckDB macros of sql/macros.sql are expanded in place: a scalar macro call becomes its body
   with the arguments substituted (parenthesised); a table macro in FROM becomes a derived table.
2. `$name` parameters are bound as literals (Spark SQL has no named parameters for a whole
   text): strings, numbers, booleans, NULL; a list becomes ARRAY(...); an aware datetime becomes
   CAST('<UTC time>' AS TIMESTAMP) (the Spark session runs in UTC, lake.spark sets it); a date
   CAST('<iso>' AS DATE). A parameter the query uses but `params` lacks is an InputError.
3. DuckDB's `timezone(zone, ts)` is read as `ts AT TIME ZONE zone` (the same function), which
   sqlglot ports; `string_agg(DISTINCT x, sep ORDER BY x)` becomes
   `CASE WHEN size(collect_set(x)) = 0 THEN NULL ELSE array_join(array_sort(collect_set(x)), sep) END`
   (Spark 4's LISTAGG(DISTINCT ...) beside another DISTINCT aggregate fails in its optimizer
   with a ClassCastException; sorted distinct values joined are the same string); a select-list
   alias used inside a window of the same SELECT (DuckDB allows it, Spark refuses "lateral
   column alias in window") is replaced by its expression; constant arithmetic inside INTERVAL
   is folded;
   `list(x ORDER BY k, ...)` (sqlglot would drop the order: COLLECT_LIST) becomes
   `TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(k IS NULL, k, ..., x))), e -> e.v)`, an unordered
   `list(x)` `TRANSFORM(COLLECT_LIST(STRUCT(x)), e -> e.v)` (DuckDB's list keeps NULLs,
   COLLECT_LIST drops them); `epoch(ts)` (sqlglot: UNIX_TIMESTAMP, whole seconds) becomes
   `UNIX_MICROS(ts) / 1000000` (DuckDB's epoch keeps the fraction), `epoch_us(ts)`
   `UNIX_MICROS(ts)`, and `to_timestamp(seconds)` `TIMESTAMP_MICROS(...)`: Spark's parser takes `INTERVAL '6' DAY`, not
   `INTERVAL (7 - 1) DAY`.
4. sqlglot generates Spark SQL (its DuckDB -> Spark rules: AT TIME ZONE -> FROM_UTC_TIMESTAMP,
   list_contains -> ARRAY_CONTAINS, arg_max -> MAX_BY, string_agg ... ORDER BY -> LISTAGG ...
   WITHIN GROUP, explicit NULLS LAST where DuckDB's default differs, strftime formats ...).
   Anything sqlglot cannot express raises (ErrorLevel.RAISE): a query that does not port fails
   loudly instead of returning different rows.

sqlglot is pinned in the `.[spark]` extra: its output is part of the answer. Called by
lake.engines (SparkEngine) and lake.spark.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone

from ..core.errors import InputError, LakeError


def _sqlglot():
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        raise LakeError("running sql/ on Spark needs sqlglot: pip install 'mailhygiene[spark]'") from None
    return sqlglot, exp


@dataclass(frozen=True)
class Macro:
    name: str
    params: tuple[str, ...]
    body: object          # a sqlglot expression (scalar) or query (table)
    table: bool


@functools.lru_cache(maxsize=8)
def parse_macros(text: str) -> dict[str, Macro]:
    """The CREATE MACRO statements of a macros.sql text, by lower-case name."""
    sqlglot, exp = _sqlglot()
    out: dict[str, Macro] = {}
    for statement in sqlglot.parse(text, read="duckdb"):
        if not isinstance(statement, exp.Create) or str(statement.args.get("kind", "")).upper() != "MACRO":
            continue
        udf = statement.this
        name = udf.this.name if isinstance(udf.this, exp.Table) else udf.name
        params = tuple(p.name for p in udf.expressions)
        body = statement.expression
        out[name.lower()] = Macro(name, params, body, isinstance(body, exp.Query))
    return out


def _substitute(body, params: tuple[str, ...], args: list):
    """The macro body with each unqualified column named like a parameter replaced by its argument."""
    _, exp = _sqlglot()
    if len(args) != len(params):
        raise InputError(f"macro called with {len(args)} argument(s), defined with {len(params)}: {', '.join(params)}")
    by_name = {p.lower(): a for p, a in zip(params, args)}

    def swap(node):
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in by_name:
            arg = by_name[node.name.lower()].copy()
            return arg if isinstance(arg, (exp.Literal, exp.Column, exp.Placeholder, exp.Null)) else exp.Paren(this=arg)
        return node

    return body.copy().transform(swap)


def expand_macros(tree, macros: dict[str, Macro], depth: int = 10):
    _, exp = _sqlglot()
    for _ in range(depth):
        changed = False
        for node in list(tree.find_all(exp.Anonymous)):
            macro = macros.get(node.name.lower())
            if macro is None:
                continue
            expanded = _substitute(macro.body, macro.params, list(node.expressions))
            parent = node.parent
            if macro.table:
                if not isinstance(parent, exp.Table):
                    raise InputError(f"table macro {macro.name}() used outside FROM")
                alias = parent.args.get("alias") or exp.TableAlias(this=exp.to_identifier(macro.name))
                parent.replace(exp.Subquery(this=expanded, alias=alias.copy()))
            else:
                if isinstance(parent, exp.Table):
                    raise InputError(f"scalar macro {macro.name}() used in FROM")
                node.replace(exp.Paren(this=expanded))
            changed = True
        if not changed:
            return tree
    raise InputError("macros nest too deeply (a macro that calls itself?)")


def literal(value):
    """A parameter value as a sqlglot literal expression."""
    _, exp = _sqlglot()
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"parameter value {value!r} is not a finite number")
        return exp.Literal.number(repr(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError(f"parameter time {value.isoformat()} has no zone: pass an aware datetime")
        utc = value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return exp.Cast(this=exp.Literal.string(utc), to=exp.DataType.build("TIMESTAMP"))
    if isinstance(value, date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    if isinstance(value, (list, tuple)):
        items = [literal(v) for v in value]
        array = exp.Array(expressions=items)
        if not items:
            return exp.Cast(this=array, to=exp.DataType.build("ARRAY<STRING>", dialect="spark"))
        return array
    raise InputError(f"cannot bind a parameter of type {type(value).__name__} as a SQL literal")


def bind_params(tree, params: dict):
    _, exp = _sqlglot()
    missing = set()

    def swap(node):
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in params:
                missing.add(node.name)
                return node
            return literal(params[node.name])
        return node

    tree = tree.transform(swap)
    if missing:
        raise InputError(f"the query needs parameters: {', '.join(sorted(missing))}")
    return tree


def _constant(node):
    """The number a constant arithmetic expression stands for, else None."""
    _, exp = _sqlglot()
    if isinstance(node, exp.Literal) and not node.is_string:
        v = float(node.this)
        return int(v) if v.is_integer() else v
    if isinstance(node, exp.Literal) and node.is_string:
        try:
            return int(node.this)
        except ValueError:
            return None
    if isinstance(node, exp.Paren):
        return _constant(node.this)
    if isinstance(node, exp.Neg):
        v = _constant(node.this)
        return None if v is None else -v
    ops = {exp.Add: lambda a, b: a + b, exp.Sub: lambda a, b: a - b, exp.Mul: lambda a, b: a * b}
    for cls, fn in ops.items():
        if isinstance(node, cls):
            a, b = _constant(node.this), _constant(node.expression)
            return None if a is None or b is None else fn(a, b)
    return None


def timezone_calls(tree):
    """timezone(zone, ts) -> ts AT TIME ZONE zone (sqlglot leaves the DuckDB call as it is)."""
    _, exp = _sqlglot()
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() == "timezone" and len(node.expressions) == 2:
            zone, ts = node.expressions
            node.replace(exp.AtTimeZone(this=ts.copy(), zone=zone.copy()))
    return tree


def distinct_string_aggs(tree):
    """string_agg(DISTINCT x, sep ORDER BY x) -> the sorted set of x joined (see the module doc)."""
    _, exp = _sqlglot()
    for node in list(tree.find_all(exp.GroupConcat)):
        inner = node.this
        order = None
        if isinstance(inner, exp.Order):
            order, inner = inner, inner.this
        if not isinstance(inner, exp.Distinct):
            continue
        if len(inner.expressions) != 1:
            raise InputError("string_agg(DISTINCT ...) of several expressions does not port to Spark")
        value = inner.expressions[0]
        if order is not None:
            keys = order.expressions
            if len(keys) != 1 or keys[0].this != value or keys[0].args.get("desc"):
                raise InputError("string_agg(DISTINCT x ORDER BY y) ports to Spark only when y is x, ascending")
        sep = node.args.get("separator") or exp.Literal.string(",")
        values = exp.func("collect_set", value.copy())
        joined = exp.func("array_join", exp.func("array_sort", values.copy()), sep.copy())
        empty = exp.EQ(this=exp.func("size", values.copy()), expression=exp.Literal.number(0))
        node.replace(exp.Case(ifs=[exp.If(this=empty, true=exp.Null())], default=joined))
    return tree


def _spark_snippet(text: str, **parts):
    """A Spark expression from `text`, its placeholder columns (__name) replaced by `parts`."""
    import sqlglot

    _, exp = _sqlglot()
    node = sqlglot.parse_one(text, read="spark")

    def swap(n):
        if isinstance(n, exp.Column) and not n.table and n.name.startswith("__") and n.name[2:] in parts:
            return parts[n.name[2:]].copy()
        return n

    return node.transform(swap)


def list_aggs(tree):
    """list/array_agg with and without ORDER BY (see the module doc)."""
    _, exp = _sqlglot()
    for node in list(tree.find_all(exp.ArrayAgg)):
        inner = node.this
        if isinstance(inner, exp.Distinct):
            raise InputError("list(DISTINCT ...) does not port to Spark: use string_agg(DISTINCT ...)")
        if isinstance(inner, exp.Order):
            keys = inner.expressions
            value = inner.this
            fields, parts = [], {"v": value}
            for i, key in enumerate(keys):
                if key.args.get("desc"):
                    raise InputError("list(x ORDER BY k DESC) does not port to Spark: order ascending")
                if key.args.get("nulls_first"):
                    raise InputError("list(x ORDER BY k NULLS FIRST) does not port to Spark")
                parts[f"k{i}"] = key.this
                fields.append(f"__k{i} IS NULL AS n{i}, __k{i} AS k{i}")
            text = f"TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT({', '.join(fields)}, __v AS v))), e -> e.v)"
        else:
            parts = {"v": inner}
            text = "TRANSFORM(COLLECT_LIST(STRUCT(__v AS v)), e -> e.v)"
        node.replace(_spark_snippet(text, **parts))
    return tree


def epoch_calls(tree):
    """epoch / epoch_us / to_timestamp as Spark reads them exactly (see the module doc)."""
    _, exp = _sqlglot()
    for node in list(tree.find_all(exp.TimeToUnix)):
        node.replace(_spark_snippet("UNIX_MICROS(__t) / 1000000", t=node.this))
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() == "epoch_us" and len(node.expressions) == 1:
            node.replace(_spark_snippet("UNIX_MICROS(__t)", t=node.expressions[0]))
        elif node.name.lower() in ("epoch_ms", "epoch_ns"):
            raise InputError(f"{node.name}() does not port to Spark unambiguously: use epoch_us()")
    for node in list(tree.find_all(exp.UnixToTime)):
        scale = node.args.get("scale")
        if scale is not None and str(scale.this if hasattr(scale, "this") else scale) not in ("0", "seconds"):
            raise InputError("only to_timestamp(seconds) ports to Spark")
        node.replace(_spark_snippet("TIMESTAMP_MICROS(CAST(ROUND(__s * 1000000) AS BIGINT))", s=node.this))
    return tree


def window_aliases(tree):
    """Inline select-list aliases referenced by a window of the same SELECT.

    Only names that are no event column and that the aliased expression does not itself read
    (`coalesce(carrier, 'x') AS carrier` keeps meaning the column), as DuckDB resolves a name
    to a column before an alias."""
    _, exp = _sqlglot()
    from ..store.records import EVENT_COLUMNS

    reserved = {c.lower() for c in EVENT_COLUMNS} | {"date", "node"}
    for select in list(tree.find_all(exp.Select)):
        aliases = {}
        for e in select.expressions:
            if isinstance(e, exp.Alias) and e.alias.lower() not in reserved:
                reads = {c.name.lower() for c in e.this.find_all(exp.Column)}
                if e.alias.lower() not in reads:
                    aliases[e.alias.lower()] = e.this
        if not aliases:
            continue
        for e in select.expressions:
            for window in list(e.find_all(exp.Window)):
                if window.find_ancestor(exp.Select) is not select:
                    continue
                for col in list(window.find_all(exp.Column)):
                    if not col.table and col.name.lower() in aliases and col.find_ancestor(exp.Window) is window:
                        col.replace(aliases[col.name.lower()].copy())
    return tree


def fold_intervals(tree):
    _, exp = _sqlglot()
    for node in list(tree.find_all(exp.Interval)):
        if isinstance(node.this, exp.Literal):
            continue
        value = _constant(node.this)
        if value is None:
            raise InputError(f"INTERVAL {node.this.sql('duckdb')} is not a constant: Spark needs a literal interval")
        node.set("this", exp.Literal.string(str(value)))
    return tree


def is_query(sql: str) -> bool:
    """True for a file holding one query (what ports); a script of statements (sql/
    suppression_list.sql: the list's own DuckDB tables and COPY writes) is DuckDB's alone."""
    sqlglot, exp = _sqlglot()
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except Exception:
        return False
    return len(statements) == 1 and isinstance(statements[0], exp.Query)


def tables_read(sql: str) -> set[str]:
    """The tables and views a query reads, besides its own named steps (lower case)."""
    _, exp = _sqlglot()
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table)
            if t.name and not isinstance(t.this, exp.Anonymous) and t.name.lower() not in ctes}


def _ported_tree(sql: str, params: dict | None, macros: str | None):
    sqlglot, exp = _sqlglot()
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise InputError(f"expected one query, found {len(statements)} statement(s)"
                         + ("" if len(statements) != 1 else " that is no query"))
    tree = statements[0]
    if macros:
        tree = expand_macros(tree, parse_macros(macros))
    tree = bind_params(tree, params or {})
    tree = epoch_calls(list_aggs(timezone_calls(tree)))
    return fold_intervals(window_aliases(distinct_string_aggs(tree)))


def port(sql: str, params: dict | None = None, *, macros: str | None = None, pretty: bool = True) -> str:
    """Spark SQL for one DuckDB-dialect query with its parameters bound."""
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        tree = _ported_tree(sql, params, macros)
        return tree.sql(dialect="spark", pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise LakeError(f"this query does not port to Spark SQL: {exc}") from None


@dataclass(frozen=True)
class Stage:
    view: str           # the temporary view this step becomes
    sql: str            # Spark SQL of the step (earlier steps read as their views)
    reuse: bool         # read more than once by later steps: compute it once (cache)


def port_stages(sql: str, params: dict | None = None, *, macros: str | None = None,
                prefix: str = "mh") -> tuple[list[Stage], str]:
    """The port split at its CTEs: one Stage per named step, then the final SELECT.

    Spark inlines a CTE at every reference, so a step read by two later steps (and all the
    steps below it, down to the scan of the events) is computed twice; the rule's steps would
    scan the events a dozen times. Run as views, with the reused ones cached, each step is
    computed once (lake.engines.SparkEngine does that). Same rows as the single query.
    """
    _, exp = _sqlglot()
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        tree = _ported_tree(sql, params, macros)
        with_ = tree.args.get("with_") or tree.args.get("with")
        if with_ is None or with_.args.get("recursive"):
            return [], tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
        ctes = list(with_.expressions)
        names = [c.alias for c in ctes]
        views = {n.lower(): f"{prefix}_{n}" for n in names}
        tree = tree.copy()
        tree.set("with_" if "with_" in tree.args else "with", None)

        def rename(node):
            if isinstance(node, exp.Table) and not node.args.get("db") and node.name.lower() in views:
                alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
                return exp.Table(this=exp.to_identifier(views[node.name.lower()]), alias=alias.copy())
            return node

        bodies = [c.this.copy().transform(rename) for c in ctes]
        final = tree.transform(rename)
        stages = []
        for i, (name, body) in enumerate(zip(names, bodies)):
            view = views[name.lower()]
            later = bodies[i + 1:] + [final]
            uses = sum(1 for b in later for t in b.find_all(exp.Table) if t.name == view)
            stages.append(Stage(view, body.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE), uses > 1))
        return stages, final.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise LakeError(f"this query does not port to Spark SQL: {exc}") from None
