# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PromQL subset and an in-memory series store, shared by the stand-ins that store or select series.

Parsing follows Prometheus' ``promql/parser`` where the subset reaches (positions ``1:N`` and the
``parse error`` texts): number literals, ``vector(<number>)``, and vector selectors (``name``,
``name{l="v", ...}``, ``{__name__="name"}``) with the four matcher operators.  Anything else that
is valid PromQL is refused as :class:`Unsupported` (the caller answers it as an error, never with
wrong data).  :func:`parse_metric_selector` is ``parser.ParseMetricSelector`` (Mimir's ``match[]``,
Pyroscope's and Grafana's label selectors).

Evaluation uses Prometheus' default lookback delta (5m): an instant selector at ``t`` returns each
series' newest sample in ``(t - 5m, t]``.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from decimal import Decimal
from typing import Dict, Iterable, List, Optional, Tuple

LOOKBACK_MS = 5 * 60 * 1000

Labels = Dict[str, str]


class ParseError(ValueError):
    """A PromQL parse error, rendered like Prometheus (``1:5: parse error: ...``)."""

    def __init__(self, pos: int, message: str):
        super().__init__("1:%d: parse error: %s" % (pos + 1, message))


class Unsupported(ValueError):
    """Valid PromQL beyond the subset the stand-in evaluates."""


class Matcher:
    OPS = ("=~", "!~", "!=", "=")

    def __init__(self, name: str, op: str, value: str):
        self.name, self.op, self.value = name, op, value
        self.regex = None
        if op in ("=~", "!~"):
            try:
                self.regex = re.compile(value, re.DOTALL)  # Prometheus anchors: fullmatch below
            except re.error as exc:
                raise ValueError("error parsing regexp: %s: `%s`" % (exc.msg, value)) from None

    def matches(self, labels: Labels) -> bool:
        got = labels.get(self.name, "")  # an absent label matches like the empty value
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        found = self.regex.fullmatch(got) is not None
        return found if self.op == "=~" else not found

    def matches_empty(self) -> bool:
        return self.matches({})

    def __repr__(self) -> str:
        return "%s%s%r" % (self.name, self.op, self.value)


class Selector:
    def __init__(self, matchers: List[Matcher]):
        self.matchers = matchers


class VectorConst:
    def __init__(self, value: float):
        self.value = value


class NumberLiteral:
    def __init__(self, value: float):
        self.value = value


# -- lexing ---------------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NUMBER = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[iI][nN][fF]|[nN][aA][nN])")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
            '"': '"', "'": "'"}
# PromQL functions, aggregations and keywords: valid PromQL the subset does not evaluate
_KNOWN_FUNCTIONS = set(
    "abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max "
    "clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv exp "
    "floor histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar "
    "histogram_sum holt_winters hour idelta increase irate label_join label_replace last_over_time ln log10 log2 "
    "mad_over_time max_over_time min_over_time minute month pi predict_linear present_over_time quantile_over_time "
    "rad rate resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt "
    "stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year".split())
_AGGREGATIONS = set("sum avg count min max group stddev stdvar topk bottomk quantile count_values limitk "
                    "limit_ratio".split())


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif ch == "#":  # comment to end of line
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos:self.pos + 1]

    def at_end(self) -> bool:
        return self.peek() == ""

    def unexpected(self, what: str, context: str = "") -> ParseError:
        if self.at_end():
            return ParseError(self.pos, "unexpected end of input" + (" " + context if context else ""))
        tok = self.text[self.pos]
        return ParseError(self.pos, 'unexpected character: %r' % tok if not context
                          else 'unexpected %s %s' % (what or '"%s"' % tok, context))

    def string(self) -> str:
        quote = self.text[self.pos]
        start = self.pos
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                raise ParseError(start, "unterminated quoted string %s" % self.text[start + 1:])
            ch = self.text[self.pos]
            self.pos += 1
            if ch == quote:
                return "".join(out)
            if ch == "\\" and quote != "`":
                esc = self.text[self.pos:self.pos + 1]
                self.pos += 1
                if esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                elif esc in ("x", "u", "U"):
                    width = {"x": 2, "u": 4, "U": 8}[esc]
                    digits = self.text[self.pos:self.pos + width]
                    try:
                        out.append(chr(int(digits, 16)))
                    except ValueError:
                        raise ParseError(self.pos, "invalid escape sequence") from None
                    self.pos += width
                else:
                    raise ParseError(self.pos - 1, "unknown escape sequence %r" % esc)
            else:
                out.append(ch)

    def matchers(self) -> List[Matcher]:
        """``{...}``, the opening brace already consumed."""
        out: List[Matcher] = []
        while True:
            ch = self.peek()
            if ch == "}":
                self.pos += 1
                return out
            if ch in ('"', "'", "`"):  # a quoted label name (UTF-8 names) or a quoted metric name
                name = self.string()
            else:
                m = _LABEL.match(self.text, self.pos)
                if not m:
                    raise self.unexpected("", "in label matching, expected label")
                name = m.group(0)
                self.pos = m.end()
            self.skip()
            op = next((o for o in Matcher.OPS if self.text.startswith(o, self.pos)), None)
            if op is None:
                if self.at_end():
                    raise ParseError(self.pos, "unexpected end of input inside braces")
                tok = self.text[self.pos]
                if tok in ",}" and not out and ch in ('"', "'", "`"):
                    out.append(Matcher("__name__", "=", name))  # {"metric.name"}
                    if tok == ",":
                        self.pos += 1
                    continue
                raise ParseError(self.pos, 'unexpected "%s" in label matching, expected label matching operator'
                                 % tok)
            self.pos += len(op)
            if self.peek() not in ('"', "'", "`"):
                if self.at_end():
                    raise ParseError(self.pos, "unexpected end of input inside braces")
                raise ParseError(self.pos, 'unexpected "%s" in label matching, expected string'
                                 % self.text[self.pos])
            value = self.string()
            try:
                out.append(Matcher(name, op, value))
            except ValueError as exc:
                raise ParseError(self.pos, str(exc)) from None
            nxt = self.peek()
            if nxt == ",":
                self.pos += 1
            elif nxt != "}":
                if not nxt:
                    raise ParseError(self.pos, "unexpected end of input inside braces")
                raise ParseError(self.pos, 'unexpected "%s" in label matching, expected "," or "}"' % nxt)

    def selector(self, start: int, name: Optional[str]) -> Selector:
        matchers: List[Matcher] = []
        if self.peek() == "{":
            self.pos += 1
            matchers = self.matchers()
        if name is not None:
            for m in matchers:
                if m.name == "__name__":
                    raise ParseError(start, 'metric name must not be set twice: "%s" or "%s"' % (name, m.value))
            matchers.insert(0, Matcher("__name__", "=", name))
        if not any(not m.matches_empty() for m in matchers):
            raise ParseError(start, "vector selector must contain at least one non-empty matcher")
        return Selector(matchers)

    def expression(self):
        self.skip()
        start = self.pos
        if self.at_end():
            raise ParseError(self.pos, "no expression found in input")
        ident = _IDENT.match(self.text, self.pos)
        num = _NUMBER.match(self.text, self.pos)
        if num and (ident is None or ident.group(0).lower() in ("inf", "nan")):
            self.pos = num.end()
            return NumberLiteral(_to_float(num.group(0)))
        if self.text[self.pos] == "{":
            return self.selector(start, None)
        if not ident:
            raise ParseError(self.pos, 'unexpected character: %r' % self.text[self.pos])
        name = ident.group(0)
        self.pos = ident.end()
        if self.peek() == "(":
            return self.call(start, name)
        if name in _AGGREGATIONS and self.peek() != "{" and re.match(r"\s*(by|without)\b", self.text[self.pos:]):
            raise Unsupported("aggregation %s" % name)
        return self.selector(start, name)

    def call(self, start: int, name: str):
        if name not in _KNOWN_FUNCTIONS and name not in _AGGREGATIONS:
            raise ParseError(start, 'unknown function with name "%s"' % name)
        if name != "vector":
            raise Unsupported("function %s" % name)
        self.pos += 1  # "("
        arg = self.expression()
        if self.peek() != ")":
            raise self.unexpected("", "in call")
        self.pos += 1
        if not isinstance(arg, NumberLiteral):
            raise Unsupported("vector() of a non-literal")
        return VectorConst(arg.value)


def _to_float(text: str) -> float:
    t = text.lower().lstrip("+")
    if t.lstrip("-").startswith("0x"):
        return float(int(t, 16))
    return float(t)


def parse_expr(text: str):
    """The expression tree of *text*: raises :class:`ParseError` or :class:`Unsupported`."""
    p = _Parser(text)
    tree = p.expression()
    if not p.at_end():
        rest = p.text[p.pos:]
        if rest[:1] == "[":
            raise Unsupported("range vector selector")
        if re.match(r"(==|!=|>=|<=|[-+*/%^<>]|and\b|or\b|unless\b|offset\b|@)", rest):
            if re.match(r"(==|!=|>=|<=|[-+*/%^<>]|and\b|or\b|unless\b)\s*$", rest):
                raise ParseError(len(text.rstrip()), "unexpected end of input")
            raise Unsupported("binary operators and modifiers")
        raise ParseError(p.pos, 'unexpected character after expression: %r' % rest[0])
    return tree


def parse_metric_selector(text: str) -> List[Matcher]:
    """``parser.ParseMetricSelector``: one vector selector, its matchers (``__name__`` first when named)."""
    try:
        tree = parse_expr(text)
    except Unsupported:
        raise ParseError(0, "expected type vector selector in metric selector") from None
    if not isinstance(tree, Selector):
        raise ParseError(0, "unexpected %s, expected vector selector"
                         % ("number" if isinstance(tree, NumberLiteral) else "function call"))
    return tree.matchers


def problem(text: str) -> Optional[str]:
    """The parse error of *text* (valid but unsupported expressions are no problem), else None."""
    try:
        parse_expr(text)
    except ParseError as exc:
        return str(exc)
    except Unsupported:
        pass
    return None


# -- storage and evaluation -----------------------------------------------------------------------------------

class OutOfOrder(ValueError):
    pass


class SeriesStore:
    """Series of one tenant: label set -> samples (timestamp ms, value), ordered by time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.series: Dict[Tuple[Tuple[str, str], ...], Tuple[List[int], List[float]]] = {}

    def append(self, labels: Labels, samples: Iterable[Tuple[int, float]]) -> int:
        """Append samples; a sample older than the series' newest raises :class:`OutOfOrder` (like a TSDB head
        without an out-of-order window); one at the newest timestamp with the same value is a duplicate."""
        key = tuple(sorted(labels.items()))
        added = 0
        with self.lock:
            times, values = self.series.setdefault(key, ([], []))
            for ts, value in samples:
                if times and ts < times[-1]:
                    raise OutOfOrder("out of order sample")
                if times and ts == times[-1]:
                    if values[-1] != value and not (math.isnan(values[-1]) and math.isnan(value)):
                        raise OutOfOrder("duplicate sample for timestamp")
                    continue
                times.append(ts)
                values.append(value)
                added += 1
        return added

    def select(self, matchers: List[Matcher], mint: Optional[int] = None, maxt: Optional[int] = None
               ) -> List[Tuple[Labels, List[int], List[float]]]:
        """Series matching all *matchers* with a sample in [mint, maxt] (bounds optional), sorted by labels."""
        out = []
        with self.lock:
            items = [(k, list(t), list(v)) for k, (t, v) in self.series.items()]
        for key, times, values in sorted(items):
            labels = dict(key)
            if not all(m.matches(labels) for m in matchers):
                continue
            lo = 0 if mint is None else bisect.bisect_left(times, mint)
            hi = len(times) if maxt is None else bisect.bisect_right(times, maxt)
            if lo < hi:
                out.append((labels, times, values))
        return out


def instant_vector(tree, store: Optional[SeriesStore], t_ms: int) -> List[Tuple[Labels, float]]:
    """The instant vector of *tree* at *t_ms* (a number literal yields one sample without labels)."""
    if isinstance(tree, (VectorConst, NumberLiteral)):
        return [({}, tree.value)]
    if store is None:
        return []
    out = []
    for labels, times, values in store.select(tree.matchers, t_ms - LOOKBACK_MS + 1, t_ms):
        i = bisect.bisect_right(times, t_ms) - 1
        out.append((labels, values[i]))
    return out


def format_value(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64), Prometheus' JSON sample value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


def format_time(t_ms: int):
    """A sample time in the JSON API: unix seconds, fractional only when needed."""
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000.0
