"""A SOQL lexer and parser for the subset a connector sends.

The parser knows three kinds of input: SOQL inside the subset (parsed into the dataclasses below), valid
SOQL outside it (GROUP BY, subqueries, TYPEOF, FOR VIEW, ...: `SoqlError` with errorCode
`NOT_SUPPORTED_BY_SANDBOX`, so nobody mistakes a sandbox gap for a bug in their query) and invalid SOQL
(`MALFORMED_QUERY` with the position decoration Salesforce puts in its messages). Names of objects and
fields are resolved later, against the object model (`query.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

MALFORMED_QUERY = "MALFORMED_QUERY"
NOT_SUPPORTED = "NOT_SUPPORTED_BY_SANDBOX"


class SoqlError(Exception):
    """A SOQL error as Salesforce reports it: an errorCode and a message, decorated with the position."""

    def __init__(self, error_code: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.position = position

    def render(self, soql: str) -> str:
        """The message text Salesforce sends: the offending line, a caret, row and column, the reason."""
        if self.position is None:
            return self.message
        row, column, line = _row_column(soql, self.position)
        return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{self.message}"


def not_supported(what: str, position: int | None = None) -> SoqlError:
    return SoqlError(
        NOT_SUPPORTED,
        f"{what} is valid SOQL but not supported by the Salesforce sandbox "
        "(connectors/sandbox/salesforce); rewrite the query without it or extend the sandbox.",
        position,
    )


def _row_column(text: str, position: int) -> tuple[int, int, str]:
    position = max(0, min(position, len(text)))
    before = text[:position]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = text.find("\n", position)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    return row, position - line_start + 1, line


# ---------------------------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Token:
    kind: str  # IDENT, STRING, NUMBER, DATE, DATETIME, DATE_N, PUNCT, OP, EOF
    text: str  # the source text
    position: int
    value: object = None  # decoded value: str for STRING, str for NUMBER, (name, n) for DATE_N
    like_pattern: str | None = None  # STRING only: the SQL LIKE pattern (escape character backslash)

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "IDENT" and self.text.upper() in words


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_DATE_N = re.compile(r":(-?\d+)")
_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(soql):
        char = soql[index]
        if char.isspace():
            index += 1
            continue
        if char == "'":
            token, index = _string(soql, index)
        elif char == '"':
            raise SoqlError(MALFORMED_QUERY, f"unexpected token: {_word_at(soql, index)}", index)
        elif char in "(),":
            token, index = Token("PUNCT", char, index), index + 1
        elif char == ":":
            raise SoqlError(
                MALFORMED_QUERY, f"unexpected token: '{_word_at(soql, index)}' (bind variables exist only in Apex)",
                index)
        elif any(soql.startswith(op, index) for op in _OPERATORS):
            op = next(op for op in _OPERATORS if soql.startswith(op, index))
            token, index = Token("OP", op, index), index + len(op)
        elif match := _DATETIME.match(soql, index):
            token, index = Token("DATETIME", match.group(), index, match.group()), match.end()
        elif match := _DATE.match(soql, index):
            token, index = Token("DATE", match.group(), index, match.group()), match.end()
        elif (char.isdigit() or char in "-.") and (match := _NUMBER.match(soql, index)):
            if match.end() < len(soql) and (soql[match.end()].isalpha() or soql[match.end()] == "_"):
                # a currency literal (USD5000 is lexed from the letters) or garbage such as 12abc
                raise SoqlError(MALFORMED_QUERY, f"unexpected token: {_word_at(soql, index)}", index)
            token, index = Token("NUMBER", match.group(), index, match.group()), match.end()
        elif match := _IDENT.match(soql, index):
            token, index = _identifier(soql, match)
        else:
            raise SoqlError(MALFORMED_QUERY, f"unexpected token: '{char}'", index)
        tokens.append(token)
    tokens.append(Token("EOF", "<EOF>", len(soql)))
    return tokens


def _identifier(soql: str, match: re.Match[str]) -> tuple[Token, int]:
    text = match.group()
    end = match.end()
    date_n = _DATE_N.match(soql, end)
    if date_n and "." not in text:
        return Token("DATE_N", soql[match.start() : date_n.end()], match.start(),
                     (text.upper(), int(date_n.group(1)))), date_n.end()
    return Token("IDENT", text, match.start()), end


def _word_at(soql: str, index: int) -> str:
    end = index + 1
    while end < len(soql) and not soql[end].isspace() and soql[end] not in "(),":
        end += 1
    return soql[index:end]


def _string(soql: str, start: int) -> tuple[Token, int]:
    value: list[str] = []
    like: list[str] = []
    index = start + 1
    while index < len(soql):
        char = soql[index]
        if char == "'":
            text = soql[start : index + 1]
            return Token("STRING", text, start, "".join(value), "".join(like)), index + 1
        if char == "\\":
            if index + 1 >= len(soql):
                break
            escaped = soql[index + 1]
            if escaped in "_%":
                value.append(escaped)
                like.append("\\" + escaped)  # a literal wildcard character in LIKE
            elif escaped.lower() in _ESCAPES or escaped in _ESCAPES:
                decoded = _ESCAPES.get(escaped, _ESCAPES.get(escaped.lower(), escaped))
                value.append(decoded)
                like.append("\\\\" if decoded == "\\" else decoded)
            else:
                raise SoqlError(
                    MALFORMED_QUERY,
                    f"Invalid string literal '{soql[start:index + 2]}'. Illegal character sequence '\\{escaped}' "
                    "in string literal.", start)
            index += 2
            continue
        value.append(char)
        like.append(char)
        index += 1
    raise SoqlError(MALFORMED_QUERY, "unexpected token: '<EOF>' (the string literal is not closed)", start)


# ------------------------------------------------------------------------------------------------ AST

@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]  # ("Owner", "Email") for Owner.Email
    position: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class FunctionCall:
    name: str  # upper case: COUNT, COUNT_DISTINCT, SUM, AVG, MIN, MAX, CONVERTCURRENCY, FIELDS
    argument: FieldPath | None  # None for COUNT()
    position: int
    keyword: str | None = None  # FIELDS(ALL|STANDARD|CUSTOM)

    @property
    def is_aggregate(self) -> bool:
        return self.name in AGGREGATES


AGGREGATES = ("COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX")
FIELD_FUNCTIONS = ("CONVERTCURRENCY",)
UNSUPPORTED_FUNCTIONS = (
    "TOLABEL", "FORMAT", "CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH",
    "DAY_IN_WEEK", "DAY_IN_YEAR", "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR",
    "HOUR_IN_DAY", "WEEK_IN_MONTH", "WEEK_IN_YEAR", "GROUPING", "DISTANCE", "GEOLOCATION",
    "CONVERTTIMEZONE",
)


@dataclass(frozen=True)
class SelectItem:
    expression: FieldPath | FunctionCall
    alias: str | None = None


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, date, datetime, null, boolean, date_literal
    value: object  # str / str (number text) / str / str / None / bool / (NAME, n or None)
    position: int
    text: str
    like_pattern: str | None = None


@dataclass(frozen=True)
class Comparison:
    field: FieldPath
    operator: str  # =, !=, <, <=, >, >=, LIKE, IN, NOT IN
    value: Literal | tuple[Literal, ...]
    position: int


@dataclass(frozen=True)
class Logical:
    operator: str  # AND, OR
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    operand: Condition


Condition = Union[Comparison, Logical, Negation]  # noqa: UP007 - a runtime alias, before 3.12's `type`


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath
    descending: bool = False
    nulls_last: bool | None = None  # None = Salesforce's default (ASC: nulls first, DESC: nulls last)


@dataclass
class Query:
    select: list[SelectItem]
    object_name: str
    object_position: int
    object_alias: str | None = None
    where: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count_only(self) -> bool:
        """SELECT COUNT() FROM ...: the answer is totalSize with no records."""
        return (len(self.select) == 1 and isinstance(self.select[0].expression, FunctionCall)
                and self.select[0].expression.name == "COUNT" and self.select[0].expression.argument is None)

    @property
    def is_aggregate(self) -> bool:
        return any(isinstance(item.expression, FunctionCall) and item.expression.is_aggregate
                   for item in self.select) and not self.is_count_only


# --------------------------------------------------------------------------------------------- parser

_CLAUSE_WORDS = ("FROM", "WHERE", "ORDER", "LIMIT", "OFFSET", "GROUP", "HAVING", "WITH", "FOR", "UPDATE",
                 "USING", "ALL")
DATE_LITERAL_NAMES = (
    "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH", "THIS_MONTH",
    "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER",
    "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR", "THIS_FISCAL_QUARTER", "LAST_FISCAL_QUARTER",
    "NEXT_FISCAL_QUARTER", "THIS_FISCAL_YEAR", "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
)
DATE_N_LITERAL_NAMES = (
    "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "NEXT_N_WEEKS", "LAST_N_WEEKS", "N_WEEKS_AGO",
    "NEXT_N_MONTHS", "LAST_N_MONTHS", "N_MONTHS_AGO", "NEXT_N_QUARTERS", "LAST_N_QUARTERS",
    "N_QUARTERS_AGO", "NEXT_N_YEARS", "LAST_N_YEARS", "N_YEARS_AGO", "NEXT_N_FISCAL_QUARTERS",
    "LAST_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO", "NEXT_N_FISCAL_YEARS", "LAST_N_FISCAL_YEARS",
    "N_FISCAL_YEARS_AGO",
)


def parse(soql: str) -> Query:
    """Parse one SOQL statement; raises SoqlError (MALFORMED_QUERY or NOT_SUPPORTED_BY_SANDBOX)."""
    if not soql or not soql.strip():
        raise SoqlError(MALFORMED_QUERY, "A query string has to be specified")
    return _Parser(tokenize(soql)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    # -- helpers
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.current
        if token.kind != "EOF":
            self.index += 1
        return token

    def unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.current
        return SoqlError(MALFORMED_QUERY, f"unexpected token: {token.text}", token.position)

    def expect_keyword(self, word: str) -> Token:
        if not self.current.is_keyword(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if not (self.current.kind == "PUNCT" and self.current.text == char):
            raise self.unexpected()
        return self.advance()

    def at_punct(self, char: str) -> bool:
        return self.current.kind == "PUNCT" and self.current.text == char

    # -- statement
    def query(self) -> Query:
        self.expect_keyword("SELECT")
        select = self.select_list()
        self.expect_keyword("FROM")
        object_token = self.current
        if object_token.kind != "IDENT" or "." in object_token.text:
            raise self.unexpected()
        self.advance()
        query = Query(select=select, object_name=object_token.text, object_position=object_token.position)
        if self.current.kind == "IDENT" and not self.current.is_keyword(*_CLAUSE_WORDS):
            query.object_alias = self.advance().text
        if self.current.is_keyword("USING"):
            raise not_supported("USING SCOPE", self.current.position)
        if self.current.is_keyword("WHERE"):
            self.advance()
            query.where = self.condition()
        if self.current.is_keyword("WITH"):
            raise not_supported("WITH (SECURITY_ENFORCED, DATA CATEGORY, ...)", self.current.position)
        if self.current.is_keyword("GROUP"):
            raise not_supported("GROUP BY", self.current.position)
        if self.current.is_keyword("HAVING"):
            raise not_supported("HAVING", self.current.position)
        if self.current.is_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            query.order_by = self.order_list()
        if self.current.is_keyword("LIMIT"):
            self.advance()
            query.limit = self.integer()
        if self.current.is_keyword("OFFSET"):
            self.advance()
            query.offset = self.integer()
        if self.current.is_keyword("FOR"):
            raise not_supported(f"FOR {self.peek().text.upper()}", self.current.position)
        if self.current.is_keyword("UPDATE"):
            raise not_supported(f"UPDATE {self.peek().text.upper()}", self.current.position)
        if self.current.is_keyword("ALL") and self.peek().is_keyword("ROWS"):
            raise not_supported("ALL ROWS (use queryAll instead)", self.current.position)
        if self.current.kind != "EOF":
            raise self.unexpected()
        _strip_object_alias(query)
        return query

    def integer(self) -> int:
        token = self.current
        if token.kind != "NUMBER" or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)

    # -- SELECT list
    def select_list(self) -> list[SelectItem]:
        items = [self.select_item()]
        while self.at_punct(","):
            self.advance()
            items.append(self.select_item())
        return items

    def select_item(self) -> SelectItem:
        token = self.current
        if self.at_punct("("):
            if self.peek().is_keyword("SELECT"):
                raise not_supported("A relationship subquery in the SELECT list", token.position)
            raise self.unexpected()
        if token.is_keyword("TYPEOF"):
            raise not_supported("TYPEOF", token.position)
        if token.kind != "IDENT" or token.is_keyword("FROM"):
            raise self.unexpected()
        self.advance()
        if self.at_punct("("):
            expression: FieldPath | FunctionCall = self.function_call(token)
        else:
            expression = FieldPath(tuple(token.text.split(".")), token.position)
        alias = None
        if self.current.kind == "IDENT" and not self.current.is_keyword(*_CLAUSE_WORDS):
            if not (isinstance(expression, FunctionCall) and expression.name != "FIELDS"):
                raise self.unexpected()
            alias = self.advance().text
        return SelectItem(expression, alias)

    def function_call(self, name_token: Token) -> FunctionCall:
        name = name_token.text.upper()
        if name in UNSUPPORTED_FUNCTIONS:
            raise not_supported(f"The function {name_token.text}()", name_token.position)
        if name not in AGGREGATES + FIELD_FUNCTIONS + ("FIELDS",):
            raise SoqlError(MALFORMED_QUERY, f"Unknown function: {name_token.text}", name_token.position)
        self.expect_punct("(")
        if name == "FIELDS":
            keyword = self.current
            if not keyword.is_keyword("ALL", "STANDARD", "CUSTOM"):
                raise self.unexpected()
            self.advance()
            self.expect_punct(")")
            return FunctionCall(name, None, name_token.position, keyword.text.upper())
        if self.at_punct(")"):
            if name != "COUNT":
                raise self.unexpected()
            self.advance()
            return FunctionCall(name, None, name_token.position)
        argument = self.current
        if argument.kind != "IDENT":
            raise self.unexpected()
        self.advance()
        if self.at_punct("("):
            raise not_supported(f"A function inside {name_token.text}()", argument.position)
        self.expect_punct(")")
        return FunctionCall(name, FieldPath(tuple(argument.text.split(".")), argument.position), name_token.position)

    # -- WHERE
    def condition(self) -> Condition:
        first = self.term()
        if not self.current.is_keyword("AND", "OR"):
            return first
        operator = self.current.text.upper()
        operands = [first]
        while self.current.is_keyword("AND", "OR"):
            if self.current.text.upper() != operator:
                # SOQL has no precedence between AND and OR: mixing them needs parentheses.
                raise self.unexpected()
            self.advance()
            operands.append(self.term())
        return Logical(operator, tuple(operands))

    def term(self) -> Condition:
        if self.current.is_keyword("NOT"):
            self.advance()
            return Negation(self.term())
        if self.at_punct("("):
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.current
        if token.kind != "IDENT" or token.is_keyword("AND", "OR", "NOT", *_CLAUSE_WORDS):
            raise self.unexpected()
        self.advance()
        if self.at_punct("("):
            name = token.text.upper()
            if name in UNSUPPORTED_FUNCTIONS or name in AGGREGATES or name in FIELD_FUNCTIONS:
                raise not_supported(f"The function {token.text}() in WHERE", token.position)
            raise SoqlError(MALFORMED_QUERY, f"Unknown function: {token.text}", token.position)
        path = FieldPath(tuple(token.text.split(".")), token.position)
        operator_token = self.current
        if operator_token.kind == "OP":
            self.advance()
            operator = "!=" if operator_token.text == "<>" else operator_token.text
            return Comparison(path, operator, self.value(), operator_token.position)
        if operator_token.is_keyword("LIKE"):
            self.advance()
            return Comparison(path, "LIKE", self.value(), operator_token.position)
        if operator_token.is_keyword("IN"):
            self.advance()
            return Comparison(path, "IN", self.value_list(), operator_token.position)
        if operator_token.is_keyword("NOT") and self.peek().is_keyword("IN"):
            self.advance()
            self.advance()
            return Comparison(path, "NOT IN", self.value_list(), operator_token.position)
        if operator_token.is_keyword("INCLUDES", "EXCLUDES"):
            raise not_supported(f"{operator_token.text.upper()} (multi-select picklists)", operator_token.position)
        raise self.unexpected()

    def value_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        if self.current.is_keyword("SELECT"):
            raise not_supported("A semi-join or anti-join subquery (IN (SELECT ...))", self.current.position)
        values = [self.value()]
        while self.at_punct(","):
            self.advance()
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Literal:
        token = self.current
        kinds = {"STRING": "string", "NUMBER": "number", "DATE": "date", "DATETIME": "datetime"}
        if token.kind in kinds:
            self.advance()
            return Literal(kinds[token.kind], token.value, token.position, token.text, token.like_pattern)
        if token.kind == "DATE_N":
            name, number = token.value  # type: ignore[misc]
            if name not in DATE_N_LITERAL_NAMES:
                raise SoqlError(MALFORMED_QUERY, f"unexpected token: {token.text}", token.position)
            self.advance()
            return Literal("date_literal", (name, number), token.position, token.text)
        if token.kind == "IDENT":
            word = token.text.upper()
            if re.fullmatch(r"[A-Z]{3}\d+", word):
                raise not_supported(f"The currency literal {token.text}", token.position)
            if word == "NULL":
                self.advance()
                return Literal("null", None, token.position, token.text)
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", token.position, token.text)
            if word in DATE_LITERAL_NAMES:
                self.advance()
                return Literal("date_literal", (word, None), token.position, token.text)
        raise self.unexpected()

    # -- ORDER BY
    def order_list(self) -> list[OrderItem]:
        items = [self.order_item()]
        while self.at_punct(","):
            self.advance()
            items.append(self.order_item())
        return items

    def order_item(self) -> OrderItem:
        token = self.current
        if token.kind != "IDENT" or token.is_keyword(*_CLAUSE_WORDS):
            raise self.unexpected()
        self.advance()
        if self.at_punct("("):
            raise not_supported(f"ORDER BY {token.text}()", token.position)
        descending = False
        nulls_last: bool | None = None
        if self.current.is_keyword("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        if self.current.is_keyword("NULLS"):
            self.advance()
            if not self.current.is_keyword("FIRST", "LAST"):
                raise self.unexpected()
            nulls_last = self.advance().text.upper() == "LAST"
        return OrderItem(FieldPath(tuple(token.text.split(".")), token.position), descending, nulls_last)


def _strip_object_alias(query: Query) -> None:
    """`SELECT o.Name FROM Opportunity o`: drop the alias from every path."""
    alias = query.object_alias
    if alias is None:
        return
    lowered = alias.lower()

    def strip(path: FieldPath) -> FieldPath:
        if len(path.parts) > 1 and path.parts[0].lower() == lowered:
            return FieldPath(path.parts[1:], path.position)
        return path

    def strip_condition(condition: Condition) -> Condition:
        if isinstance(condition, Comparison):
            return Comparison(strip(condition.field), condition.operator, condition.value, condition.position)
        if isinstance(condition, Negation):
            return Negation(strip_condition(condition.operand))
        return Logical(condition.operator, tuple(strip_condition(item) for item in condition.operands))

    new_select = []
    for item in query.select:
        expression = item.expression
        if isinstance(expression, FieldPath):
            expression = strip(expression)
        elif expression.argument is not None:
            expression = FunctionCall(expression.name, strip(expression.argument), expression.position,
                                      expression.keyword)
        new_select.append(SelectItem(expression, item.alias))
    query.select = new_select
    if query.where is not None:
        query.where = strip_condition(query.where)
    query.order_by = [OrderItem(strip(item.field), item.descending, item.nulls_last) for item in query.order_by]
