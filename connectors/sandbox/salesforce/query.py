"""Translate a parsed SOQL query into SQL over the world store, and turn result rows into records.

Resolution follows Salesforce: an unknown object is `INVALID_TYPE`, an unknown field or relationship is
`INVALID_FIELD`, a literal of the wrong kind for its field is `INVALID_QUERY_FILTER_OPERATOR`, all with the
messages Salesforce writes. SOQL's two-valued logic is kept: `Field != 'x'` and `NOT IN` include records
whose field is null, and `NOT (...)` treats an unknown comparison as false before negating it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .ids import InvalidIdError, decode_id, make_id
from .objects import ID_TYPES, NUMBER_TYPES, STRING_TYPES, Field, SObjectType
from .soql import (
    MALFORMED_QUERY,
    Comparison,
    Condition,
    FieldPath,
    FunctionCall,
    Literal,
    Logical,
    Negation,
    Query,
    SoqlError,
    not_supported,
)
from .values import date_literal_range, local_midnight_instant, parse_instant, render, world_instant

INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
INVALID_FILTER = "INVALID_QUERY_FILTER_OPERATOR"
NUMBER_OUTSIDE_VALID_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"
MAX_OFFSET = 2000
FIELDS_FUNCTION_MAX_LIMIT = 200


@dataclass(frozen=True)
class QueryContext:
    objects: dict[str, SObjectType]  # lower-case name -> object
    prefixes: dict[str, SObjectType]  # key prefix -> object
    only_crm: str | None
    include_deleted: bool
    now: datetime
    timezone: ZoneInfo


@dataclass(frozen=True)
class Column:
    """One value of the SELECT list: where it sits in the record and how it is rendered."""

    sql_alias: str
    relationship_path: tuple[tuple[str, SObjectType, str], ...]  # (relationship name, object, presence alias)
    name: str  # key in the record (field name, or alias / exprN for aggregates)
    header: str  # Bulk API CSV header: Owner.Email
    render: Callable[[Any], Any]


@dataclass
class CompiledQuery:
    sobject: SObjectType
    kind: str  # "records", "count" or "aggregate"
    columns: list[Column]
    select_sql: list[str]  # "expression AS alias"
    source_sql: str  # "opportunities AS t"
    join_sql: list[str]  # LEFT JOIN ... for relationship fields
    where_sql: str
    params: list[Any]
    order_sql: str  # ORDER BY ... (always ends with the id, so paging is deterministic)
    limit: int | None
    offset: int | None
    fields_function: bool = False
    # INDEXED BY for the statements that find and order the rows; not for the pages of a cursor, which reach
    # their rows by id
    order_index_sql: str = ""

    @property
    def from_sql(self) -> str:
        return " ".join([f"FROM {self.source_sql}{self.order_index_sql}", *self.join_sql])

    def id_select_sql(self) -> str:
        """The ordered ids of every matching record (what a cursor remembers)."""
        sql = f"SELECT t.id {self.from_sql} WHERE {self.where_sql} {self.order_sql}"
        return sql + self._limit_sql()

    def records_sql(self, extra_limit: int | None = None) -> str:
        sql = f"SELECT {', '.join(self.select_sql)} {self.from_sql} WHERE {self.where_sql} {self.order_sql}"
        return sql + self._limit_sql(extra_limit)

    def count_sql(self) -> str:
        inner = f"SELECT 1 {self.from_sql} WHERE {self.where_sql}" + self._limit_sql()
        return f"SELECT COUNT(*) FROM ({inner})"

    def aggregate_sql(self) -> str:
        return f"SELECT {', '.join(self.select_sql)} {self.from_sql} WHERE {self.where_sql}"

    def page_sql(self, cursor_table: str, include_deleted: bool) -> str:
        """Records at cursor positions (pos > ?) in cursor order, current values, LIMIT ?."""
        deleted = "" if include_deleted else f" AND NOT ({_substitute(self.sobject.deleted_sql, 't')})"
        joins = " ".join(self.join_sql)
        return (f"SELECT r.pos AS cursor_position, {', '.join(self.select_sql)} FROM {cursor_table} r "
                f"JOIN {self.source_sql} ON t.id = r.rid {joins} WHERE r.pos > ? AND r.pos <= ?{deleted} "
                f"ORDER BY r.pos LIMIT ?")

    def _limit_sql(self, extra_limit: int | None = None) -> str:
        limit = self.limit
        if extra_limit is not None:
            limit = extra_limit if limit is None else min(limit, extra_limit)
        if limit is None and not self.offset:
            return ""
        return f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(self.offset or 0)}"

    def record(self, row: Sequence[Any], version: str) -> dict[str, Any]:
        """A result row as Salesforce's JSON record, relationship fields nested with their attributes."""
        record: dict[str, Any] = {"attributes": {"type": self.sobject.name,
                                                 "url": _record_url(self.sobject, row["record_id"], version)}}
        for column in self.columns:
            target = record
            parent_missing = False
            for relationship, sobject, presence_alias in column.relationship_path:
                if relationship not in target:
                    presence = row[presence_alias]
                    target[relationship] = None if presence is None else {
                        "attributes": {"type": sobject.name,
                                       "url": _record_url(sobject, presence, version)}}
                if target[relationship] is None:
                    parent_missing = True
                    break
                target = target[relationship]
            if not parent_missing:
                target[column.name] = column.render(row[column.sql_alias])
        return record

    def csv_row(self, row: Sequence[Any]) -> list[Any]:
        values = []
        for column in self.columns:
            missing = any(row[presence] is None for _, _, presence in column.relationship_path)
            values.append(None if missing else column.render(row[column.sql_alias]))
        return values


def _record_url(sobject: SObjectType, number: Any, version: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject.name}/{make_id(sobject.key_prefix, int(number))}"


def _substitute(sql: str, alias: str) -> str:
    return sql.replace("{t}", alias)


def no_such_column(name: str, sobject: SObjectType, position: int) -> SoqlError:
    return SoqlError(
        INVALID_FIELD,
        f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a custom field, be "
        "sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call "
        "for the appropriate names.", position)


def unknown_object(name: str, position: int | None) -> SoqlError:
    return SoqlError(
        INVALID_TYPE,
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.", position)


def resolve_object(context: QueryContext, name: str, position: int | None = None) -> SObjectType:
    sobject = context.objects.get(name.lower())
    if sobject is None:
        raise unknown_object(name, position)
    return sobject


# --------------------------------------------------------------------------------------------- compiler

@dataclass
class _Join:
    alias: str
    sobject: SObjectType


@dataclass
class _Compiler:
    context: QueryContext
    sobject: SObjectType
    joins: dict[tuple[str, ...], _Join] = field(default_factory=dict)
    join_sql: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    # -- paths
    def resolve(self, path: FieldPath) -> tuple[Field, str, tuple[tuple[str, SObjectType, str], ...]]:
        """The field a path names, the alias of the table it lives on, and the relationships walked."""
        sobject, alias = self.sobject, "t"
        walked: list[tuple[str, SObjectType, str]] = []
        key: tuple[str, ...] = ()
        for relationship_name in path.parts[:-1]:
            lookup = sobject.relationship(relationship_name)
            if lookup is None:
                raise SoqlError(
                    INVALID_FIELD,
                    f"Didn't understand relationship '{relationship_name}' in field path. If you are attempting to "
                    "use a custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.", path.position)
            if lookup.is_polymorphic:
                raise not_supported(f"The polymorphic relationship {lookup.relationship_name} in a field path",
                                    path.position)
            target = self.context.objects[lookup.reference_to[0].lower()]
            key = key + (relationship_name.lower(),)
            join = self.joins.get(key)
            if join is None:
                join = _Join(f"j{len(self.joins) + 1}", target)
                self.joins[key] = join
                condition = f"{join.alias}.id = {_substitute(lookup.sql, alias)}"
                if target.base_condition:
                    condition += f" AND {_substitute(target.base_condition, join.alias)}"
                self.join_sql.append(f"LEFT JOIN {target.source} AS {join.alias} ON {condition}")
            walked.append((lookup.relationship_name or relationship_name, target, f"{join.alias}_present"))
            sobject, alias = target, join.alias
        found = sobject.field(path.parts[-1])
        if found is None:
            raise no_such_column(path.parts[-1], sobject, path.position)
        return found, alias, tuple(walked)

    def value_sql(self, found: Field, alias: str) -> str:
        if found.is_polymorphic:
            branches = " ".join(
                f"WHEN ({_substitute(sql, alias)}) IS NOT NULL THEN "
                f"'{self.context.objects[name.lower()].key_prefix}:' || ({_substitute(sql, alias)})"
                for name, sql in found.alternatives)
            return f"(CASE {branches} END)"
        return f"({_substitute(found.sql, alias)})"

    def renderer(self, found: Field, owner: SObjectType) -> Callable[[Any], Any]:
        prefix = None
        if found.type == "id":
            prefix = owner.key_prefix
        elif found.type == "reference" and not found.is_polymorphic:
            prefix = self.context.objects[found.reference_to[0].lower()].key_prefix
        field_type = found.type
        return lambda value: render(field_type, value, prefix)


    # -- WHERE
    def condition(self, condition: Condition) -> str:
        if isinstance(condition, Logical):
            joined = f" {condition.operator} ".join(self.condition(item) for item in condition.operands)
            return f"({joined})"
        if isinstance(condition, Negation):
            return f"(NOT COALESCE({self.condition(condition.operand)}, 0))"
        return self.comparison(condition)

    def comparison(self, comparison: Comparison) -> str:
        found, alias, _ = self.resolve(comparison.field)
        operator = comparison.operator
        if operator in ("IN", "NOT IN"):
            values = comparison.value
            assert isinstance(values, tuple)
            inner = " OR ".join(self.simple(found, alias, "=", literal) for literal in values)
            if operator == "IN":
                return f"({inner})"
            return f"(NOT COALESCE(({inner}), 0))"
        assert isinstance(comparison.value, Literal)
        if operator == "LIKE":
            return self.like(found, alias, comparison.value)
        return self.simple(found, alias, operator, comparison.value)

    def like(self, found: Field, alias: str, literal: Literal) -> str:
        if found.type not in STRING_TYPES:
            raise SoqlError(INVALID_FILTER, f"invalid operator on field: {found.name}", literal.position)
        if literal.kind == "null":
            return "0"
        if literal.kind != "string":
            raise _wrong_kind(found, literal)
        self.params.append(literal.like_pattern)
        return f"({self.value_sql(found, alias)} LIKE ? ESCAPE '\\')"

    def simple(self, found: Field, alias: str, operator: str, literal: Literal) -> str:
        expression = self.value_sql(found, alias)
        if literal.kind == "null":
            if operator == "=":
                return f"({expression} IS NULL)"
            if operator == "!=":
                return f"({expression} IS NOT NULL)"
            return "0"
        if found.type in ID_TYPES:
            return self.id_comparison(found, alias, operator, literal)
        if literal.kind == "date_literal":
            return self.date_range(found, expression, operator, literal)
        value = self.literal_value(found, literal)
        collate = " COLLATE NOCASE" if found.type in STRING_TYPES else ""
        if found.type == "boolean":
            expression = f"COALESCE({expression}, 0)"
        self.params.append(value)
        if operator == "!=":
            return f"({expression} IS NULL OR {expression} <> ?{collate})"
        return f"({expression} {operator} ?{collate})"

    def literal_value(self, found: Field, literal: Literal) -> Any:
        kind = literal.kind
        if found.type in STRING_TYPES:
            if kind != "string":
                raise _wrong_kind(found, literal)
            return literal.value
        if found.type in NUMBER_TYPES:
            if kind != "number":
                raise _wrong_kind(found, literal)
            text = str(literal.value)
            return float(text) if any(char in text for char in ".eE") else int(text)
        if found.type == "boolean":
            if kind != "boolean":
                raise _wrong_kind(found, literal)
            return 1 if literal.value else 0
        if found.type == "date":
            if kind != "date":
                raise _wrong_kind(found, literal)
            return literal.value
        if found.type == "datetime":
            if kind != "datetime":
                raise _wrong_kind(found, literal)
            return world_instant(parse_instant(str(literal.value)))
        raise _wrong_kind(found, literal)

    def id_comparison(self, found: Field, alias: str, operator: str, literal: Literal) -> str:
        if literal.kind != "string":
            raise _wrong_kind(found, literal)
        try:
            decoded = decode_id(str(literal.value))
        except InvalidIdError:
            raise SoqlError(INVALID_FILTER, f"invalid ID field: {literal.value}", literal.position) from None
        targets = self.id_targets(found, alias)
        matching = [sql for prefix, sql in targets if prefix == decoded.prefix]
        if operator in ("=", "!="):
            if not matching or decoded.number < 0:
                test = "0"
            else:
                self.params.append(decoded.number)
                test = f"({matching[0]} = ?)"
            if operator == "=":
                return test
            return f"(NOT COALESCE({test}, 0))" if test != "0" else "1"
        # ordering comparisons: ids of one object sort as their numbers; other prefixes sort as text
        if not matching:
            relation = _compare_text(targets[0][0], operator, decoded.prefix)
            either = " OR ".join(f"({sql}) IS NOT NULL" for _, sql in targets)
            return f"({either})" if relation else "0"
        self.params.append(decoded.number)
        return f"({matching[0]} {operator} ?)"

    def id_targets(self, found: Field, alias: str) -> list[tuple[str, str]]:
        if found.is_polymorphic:
            return [(self.context.objects[name.lower()].key_prefix, f"({_substitute(sql, alias)})")
                    for name, sql in found.alternatives]
        if found.type == "id":
            owner = self._owner_of(alias)
            return [(owner.key_prefix, f"({_substitute(found.sql, alias)})")]
        target = self.context.objects[found.reference_to[0].lower()]
        return [(target.key_prefix, f"({_substitute(found.sql, alias)})")]

    def _owner_of(self, alias: str) -> SObjectType:
        if alias == "t":
            return self.sobject
        return next(join.sobject for join in self.joins.values() if join.alias == alias)

    def date_range(self, found: Field, expression: str, operator: str, literal: Literal) -> str:
        if found.type not in ("date", "datetime"):
            raise _wrong_kind(found, literal)
        name, number = literal.value  # type: ignore[misc]
        today = self.context.now.astimezone(self.context.timezone).date()
        try:
            start_day, end_day = date_literal_range(name, number, today)
        except KeyError:
            raise not_supported(f"The date literal {literal.text}", literal.position) from None
        if found.type == "date":
            start, end = start_day.isoformat(), end_day.isoformat()
        else:
            start = local_midnight_instant(start_day, self.context.timezone)
            end = local_midnight_instant(end_day, self.context.timezone)
        inside = f"({expression} >= ? AND {expression} < ?)"
        bounds = {"=": ([start, end], inside),
                  "!=": ([start, end], f"({expression} IS NULL OR NOT {inside})"),
                  "<": ([start], f"({expression} < ?)"),
                  "<=": ([end], f"({expression} < ?)"),
                  ">": ([end], f"({expression} >= ?)"),
                  ">=": ([start], f"({expression} >= ?)")}
        values, sql = bounds[operator]
        self.params.extend(values)
        return sql


def _compare_text(left: str, operator: str, right: str) -> bool:
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]


def _wrong_kind(found: Field, literal: Literal) -> SoqlError:
    type_word = {"datetime": "dateTime", "reference": "id", "currency": "double", "percent": "double",
                 "picklist": "string", "textarea": "string", "email": "string", "phone": "string",
                 "url": "string", "combobox": "string"}.get(found.type, found.type)
    quoted = type_word in ("string", "id")
    advice = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
    return SoqlError(INVALID_FILTER, f"value of filter criterion for field '{found.name}' must be of type "
                                     f"{type_word} and {advice}", literal.position)


# ------------------------------------------------------------------------------------------ entry point

def compile_query(query: Query, context: QueryContext) -> CompiledQuery:
    sobject = resolve_object(context, query.object_name, query.object_position)
    compiler = _Compiler(context, sobject)
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError(NUMBER_OUTSIDE_VALID_RANGE, f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    kind = "count" if query.is_count_only else "aggregate" if query.is_aggregate else "records"
    columns: list[Column] = []
    select_sql: list[str] = ["t.id AS record_id"]
    fields_function = False
    if kind == "records":
        fields_function = _select_records(query, compiler, columns, select_sql)
    elif kind == "aggregate":
        _select_aggregates(query, compiler, columns, select_sql)
    where = [_substitute(sobject.base_condition, "t")] if sobject.base_condition else []
    if context.only_crm is not None and sobject.crm_column:
        where.append("t.crm = ?")
        compiler.params.append(context.only_crm)
    if not context.include_deleted and sobject.deleted_sql != "0":
        where.append(f"NOT ({_substitute(sobject.deleted_sql, 't')})")
    if query.where is not None:
        where.append(compiler.condition(query.where))
    order_sql = _order_by(query, compiler, kind)
    return CompiledQuery(
        sobject=sobject, kind=kind, columns=columns, select_sql=select_sql if kind != "aggregate" else select_sql[1:],
        source_sql=f"{sobject.source} AS t", join_sql=compiler.join_sql, where_sql=" AND ".join(where) or "1",
        params=compiler.params,
        order_sql=order_sql, limit=query.limit, offset=query.offset, fields_function=fields_function,
        order_index_sql=_newest_first_index(query, sobject, context, order_sql))


def _newest_first_index(query: Query, sobject: SObjectType, context: QueryContext, order_sql: str) -> str:
    """``INDEXED BY`` the world's stamp index for "the newest N" (``ORDER BY SystemModstamp DESC LIMIT 1``, a
    connector's ceiling) of an object that is a part of its table, as Salesforce's own index on the stamp
    serves it.  SQLite's planner would take the index of the object's condition (Task: the activity kinds),
    read every row it finds and sort them: 140 ms for Task at 100k deals, growing with the table."""
    if query.limit is None or query.where is not None or not sobject.base_condition \
            or sobject.source != sobject.world_table or not order_sql.startswith("ORDER BY (t.updated_at) "):
        return ""
    crm = context.only_crm is not None and bool(sobject.crm_column)
    return f" INDEXED BY ix_{sobject.source}_{'crm' if crm else 'updated'}"


def _select_records(query: Query, compiler: _Compiler, columns: list[Column], select_sql: list[str]) -> bool:
    seen: set[str] = set()
    fields_function = False
    for item in query.select:
        expression = item.expression
        if isinstance(expression, FunctionCall) and expression.name == "FIELDS":
            fields_function = True
            if expression.keyword != "STANDARD" and (query.limit is None or query.limit > FIELDS_FUNCTION_MAX_LIMIT):
                raise SoqlError(MALFORMED_QUERY, "The SOQL FIELDS function must have a LIMIT of at most 200",
                                expression.position)
            for candidate in compiler.sobject.fields:
                keyword = expression.keyword or "ALL"
                wanted = {"ALL": True, "STANDARD": not candidate.custom, "CUSTOM": candidate.custom}[keyword]
                if wanted and candidate.name.lower() not in seen:
                    seen.add(candidate.name.lower())
                    _add_column(compiler, FieldPath((candidate.name,), expression.position), columns, select_sql)
            continue
        if isinstance(expression, FunctionCall):
            if expression.name == "COUNT" and expression.argument is None:
                raise SoqlError(MALFORMED_QUERY, "COUNT() must be the only element in the SELECT list",
                                expression.position)
            assert expression.argument is not None
            key = "convertcurrency:" + expression.argument.text.lower()
            if key in seen:
                raise SoqlError(MALFORMED_QUERY, f"duplicate field selected: {expression.argument.text}",
                                expression.position)
            seen.add(key)
            _add_column(compiler, expression.argument, columns, select_sql, convert_currency=True)
            continue
        key = expression.text.lower()
        if key in seen:
            raise SoqlError(MALFORMED_QUERY, f"duplicate field selected: {expression.text}", expression.position)
        seen.add(key)
        _add_column(compiler, expression, columns, select_sql)
    return fields_function


def _add_column(compiler: _Compiler, path: FieldPath, columns: list[Column], select_sql: list[str],
                convert_currency: bool = False) -> None:
    found, alias, walked = compiler.resolve(path)
    owner = walked[-1][1] if walked else compiler.sobject
    sql = compiler.value_sql(found, alias)
    if convert_currency:
        if found.type != "currency" or found.converted_sql is None:
            raise SoqlError(MALFORMED_QUERY, f"convertCurrency() can only be used on currency fields: {found.name}",
                            path.position)
        sql = f"({_substitute(found.converted_sql, alias)})"
    sql_alias = f"c{len(columns)}"
    select_sql.append(f"{sql} AS {sql_alias}")
    for _, _, presence in walked:
        join_alias = presence[: -len("_present")]
        marker = f"{join_alias}.id AS {presence}"
        if marker not in select_sql:
            select_sql.append(marker)
    header = ".".join([name for name, _, _ in walked] + [found.name])
    columns.append(Column(sql_alias, walked, found.name, header, compiler.renderer(found, owner)))


def _select_aggregates(query: Query, compiler: _Compiler, columns: list[Column], select_sql: list[str]) -> None:
    unnamed = 0
    for item in query.select:
        expression = item.expression
        if isinstance(expression, FieldPath) or not expression.is_aggregate:
            name = expression.text if isinstance(expression, FieldPath) else (
                expression.argument.text if expression.argument else expression.name)
            raise SoqlError(MALFORMED_QUERY, f"Field must be grouped or aggregated: {name}",
                            expression.position)
        if item.alias is None:
            name = f"expr{unnamed}"
            unnamed += 1
        else:
            name = item.alias
        sql_alias = f"c{len(columns)}"
        if expression.argument is None:
            select_sql.append(f"COUNT(*) AS {sql_alias}")
            columns.append(Column(sql_alias, (), name, name, lambda value: int(value or 0)))
            continue
        found, alias, walked = compiler.resolve(expression.argument)
        value_sql = compiler.value_sql(found, alias)
        if found.type == "currency" and found.converted_sql:
            # multi-currency orgs aggregate currency fields in the corporate currency
            value_sql = f"({_substitute(found.converted_sql, alias)})"
        function = expression.name
        if function in ("SUM", "AVG") and found.type not in NUMBER_TYPES:
            raise SoqlError(MALFORMED_QUERY, f"field {found.name} does not support aggregate operator {function}",
                            expression.position)
        sql_function = {"COUNT_DISTINCT": "COUNT(DISTINCT {})", "COUNT": "COUNT({})"}.get(function, function + "({})")
        select_sql.append(f"{sql_function.format(value_sql)} AS {sql_alias}")
        if function in ("COUNT", "COUNT_DISTINCT"):
            renderer: Callable[[Any], Any] = lambda value: int(value or 0)  # noqa: E731
        elif function in ("SUM", "AVG"):
            renderer = lambda value: None if value is None else float(value)  # noqa: E731
        else:
            renderer = compiler.renderer(found, walked[-1][1] if walked else compiler.sobject)
        columns.append(Column(sql_alias, (), name, name, renderer))


def _order_by(query: Query, compiler: _Compiler, kind: str) -> str:
    if kind != "records":
        if query.order_by and kind == "aggregate":
            raise SoqlError(MALFORMED_QUERY, f"Ordered field must be grouped or aggregated: "
                                             f"{query.order_by[0].field.text}", query.order_by[0].field.position)
        return ""
    terms = []
    for item in query.order_by:
        found, alias, _ = compiler.resolve(item.field)
        expression = compiler.value_sql(found, alias)
        if found.type in STRING_TYPES:
            expression += " COLLATE NOCASE"
        direction = "DESC" if item.descending else "ASC"
        nulls_last = item.nulls_last if item.nulls_last is not None else item.descending
        terms.append(f"{expression} {direction} NULLS {'LAST' if nulls_last else 'FIRST'}")
    terms.append("t.id ASC")
    return "ORDER BY " + ", ".join(terms)
