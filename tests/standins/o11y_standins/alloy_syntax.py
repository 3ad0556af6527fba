# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Alloy configuration syntax for the Alloy stand-in: scanner, parser,
diagnostics, values, expression evaluation and argument schemas.

Written from the language reference and the grammar described in the
upstream ``syntax`` module of Grafana Alloy 1.18: blocks (``a.b.c "label"
{ ... }``) and attributes (``name = expr``) separated by newlines (the
scanner inserts terminators after identifiers, literals and closing
brackets, like Go), ``//`` and ``/* */`` comments, double-quoted strings
with Go escapes and backtick raw strings, numbers, floats, ``true``/
``false``/``null``, arrays, objects (identifier or string keys, commas
between fields), field access, indexing, calls and the usual operators.

Diagnostics print like Alloy's ``diag.Printer`` without colours::

    Error: /etc/alloy/config.alloy:9:2: unrecognized attribute name "test"

     8 | logging {
     9 |     test = "test"
       |     ^^^^^^^^^^^^^
    10 | }

Schemas (:class:`Block`, :class:`Attr` with a :class:`Type`) describe the
arguments and blocks of a component; :func:`typecheck_block` performs the
checks ``alloy validate`` does (unknown/duplicate attributes and blocks,
missing required ones, literal value types) and :func:`decode_block`
evaluates a block against a scope the way ``alloy run`` loads it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

# ---------------------------------------------------------------------------
# positions and diagnostics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pos:
    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        out = self.filename
        if self.line > 0:
            out = (out + ":" if out else "") + str(self.line)
            if self.column:
                out += ":%d" % self.column
        return out or "-"


NOPOS = Pos("", 0, 0)
ERROR, WARN = "error", "warn"


@dataclass
class Diagnostic:
    severity: str
    start: Pos
    message: str
    end: Optional[Pos] = None

    def __str__(self) -> str:
        return "%s: %s" % (self.start, self.message)


class Diagnostics(Exception):
    """A list of diagnostics raised as one error (like ``diag.Diagnostics``)."""

    def __init__(self, diags: Sequence[Diagnostic]):
        self.diags = list(diags)
        super().__init__(self.error_text())

    def error_text(self) -> str:
        if not self.diags:
            return "no errors"
        if len(self.diags) == 1:
            return str(self.diags[0])
        return "%s (and %d more diagnostics)" % (self.diags[0], len(self.diags) - 1)

    def has_errors(self) -> bool:
        return any(d.severity == ERROR for d in self.diags)


def _expand_tabs(text: str) -> str:
    return text.replace("\r", "").replace("\t", "    ").replace("\v", "    ")


def format_diagnostics(diags: Sequence[Diagnostic], sources: Dict[str, str]) -> str:
    """Render like ``diag.Printer.Fprint`` (one context line before and after)."""
    out: List[str] = []
    for i, d in enumerate(diags):
        out.append("%s: %s: %s\n" % ("Error" if d.severity == ERROR else "Warning", d.start, d.message))
        end = d.end or d.start
        src = sources.get(d.start.filename)
        if src is not None and end.filename == d.start.filename and d.start.line > 0:
            out.append("\n")
            lines = src.split("\n")
            first = max(d.start.line - 1, 1)
            last = min(end.line + 1, len(lines))
            width = len(str(last))
            multi = end.line > d.start.line
            for num in range(first, last + 1):
                line = lines[num - 1]
                prefix = str(num).rjust(width) + " | "
                if multi:
                    # upstream tests column 0: the first line of the range is outside it
                    prefix += "| " if d.start.line < num <= end.line else "  "
                out.append(prefix + _expand_tabs(line) + "\n")
                if num == d.start.line or (multi and num == end.line):
                    head = " " * width + (" |  _" if multi and num == d.start.line
                                          else " | |_" if multi else " | ")
                    out.append(head + _focus(line, num, d.start, end, multi) + "\n")
        if i + 1 < len(diags):
            out.append("\n")
    return "".join(out)


def _focus(line: str, num: int, start: Pos, end: Pos, multi: bool) -> str:
    blank = "_" if multi else " "
    res = []
    col = 0
    for ch in line:
        col += len(ch.encode("utf-8"))
        column = col - len(ch.encode("utf-8")) + 1
        if num == end.line and column > end.column:
            break
        inside = ((num > start.line or column >= start.column) and (num < end.line or column <= end.column))
        if ch in "\t\v":
            res.append(blank * 4)
        elif inside:
            res.append("^")
        else:
            res.append(blank)
    return "".join(res)


# ---------------------------------------------------------------------------
# scanner
# ---------------------------------------------------------------------------

IDENT, NUMBER, FLOAT, STRING, BOOL, NULL = "IDENT", "NUMBER", "FLOAT", "STRING", "BOOL", "NULL"
EOF, TERM, ILLEGAL = "EOF", "TERMINATOR", "ILLEGAL"
BINARY_PREC = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
               "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}


@dataclass
class Token:
    kind: str
    lit: str
    offset: int
    end: int  # offset just after the token


def _is_letter(ch: str) -> bool:
    return ch == "_" or ch.isalpha()


def _is_digit(ch: str) -> bool:
    return ch.isdigit()


def is_identifier(text: str) -> bool:
    return bool(text) and _is_letter(text[0]) and all(_is_letter(c) or _is_digit(c) for c in text)


class SourceFile:
    """Line table of one source; byte-based columns like Go."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self.line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.line_starts.append(i + 1)

    def pos(self, offset: int) -> Pos:
        import bisect
        idx = bisect.bisect_right(self.line_starts, offset) - 1
        start = self.line_starts[idx]
        col = len(self.text[start:offset].encode("utf-8")) + 1
        return Pos(self.name, idx + 1, col)


class Scanner:
    def __init__(self, src: SourceFile, errors: List[Diagnostic]):
        self.src = src
        self.text = src.text
        self.i = 1 if self.text.startswith("\ufeff") else 0
        self.errors = errors
        self.insert_term = False

    def error(self, offset: int, msg: str) -> None:
        self.errors.append(Diagnostic(ERROR, self.src.pos(offset), msg))

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def scan(self) -> Token:
        text = self.text
        while True:
            while self.i < len(text) and (text[self.i] in " \t\r" or (text[self.i] == "\n" and not self.insert_term)):
                self.i += 1
            start = self.i
            if start >= len(text):
                if self.insert_term:
                    self.insert_term = False
                    return Token(TERM, "\n", start, start)
                return Token(EOF, "", start, start)
            ch = text[start]
            if ch == "\n":
                self.insert_term = False
                self.i += 1
                return Token(TERM, "\n", start, start + 1)
            if ch == "/" and self._peek(1) in ("/", "*"):
                # comments; a comment running to the end of the line ends a statement
                if self._peek(1) == "/":
                    end = text.find("\n", start)
                    end = len(text) if end < 0 else end
                    ends_line = True
                else:
                    close = text.find("*/", start + 2)
                    if close < 0:
                        self.error(start, "block comment not terminated")
                        end = len(text)
                    else:
                        end = close + 2
                    rest = text[end:]
                    m = re.match(r"[ \t\r]*", rest)
                    after = rest[m.end():m.end() + 1]
                    ends_line = "\n" in text[start:end] or after in ("", "\n")
                if self.insert_term and ends_line:
                    self.insert_term = False
                    self.i = end
                    return Token(TERM, "\n", start, start)
                self.i = end
                continue
            break
        insert = False
        if _is_letter(ch):
            j = start + 1
            while j < len(text) and (_is_letter(text[j]) or _is_digit(text[j])):
                j += 1
            lit = text[start:j]
            self.i = j
            kind = BOOL if lit in ("true", "false") else NULL if lit == "null" else IDENT
            tok = Token(kind, lit, start, j)
            insert = True
        elif ch.isdigit() and ch in "0123456789" or (ch == "." and self._peek(1) in "0123456789" and self._peek(1)):
            tok = self._number(start)
            insert = True
        else:
            self.i += 1
            two = text[start:start + 2]
            if ch == '"':
                tok = Token(STRING, self._string(start, '"', True, False), start, self.i)
                insert = True
            elif ch == "`":
                tok = Token(STRING, self._string(start, "`", False, True), start, self.i)
                insert = True
            elif ch == "'":
                self.error(start, "illegal single-quoted string; use double quotes")
                tok = Token(ILLEGAL, self._string(start, "'", True, False), start, self.i)
                insert = True
            elif two in ("||", "&&", "==", "!=", "<=", ">="):
                self.i += 1
                tok = Token(two, "", start, self.i)
            elif ch in "|&":
                self.error(self.i, "missing second %s in %s" % (ch, ch * 2))
                tok = Token(ch * 2, "", start, self.i)
            elif ch in "!=<>+-*/%^{([,.":
                tok = Token(ch, "", start, self.i)
            elif ch in "})]":
                tok = Token(ch, "", start, self.i)
                insert = True
            else:
                self.error(start, "illegal character U+%04X '%s'" % (ord(ch), ch))
                tok = Token(ILLEGAL, ch, start, self.i)
                insert = self.insert_term
        self.insert_term = insert
        return tok

    def _number(self, start: int) -> Token:
        text = self.text
        j = start
        kind = NUMBER
        while j < len(text) and text[j] in "0123456789":
            j += 1
        if j < len(text) and text[j] == ".":
            kind = FLOAT
            j += 1
            while j < len(text) and text[j] in "0123456789":
                j += 1
        if j < len(text) and text[j] in "eE":
            kind = FLOAT
            j += 1
            if j < len(text) and text[j] in "+-":
                j += 1
            k = j
            while j < len(text) and text[j] in "0123456789":
                j += 1
            if j == k:
                self.error(start, "exponent has no digits")
        self.i = j
        return Token(kind, text[start:j], start, j)

    def _string(self, start: int, until: str, escape: bool, multiline: bool) -> str:
        text = self.text
        while True:
            if self.i >= len(text) or (not multiline and text[self.i] == "\n"):
                self.error(start, "string literal not terminated")
                break
            ch = text[self.i]
            self.i += 1
            if ch == until:
                break
            if escape and ch == "\\":
                self._escape()
        return text[start:self.i]

    def _escape(self) -> None:
        off = self.i
        ch = self._peek()
        if ch and ch in "abfnrtv\\\"'":
            self.i += 1
            return
        spec = {"x": (2, 16, 255), "u": (4, 16, 0x10FFFF), "U": (8, 16, 0x10FFFF)}
        if ch and ch in "01234567":
            n, base, mx = 3, 8, 255
        elif ch in spec and ch:
            self.i += 1
            n, base, mx = spec[ch]
        else:
            self.error(off, "escape sequence not terminated" if not ch else "unknown escape sequence")
            return
        x = 0
        while n > 0:
            c = self._peek()
            d = int(c, 16) if c and c in "0123456789abcdefABCDEF" else 16
            if d >= base:
                self.error(off, "escape sequence not terminated" if not c
                           else "illegal character U+%04X '%s' in escape sequence" % (ord(c), c))
                return
            x = x * base + d
            self.i += 1
            n -= 1
        if x > mx or 0xD800 <= x < 0xE000:
            self.error(off, "escape sequence is invalid Unicode code point")


def unquote(lit: str) -> str:
    """Value of a string literal (with its quotes)."""
    if lit.startswith("`"):
        return lit[1:-1] if len(lit) >= 2 and lit.endswith("`") else lit[1:]
    body = lit[1:-1] if len(lit) >= 2 and lit.endswith('"') else lit[1:]
    out: List[str] = []
    raw = bytearray()
    i = 0

    def flush_raw():
        if raw:
            out.append(raw.decode("utf-8", "replace"))
            raw.clear()

    while i < len(body):
        ch = body[i]
        if ch != "\\":
            flush_raw()
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in _ESCAPES:
            flush_raw()
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in ("x",):
            raw.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif nxt and nxt in "01234567":
            raw.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif nxt in ("u", "U"):
            flush_raw()
            n = 4 if nxt == "u" else 8
            out.append(chr(int(body[i + 2:i + 2 + n], 16)))
            i += 2 + n
        else:
            flush_raw()
            out.append(ch)
            i += 1
    flush_raw()
    return "".join(out)


# ---------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------

@dataclass
class Node:
    start: Pos
    end: Pos


@dataclass
class Literal(Node):
    kind: str
    lit: str


@dataclass
class Ident(Node):
    name: str


@dataclass
class Access(Node):
    value: Any
    name: str


@dataclass
class Index(Node):
    value: Any
    index: Any


@dataclass
class Call(Node):
    func: Any
    args: List[Any]


@dataclass
class ArrayExpr(Node):
    elements: List[Any]


@dataclass
class ObjectField:
    name: str
    quoted: bool
    pos: Pos
    value: Any


@dataclass
class ObjectExpr(Node):
    fields: List[ObjectField]


@dataclass
class Unary(Node):
    op: str
    value: Any


@dataclass
class Binary(Node):
    op: str
    left: Any
    right: Any


@dataclass
class Paren(Node):
    inner: Any


@dataclass
class Attribute(Node):
    name: str
    value: Any


@dataclass
class Block(Node):
    name: List[str]
    label: str
    label_pos: Optional[Pos]
    body: List[Any] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return ".".join(self.name)

    @property
    def block_id(self) -> str:
        return self.full_name + ("." + self.label if self.label else "")


@dataclass
class File:
    name: str
    text: str
    body: List[Any]


# ---------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------

class Parser:
    """Port of the recursive-descent grammar of the Alloy syntax (LL(1))."""

    def __init__(self, name: str, text: str):
        self.src = SourceFile(name, text)
        self.diags: List[Diagnostic] = []
        self.scanner = Scanner(self.src, self.diags)
        self.last_error_line = -1
        self.tok: Token = Token(EOF, "", 0, 0)
        self.next()

    # -- helpers ---------------------------------------------------------------
    def next(self) -> None:
        self.tok = self.scanner.scan()

    def pos(self, offset: Optional[int] = None) -> Pos:
        return self.src.pos(self.tok.offset if offset is None else offset)

    def end_pos(self, tok: Token) -> Pos:
        return self.src.pos(max(tok.end - 1, tok.offset))

    def tok_name(self) -> str:
        return self.tok.kind

    def error(self, msg: str) -> None:
        p = self.pos()
        if p.line == self.last_error_line:
            return
        self.last_error_line = p.line
        self.diags.append(Diagnostic(ERROR, p, msg))

    def expect(self, kind: str) -> Token:
        tok = self.tok
        if tok.kind != kind:
            self.error("expected %s, got %s" % (kind, self.tok_name()))
        self.next()
        return tok

    def advance(self, kind: str) -> None:
        while self.tok.kind != EOF and self.tok.kind != kind:
            self.next()

    def consume_statement(self) -> None:
        curly = brack = paren = 0
        while self.tok.kind != EOF:
            k = self.tok.kind
            curly += (k == "{") - (k == "}")
            brack += (k == "[") - (k == "]")
            paren += (k == "(") - (k == ")")
            if k == TERM and curly <= 0 and brack <= 0 and paren <= 0:
                return
            self.next()

    # -- grammar ---------------------------------------------------------------
    def parse_file(self) -> File:
        body = self.parse_body(EOF)
        return File(self.src.name, self.src.text, body)

    def parse_body(self, until: str) -> List[Any]:
        body = []
        while self.tok.kind not in (until, EOF):
            stmt = self.parse_statement()
            if stmt is not None:
                body.append(stmt)
            if self.tok.kind == until:
                break
            if self.tok.kind != TERM:
                self.error("expected %s, got %s" % (TERM, self.tok_name()))
                self.consume_statement()
            self.next()
        return body

    def parse_statement(self):
        if self.tok.kind != IDENT:
            self.error("expected identifier, got %s" % self.tok_name())
            self.advance(IDENT)
            return None
        start_tok = self.tok
        frags = [self.tok.lit]
        self.next()
        while self.tok.kind == ".":
            self.next()
            if self.tok.kind != IDENT:
                self.error("expected identifier, got %s" % self.tok_name())
            frags.append(self.tok.lit)
            self.next()
        label, label_pos = "", None
        if self.tok.kind not in ("=", "{"):
            if self.tok.kind == STRING:
                if not self.tok.lit.startswith('"'):
                    self.error("expected block label to be a double quoted string, but got %s" % json.dumps(self.tok.lit))
                if len(self.tok.lit) > 2:
                    label = self.tok.lit[1:-1]
                    if not is_identifier(label):
                        self.error("expected block label to be a valid identifier, but got %s" % json.dumps(label))
                label_pos = self.pos()
            else:
                self.error("expected block label, got %s" % self.tok_name())
            self.next()
        start = self.src.pos(start_tok.offset)
        if self.tok.kind == "=":
            self.next()
            if len(frags) != 1:
                self.diags.append(Diagnostic(ERROR, start, 'attribute names may only consist of a single identifier '
                                                           'with no "."'))
            elif label_pos is not None:
                self.diags.append(Diagnostic(ERROR, label_pos, "attribute names may not have labels"))
            value = self.parse_expression()
            return Attribute(start, getattr(value, "end", start), frags[0], value)
        if self.tok.kind == "{":
            self.next()
            body = self.parse_body("}")
            end_tok = self.expect("}")
            return Block(start, self.src.pos(end_tok.offset), frags, label, label_pos, body)
        if len(frags) == 1 and not label:
            self.error("expected attribute assignment or block body, got %s" % self.tok_name())
        else:
            self.error("expected block body, got %s" % self.tok_name())
        self.advance(IDENT)
        return None

    def parse_expression(self):
        return self.parse_binop(1)

    def parse_binop(self, in_prec: int):
        lhs = self.parse_pow()
        while True:
            prec = BINARY_PREC.get(self.tok.kind, 0) if self.tok.kind != "^" else 0
            if prec < in_prec or prec == 0:
                return lhs
            op = self.tok.kind
            self.next()
            rhs = self.parse_binop(prec + 1)
            lhs = Binary(lhs.start, rhs.end, op, lhs, rhs)

    def parse_pow(self):
        lhs = self.parse_unary()
        if self.tok.kind == "^":
            self.next()
            rhs = self.parse_pow()
            return Binary(lhs.start, rhs.end, "^", lhs, rhs)
        return lhs

    def parse_unary(self):
        if self.tok.kind in ("!", "-"):
            op, start = self.tok.kind, self.pos()
            self.next()
            val = self.parse_unary()
            return Unary(start, val.end, op, val)
        primary = self.parse_primary()
        while True:
            k = self.tok.kind
            if k == ".":
                self.next()
                tok = self.expect(IDENT)
                primary = Access(primary.start, self.end_pos(tok), primary, tok.lit)
            elif k == "[":
                self.next()
                idx = self.parse_expression()
                tok = self.expect("]")
                primary = Index(primary.start, self.src.pos(tok.offset), primary, idx)
            elif k == "(":
                self.next()
                args = self.parse_list(")") if self.tok.kind != ")" else []
                tok = self.expect(")")
                primary = Call(primary.start, self.src.pos(tok.offset), primary, args)
            elif k in (STRING, "{"):
                if k == STRING:
                    self.next()
                if self.tok.kind != "{":
                    self.expect("{")
                    self.consume_statement()
                    return primary
                self.next()
                self.parse_body("}")
                tok = self.tok
                if tok.kind != "}":
                    self.expect("}")
                    self.consume_statement()
                    return primary
                self.next()
                self.diags.append(Diagnostic(ERROR, primary.start, "cannot use a block as an expression",
                                             self.src.pos(tok.offset)))
            else:
                return primary

    def parse_primary(self):
        tok = self.tok
        start = self.pos()
        if tok.kind == IDENT:
            self.next()
            return Ident(start, self.end_pos(tok), tok.lit)
        if tok.kind in (STRING, NUMBER, FLOAT, BOOL, NULL):
            self.next()
            return Literal(start, self.end_pos(tok), tok.kind, tok.lit)
        if tok.kind == "(":
            self.next()
            inner = self.parse_expression()
            end = self.expect(")")
            return Paren(start, self.src.pos(end.offset), inner)
        if tok.kind == "[":
            self.next()
            elems = self.parse_list("]") if self.tok.kind != "]" else []
            end = self.expect("]")
            return ArrayExpr(start, self.src.pos(end.offset), elems)
        if tok.kind == "{":
            self.next()
            fields = self.parse_fields("}") if self.tok.kind != "}" else []
            end = self.expect("}")
            return ObjectExpr(start, self.src.pos(end.offset), fields)
        self.error("expected expression, got %s" % self.tok_name())
        while self.tok.kind not in (EOF, TERM, ")", "}", "]", ","):
            self.next()
        return Literal(start, start, NULL, "null")

    def parse_list(self, until: str) -> List[Any]:
        out = []
        while self.tok.kind not in (until, EOF):
            out.append(self.parse_expression())
            if self.tok.kind == until:
                break
            if self.tok.kind != ",":
                self.error("missing ',' in expression list")
            self.next()
        return out

    def parse_fields(self, until: str) -> List[ObjectField]:
        out = []
        while self.tok.kind not in (until, EOF):
            tok = self.tok
            name, quoted, fpos = "", False, self.pos()
            if tok.kind in (STRING, IDENT):
                name = tok.lit
                if tok.kind == STRING and len(tok.lit) > 2:
                    name, quoted = unquote(tok.lit), True
                self.next()
            else:
                self.error("expected field name (string or identifier), got %s" % self.tok_name())
                self.advance("=")
            self.expect("=")
            out.append(ObjectField(name, quoted, fpos, self.parse_expression()))
            if self.tok.kind == until:
                break
            if self.tok.kind != ",":
                self.error("missing ',' in field list")
            self.next()
        return out


def parse(name: str, text: str) -> File:
    """Parse one source; raises :class:`Diagnostics` on syntax errors."""
    p = Parser(name, text)
    f = p.parse_file()
    if p.diags:
        raise Diagnostics(p.diags)
    return f


def node_text(node: Node, sources: Dict[str, str]) -> str:
    """Source text of a node (for messages that quote the expression)."""
    src = sources.get(node.start.filename)
    if src is None:
        return "<expr>"
    f = SourceFile(node.start.filename, src)

    def off(p: Pos) -> int:
        line_start = f.line_starts[p.line - 1]
        data = src[line_start:].encode("utf-8")
        return line_start + len(data[:p.column - 1].decode("utf-8", "ignore"))

    return src[off(node.start):off(node.end) + 1]


# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------

class Secret(str):
    """A sensitive string (``alloytypes.Secret``)."""


class Capsule:
    """An opaque Go value exported by a component (a consumer, a receiver, rules ...)."""

    def __init__(self, kind: str, owner: str):
        self.kind = kind
        self.owner = owner

    def __repr__(self) -> str:
        return "capsule(%s)" % json.dumps(self.kind)


class Function:
    def __init__(self, name: str, fn: Callable[..., Any]):
        self.name = name
        self.fn = fn


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, Function):
        return "function"
    if isinstance(v, Capsule):
        return "capsule"
    return "capsule"


class EvalError(Exception):
    def __init__(self, node: Optional[Node], message: str, quote: bool = False):
        self.node = node
        self.quote = quote
        super().__init__(message)


def literal_value(lit: Literal) -> Any:
    if lit.kind == STRING:
        return unquote(lit.lit)
    if lit.kind == NUMBER:
        return int(lit.lit)
    if lit.kind == FLOAT:
        return float(lit.lit)
    if lit.kind == BOOL:
        return lit.lit == "true"
    return None


def is_constant(expr: Any) -> bool:
    """No identifiers or calls: the value is known without a scope."""
    if isinstance(expr, (Ident, Call, Access, Index)):
        return False
    if isinstance(expr, Literal):
        return True
    if isinstance(expr, ArrayExpr):
        return all(is_constant(e) for e in expr.elements)
    if isinstance(expr, ObjectExpr):
        return all(is_constant(f.value) for f in expr.fields)
    if isinstance(expr, Unary):
        return is_constant(expr.value)
    if isinstance(expr, Binary):
        return is_constant(expr.left) and is_constant(expr.right)
    if isinstance(expr, Paren):
        return is_constant(expr.inner)
    return False


def traversals(expr: Any) -> List[Tuple[List[str], Node]]:
    """Identifier chains (``a.b.c``) referenced by an expression, like astutil.TraversalsFromBody."""
    out: List[Tuple[List[str], Node]] = []

    def chain(e) -> Optional[Tuple[List[str], Node]]:
        if isinstance(e, Ident):
            return [e.name], e
        if isinstance(e, Access):
            inner = chain(e.value)
            if inner is not None:
                return inner[0] + [e.name], Node(inner[1].start, e.end)
        return None

    def walk(e):
        if e is None:
            return
        c = chain(e)
        if c is not None:
            out.append(c)
            return
        if isinstance(e, Access):
            walk(e.value)
        elif isinstance(e, Index):
            walk(e.value)
            walk(e.index)
        elif isinstance(e, Call):
            walk(e.func)
            for a in e.args:
                walk(a)
        elif isinstance(e, ArrayExpr):
            for a in e.elements:
                walk(a)
        elif isinstance(e, ObjectExpr):
            for f in e.fields:
                walk(f.value)
        elif isinstance(e, Unary):
            walk(e.value)
        elif isinstance(e, Binary):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, Paren):
            walk(e.inner)

    walk(expr)
    return out


def body_traversals(body: List[Any]) -> List[Tuple[List[str], Node]]:
    out = []
    for stmt in body:
        if isinstance(stmt, Attribute):
            out += traversals(stmt.value)
        elif isinstance(stmt, Block):
            out += body_traversals(stmt.body)
    return out


class Evaluator:
    """Evaluates expressions against a scope (dict of names to values)."""

    def __init__(self, scope: Dict[str, Any]):
        self.scope = scope

    def eval(self, e: Any) -> Any:
        if isinstance(e, Literal):
            return literal_value(e)
        if isinstance(e, Paren):
            return self.eval(e.inner)
        if isinstance(e, Ident):
            if e.name not in self.scope:
                raise EvalError(e, "identifier %s does not exist" % json.dumps(e.name))
            return self.scope[e.name]
        if isinstance(e, Access):
            base = self.eval(e.value)
            if isinstance(base, dict):
                if e.name not in base:
                    raise EvalError(e, "field %s does not exist" % json.dumps(e.name))
                return base[e.name]
            raise EvalError(e.value, "cannot access field %s on value of type %s"
                            % (json.dumps(e.name), type_name(base)))
        if isinstance(e, Index):
            base = self.eval(e.value)
            idx = self.eval(e.index)
            if isinstance(base, list):
                if not isinstance(idx, int) or isinstance(idx, bool):
                    raise EvalError(e.index, "should be number, got %s" % type_name(idx), quote=True)
                if not 0 <= idx < len(base):
                    raise EvalError(e.index, "index %d is out of range of array with length %d" % (idx, len(base)))
                return base[idx]
            if isinstance(base, dict):
                if not isinstance(idx, str):
                    raise EvalError(e.index, "should be string, got %s" % type_name(idx), quote=True)
                return base.get(idx)
            raise EvalError(e.value, "expected object or array, got %s" % type_name(base))
        if isinstance(e, Call):
            fn = self.eval(e.func)
            if not isinstance(fn, Function):
                raise EvalError(e.func, "cannot call non-function type %s" % type_name(fn))
            args = [self.eval(a) for a in e.args]
            try:
                return fn.fn(*args)
            except EvalError:
                raise
            except (TypeError, ValueError, KeyError) as exc:
                raise EvalError(e, "%s: %s" % (fn.name, exc)) from None
        if isinstance(e, ArrayExpr):
            return [self.eval(x) for x in e.elements]
        if isinstance(e, ObjectExpr):
            return {f.name: self.eval(f.value) for f in e.fields}
        if isinstance(e, Unary):
            v = self.eval(e.value)
            if e.op == "!":
                if not isinstance(v, bool):
                    raise EvalError(e.value, "should be bool, got %s" % type_name(v), quote=True)
                return not v
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise EvalError(e.value, "should be number, got %s" % type_name(v), quote=True)
            return -v
        if isinstance(e, Binary):
            return self._binary(e)
        raise EvalError(e, "unsupported expression")

    def _binary(self, e: Binary) -> Any:
        a, b = self.eval(e.left), self.eval(e.right)
        op = e.op
        if op in ("||", "&&"):
            for side, v in ((e.left, a), (e.right, b)):
                if not isinstance(v, bool):
                    raise EvalError(side, "should be bool, got %s" % type_name(v), quote=True)
            return (a or b) if op == "||" else (a and b)
        if op in ("==", "!="):
            same = type_name(a) == type_name(b) and a == b
            return same if op == "==" else not same
        num = (int, float)
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        if op in ("<", "<=", ">", ">=") and isinstance(a, str) and isinstance(b, str):
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        for side, v in ((e.left, a), (e.right, b)):
            if not isinstance(v, num) or isinstance(v, bool):
                raise EvalError(side, "should be number, got %s" % type_name(v), quote=True)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise EvalError(e.right, "division by zero")
            return a / b if (isinstance(a, float) or isinstance(b, float) or a % b) else a // b
        if op == "%":
            if b == 0:
                raise EvalError(e.right, "division by zero")
            return a % b
        if op == "^":
            return a ** b
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


# ---------------------------------------------------------------------------
# types and schemas
# ---------------------------------------------------------------------------

_GO_DUR = re.compile(r"^[+-]?((\d+(\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$")
_BYTES = re.compile(r"^(\d+(\.\d+)?)\s*([KMGTPE]i?B|B|[KMGTPE]i?|b)?$", re.I)


class Type:
    """An argument type: how a value is checked and converted."""

    name = "any"

    def check(self, v: Any) -> Any:
        """Return the converted value or raise ValueError(message) / TypeError(expected)."""
        return v


class _Prim(Type):
    def __init__(self, name: str, pytypes: tuple, conv: Optional[Callable[[Any], Any]] = None):
        self.name = name
        self.pytypes = pytypes
        self.conv = conv

    def check(self, v):
        if isinstance(v, bool) and bool not in self.pytypes:
            raise TypeError(self.name)
        if not isinstance(v, self.pytypes):
            raise TypeError(self.name)
        return self.conv(v) if self.conv else v


def _duration(v: str) -> str:
    if v != "0" and not _GO_DUR.match(v):
        raise ValueError('time: invalid duration %s' % json.dumps(v))
    return v


def _bytes(v: str) -> str:
    if not _BYTES.match(v.strip()):
        raise ValueError("units: unknown unit in %s" % json.dumps(v))
    return v


STRING_T = _Prim("string", (str,))
SECRET_T = _Prim("string", (str,), Secret)
NUMBER_T = _Prim("number", (int, float))
INT_T = _Prim("number", (int,))
BOOL_T = _Prim("bool", (bool,))
DURATION_T = _Prim("string", (str,), _duration)
BYTES_T = _Prim("string", (str,), _bytes)
ANY_T = Type()


class Enum(Type):
    def __init__(self, what: str, choices: Sequence[str]):
        self.name = "string"
        self.what = what
        self.choices = list(choices)

    def check(self, v):
        if not isinstance(v, str):
            raise TypeError("string")
        if v not in self.choices:
            raise ValueError("unknown %s %s" % (self.what, v) if self.what else
                             "invalid value %s, must be one of %s" % (json.dumps(v), ", ".join(self.choices)))
        return v


class Regex(Type):
    name = "string"

    def check(self, v):
        if not isinstance(v, str):
            raise TypeError("string")
        try:
            re.compile(v.replace("(?P<", "(?P<").replace("\\z", "\\Z"))
        except re.error as exc:
            raise ValueError("error parsing regexp: %s: `%s`" % (exc.msg, v)) from None
        return v


class ListOf(Type):
    def __init__(self, item: Type):
        self.item = item
        self.name = "array"

    def check(self, v):
        if not isinstance(v, list):
            raise TypeError("array")
        return [self.item.check(x) for x in v]


class MapOf(Type):
    def __init__(self, item: Type):
        self.item = item
        self.name = "object"

    def check(self, v):
        if not isinstance(v, dict):
            raise TypeError("object")
        return {k: self.item.check(x) for k, x in v.items()}


class CapsuleOf(Type):
    def __init__(self, kind: str):
        self.kind = kind
        self.name = 'capsule("%s")' % kind

    def check(self, v):
        if not isinstance(v, Capsule) or v.kind != self.kind:
            raise TypeError(self.name)
        return v


class Nullable(Type):
    def __init__(self, inner: Type):
        self.inner = inner
        self.name = inner.name

    def check(self, v):
        return None if v is None else self.inner.check(v)


TARGETS_T = ListOf(MapOf(STRING_T))
STRINGS_T = ListOf(STRING_T)


@dataclass
class Attr:
    type: Type = ANY_T
    required: bool = False
    default: Any = None


@dataclass
class BlockSpec:
    """Arguments and blocks of a block (or a component's top level)."""

    attrs: Dict[str, Attr] = field(default_factory=dict)
    blocks: Dict[str, "BlockRef"] = field(default_factory=dict)
    # ``stage.json``-style enum blocks: prefix -> {variant: BlockRef}
    enums: Dict[str, Dict[str, "BlockRef"]] = field(default_factory=dict)
    opaque: bool = False  # accepted as written (for blocks the stand-in does not model)


@dataclass
class BlockRef:
    spec: BlockSpec
    required: bool = False
    repeated: bool = False


OPAQUE = BlockSpec(opaque=True)


def spec(attrs: Optional[Dict[str, Attr]] = None, blocks: Optional[Dict[str, BlockRef]] = None,
         enums: Optional[Dict[str, Dict[str, BlockRef]]] = None) -> BlockSpec:
    return BlockSpec(dict(attrs or {}), dict(blocks or {}), dict(enums or {}))


def block_name_lookup(s: BlockSpec, name: str) -> Optional[BlockRef]:
    if name in s.blocks:
        return s.blocks[name]
    if "." in name:
        prefix, variant = name.split(".", 1)
        if prefix in s.enums:
            return s.enums[prefix].get(variant)
    return None


def _diag(node: Node, msg: str, end: Optional[Pos] = None) -> Diagnostic:
    return Diagnostic(ERROR, node.start, msg, end if end is not None else node.end)


def typecheck_block(b: Block, s: BlockSpec) -> List[Diagnostic]:
    """What ``alloy validate`` checks for a block against its arguments type."""
    diags: List[Diagnostic] = []
    if s.opaque:
        return diags
    seen: Dict[str, bool] = {}
    counts: Dict[str, int] = {}
    for stmt in b.body:
        if isinstance(stmt, Block):
            counts[stmt.full_name] = counts.get(stmt.full_name, 0) + 1
    for stmt in b.body:
        if isinstance(stmt, Attribute):
            a = s.attrs.get(stmt.name)
            if a is None:
                if stmt.name in s.blocks:
                    diags.append(_diag(stmt, "%s must be a block, but is used as an attribute" % json.dumps(stmt.name)))
                else:
                    diags.append(_diag(stmt, "unrecognized attribute name %s" % json.dumps(stmt.name)))
                continue
            if stmt.name in seen:
                diags.append(_diag(stmt, "attribute %s may only be provided once" % json.dumps(stmt.name)))
                continue
            seen[stmt.name] = True
            if is_constant(stmt.value):
                try:
                    v = Evaluator({}).eval(stmt.value)
                    a.type.check(v)
                except EvalError as exc:
                    diags.append(_diag(exc.node or stmt.value, str(exc)))
                except TypeError as exc:
                    diags.append(_diag(stmt.value, "expected %s, got %s" % (exc.args[0], _constant_type(stmt.value))))
                except ValueError as exc:
                    diags.append(_diag(stmt.value, str(exc)))
        elif isinstance(stmt, Block):
            name = stmt.full_name
            ref = block_name_lookup(s, name)
            if ref is None:
                if name in s.attrs:
                    diags.append(_diag(stmt, "%s must be an attribute, but is used as a block" % json.dumps(name)))
                else:
                    diags.append(_diag(stmt, "unrecognized block name %s" % json.dumps(name)))
                continue
            if stmt.label:
                diags.append(Diagnostic(ERROR, stmt.start, "block %s requires empty label" % json.dumps(name),
                                        stmt.label_pos))
            if not ref.repeated and counts.get(name, 0) > 1:
                diags.append(_diag(stmt, "block %s may only be specified once" % json.dumps(name)))
                continue
            diags += typecheck_block(stmt, ref.spec)
    for name, a in s.attrs.items():
        if a.required and name not in seen:
            diags.append(_diag(b, "missing required attribute %s" % json.dumps(name)))
    for name, ref in s.blocks.items():
        if ref.required and name not in counts:
            diags.append(_diag(b, "missing required block %s" % json.dumps(name)))
    return diags


def _constant_type(expr: Any) -> str:
    try:
        return type_name(Evaluator({}).eval(expr))
    except EvalError:
        return "null"


class DecodeError(Exception):
    def __init__(self, diags: List[Diagnostic]):
        self.diags = diags
        super().__init__(str(diags[0]) if diags else "decode error")


def decode_block(b: Block, s: BlockSpec, ev: Evaluator, sources: Dict[str, str]) -> Dict[str, Any]:
    """Evaluate a block into a dict (attributes by name; blocks as a dict, or a
    list of dicts when repeated; enum blocks as a list of ``(variant, dict)``)."""
    diags = typecheck_block(b, s)
    if diags:
        raise DecodeError(diags)
    return _decode(b, s, ev, sources)


def _decode(b: Block, s: BlockSpec, ev: Evaluator, sources: Dict[str, str]) -> Dict[str, Any]:
    if s.opaque:
        return {"__opaque__": True}
    out: Dict[str, Any] = {}
    for name, a in s.attrs.items():
        if a.default is not None:
            out[name] = a.default
    for stmt in b.body:
        if isinstance(stmt, Attribute):
            a = s.attrs[stmt.name]
            try:
                v = ev.eval(stmt.value)
            except EvalError as exc:
                node = exc.node or stmt.value
                msg = str(exc)
                if exc.quote:
                    msg = "%s %s" % (node_text(node, sources), msg)
                raise DecodeError([_diag(node, msg)]) from None
            try:
                out[stmt.name] = a.type.check(v)
            except TypeError as exc:
                raise DecodeError([_diag(stmt.value, "%s should be %s, got %s"
                                         % (node_text(stmt.value, sources), exc.args[0], type_name(v)))]) from None
            except ValueError as exc:
                raise DecodeError([_diag(stmt.value, str(exc))]) from None
        else:
            name = stmt.full_name
            ref = block_name_lookup(s, name)
            val = _decode(stmt, ref.spec, ev, sources)
            val["__node__"] = stmt
            if "." in name and name.split(".", 1)[0] in s.enums:
                out.setdefault(name.split(".", 1)[0], []).append((name.split(".", 1)[1], val))
            elif ref.repeated:
                out.setdefault(name, []).append(val)
            else:
                out[name] = val
    return out
