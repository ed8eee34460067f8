"""Solution markers: the regions of reference code that students must write themselves.

A region is the run of lines between two full-line comments inside a function body::

    def softmax(x, dim):
        # BEGIN SOLUTION problem=softmax stub=pass
        ...
        # END SOLUTION

Markers are found with :mod:`tokenize`, so the same text inside a string or a docstring is
never a marker; functions are located with :mod:`ast`. A malformed marker raises
:class:`MarkerError` naming the file and line (errors about a whole region name its BEGIN
line). Rendering stubs is the caller's job, through the ``render_stub`` callback.
"""

from __future__ import annotations

import ast
import io
import re
import shlex
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import MarkerError

OPTIONS = frozenset({"problem", "stub"})
"""The ``key=value`` options a ``BEGIN SOLUTION`` marker accepts."""

# `\b` keeps look-alikes such as "# BEGIN SOLUTIONS below" from counting as markers.
_MARKER = re.compile(r"#\s*(?P<kind>BEGIN|END)\s+SOLUTION\b(?P<rest>.*)")


@dataclass(frozen=True)
class Region:
    """One solution region; lines are 1-based and include the two marker lines."""

    begin: int
    end: int
    indent: str  # the whitespace before the BEGIN marker; the stub is indented with it
    function: str  # "Tokenizer.encode", "outer.inner"; "<module>" when in no function
    problem: str | None = None
    stub: str | None = None


RenderStub = Callable[[Region], str]
"""Returns the code that replaces a region: unindented, possibly several lines."""


@dataclass(frozen=True)
class _Marker:
    kind: str  # "BEGIN" or "END"
    line: int
    indent: str
    options: dict[str, str]


@dataclass(frozen=True)
class _Scope:
    """A ``def`` or ``class`` statement and the lines its body covers."""

    name: str  # dotted qualified name
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    first: int  # its first decorator's line, or the def line
    header_end: int  # the line of the colon ending the signature
    end: int  # last body line, counting trailing comments: `# END SOLUTION` often is one
    in_function: bool  # nested inside some function
    is_function: bool  # a def, not a class

    def holds(self, line: int) -> bool:
        return self.header_end < line <= self.end


def find_regions(source: str, path: str | Path, *, require_function: bool = True) -> list[Region]:
    """Every region of ``source`` in file order; ``path`` only labels error messages.

    Notebook cells pass ``require_function=False`` to allow regions outside functions.
    """
    return _analyse(source, path, require_function)[2]


def strip_solutions(
    source: str, path: str | Path, render_stub: RenderStub, *, require_function: bool = True
) -> str:
    """Replace every region, marker lines included, by its stub indented like the markers."""
    lines, _, regions = _analyse(source, path, require_function)
    newline = _newline(lines)
    edits = [(r.begin, r.end, _indented(render_stub(r), r.indent, newline), r) for r in regions]
    return _apply(lines, edits, path)


def keep_solutions(source: str, path: str | Path, *, require_function: bool = True) -> str:
    """Drop only the marker lines, keeping the solutions (markers are still validated)."""
    lines, _, regions = _analyse(source, path, require_function)
    markers = {n for r in regions for n in (r.begin, r.end)}
    return "".join(text for n, text in enumerate(lines, 1) if n not in markers)


def stub_functions(source: str, path: str | Path, render_stub: RenderStub) -> str:
    """Stub every function not nested in another one: top-level functions and methods.

    Decorators, signature and docstring stay; the rest of the body becomes the stub, marker
    lines included. Each synthesized :class:`Region` spans the body, docstring included.
    """
    lines, scopes, regions = _analyse(source, path, require_function=True)
    newline = _newline(lines)
    edits = []
    for scope in (s for s in scopes if s.is_function and not s.in_function):
        keep = _kept_prefix_end(scope, path)
        early = [r for r in regions if scope.holds(r.begin) and r.begin <= keep]
        if early:  # its BEGIN marker would survive, with nothing after it
            raise MarkerError(path, early[0].begin, f"solution region begins before the end of "
                              f"the docstring of `{scope.name}` (line {keep})")
        first_line = scope.node.body[0].lineno
        indent = _leading_space(lines[first_line - 1])
        region = Region(first_line, scope.end, indent, scope.name)
        edits.append((keep + 1, scope.end, _indented(render_stub(region), indent, newline), region))
    return _apply(lines, edits, path)


def solution_lines(source: str, path: str | Path, *, require_function: bool = True) -> list[str]:
    """The lines inside regions, without markers or line endings: what must never leak."""
    lines, _, regions = _analyse(source, path, require_function)
    return [lines[n - 1].rstrip("\r\n") for r in regions for n in range(r.begin + 1, r.end)]


def _analyse(
    source: str, path: str | Path, require_function: bool
) -> tuple[list[str], list[_Scope], list[Region]]:
    """The physical lines (line endings kept), every def and class, and the checked regions."""
    try:
        tree = ast.parse(source, filename=str(path))
        # Parsing misses some errors, such as `return` outside a function; compiling does not.
        compile(tree, str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        raise MarkerError(path, error.lineno or 1, f"not valid Python: {error.msg}") from error
    # Split on "\n" only, as tokenize does: str.splitlines also splits on form feeds and
    # other characters Python does not count as line breaks, which would shift line numbers.
    lines = io.StringIO(source).readlines()
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    scopes = _scopes(tree, lines, _logical_line_ends(tokens))
    pairs = _pair(_markers(tokens, lines, path), path)
    return lines, scopes, [_region(scopes, b, e, path, require_function) for b, e in pairs]


def _markers(tokens: list[tokenize.TokenInfo], lines: list[str], path: str | Path) -> list[_Marker]:
    """The marker comments in order: only COMMENT tokens count, so strings never do."""
    markers, depth = [], 0
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in {"(", "[", "{"}:
            depth += 1
        elif tok.type == tokenize.OP and tok.string in {")", "]", "}"}:
            depth -= 1
        match = _MARKER.fullmatch(tok.string) if tok.type == tokenize.COMMENT else None
        if not match:
            continue
        line, column = tok.start
        kind, indent = match["kind"], lines[line - 1][:column]
        if indent.strip():
            raise MarkerError(path, line, f"{kind} SOLUTION must be on a line of its own")
        if depth:
            raise MarkerError(path, line, f"{kind} SOLUTION is inside brackets; markers go "
                              "between statements")
        if kind == "END" and match["rest"].strip():
            raise MarkerError(path, line, "END SOLUTION takes no options")
        markers.append(_Marker(kind, line, indent, _options(match["rest"], path, line)))
    return markers


def _options(text: str, path: str | Path, line: int) -> dict[str, str]:
    """Parse ``key=value`` words; shlex lets a value containing spaces be quoted."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise MarkerError(path, line, f"cannot read the marker options: {error}") from error
    options: dict[str, str] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not (key and equals and value):
            problem = f"marker option `{word}` is not of the form key=value"
        elif key not in OPTIONS:
            problem = f"unknown marker option `{key}`; allowed: {', '.join(sorted(OPTIONS))}"
        elif key in options:
            problem = f"marker option `{key}` is given twice"
        else:
            options[key] = value
            continue
        raise MarkerError(path, line, problem)
    return options


def _pair(markers: list[_Marker], path: str | Path) -> list[tuple[_Marker, _Marker]]:
    """Match each BEGIN with the next END; regions never nest."""
    pairs, opened = [], None
    for marker in markers:
        if marker.kind == "BEGIN" and opened is not None:
            problem = f"BEGIN SOLUTION inside the region opened on line {opened.line} (no nesting)"
        elif marker.kind == "BEGIN":
            opened = marker
            continue
        elif opened is None:
            problem = "END SOLUTION without a matching BEGIN SOLUTION"
        elif marker.indent != opened.indent:
            problem = f"END SOLUTION is indented differently from BEGIN SOLUTION on line {opened.line}"
        else:
            pairs.append((opened, marker))
            opened = None
            continue
        raise MarkerError(path, marker.line, problem)
    if opened is not None:
        raise MarkerError(path, opened.line, "unclosed solution region: the BEGIN SOLUTION opened "
                          "here has no END SOLUTION")
    return pairs


def _logical_line_ends(tokens: list[tokenize.TokenInfo]) -> dict[int, int]:
    """Map the first line of each logical line to its last: signatures may span lines."""
    ends, start = {}, None
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    for tok in (t for t in tokens if t.type not in skip):
        start = start or tok.start[0]
        if tok.type == tokenize.NEWLINE:
            ends[start], start = tok.start[0], None
    return ends


def _scopes(tree: ast.Module, lines: list[str], header_ends: dict[int, int]) -> list[_Scope]:
    """Every def and class in file order, named like ``Tokenizer.encode``."""
    scopes: list[_Scope] = []

    def visit(node: ast.AST, prefix: str, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(child, prefix, in_function)
                continue
            first = min([child.lineno] + [d.lineno for d in child.decorator_list])
            end = _body_end(lines, child)
            is_function = not isinstance(child, ast.ClassDef)
            header_end = header_ends[child.lineno]
            name = prefix + child.name
            scope = _Scope(name, child, first, header_end, end, in_function, is_function)
            scopes.append(scope)
            visit(child, name + ".", in_function or is_function)

    visit(tree, "", False)
    return scopes


def _body_end(lines: list[str], node: ast.stmt) -> int:
    """The node's ``end_lineno``, extended over the comments after it that are indented
    deeper than its ``def``: the AST stops at the last statement, the body does not."""
    end = node.end_lineno or node.lineno
    for number in range(end + 1, len(lines) + 1):
        text = lines[number - 1]
        if not text.strip():
            continue
        if not text.lstrip().startswith("#") or len(_leading_space(text)) <= node.col_offset:
            break
        end = number
    return end


def _region(
    scopes: list[_Scope], begin: _Marker, end: _Marker, path: str | Path, require_function: bool
) -> Region:
    """Check that both markers are in the body of the same innermost function."""
    inside, closing = _innermost(scopes, begin.line), _innermost(scopes, end.line)
    if inside is not closing:
        raise MarkerError(path, begin.line, _straddle(inside, closing, begin.line, end.line))
    if inside is None and require_function:
        raise MarkerError(path, begin.line, _outside(scopes, begin.line, end.line))
    name = inside.name if inside else "<module>"
    problem, stub = begin.options.get("problem"), begin.options.get("stub")
    return Region(begin.line, end.line, begin.indent, name, problem, stub)


def _innermost(scopes: list[_Scope], line: int, functions_only: bool = True) -> _Scope | None:
    """The most deeply nested scope whose body holds ``line`` (nested bodies start later)."""
    holders = [s for s in scopes if s.holds(line) and (s.is_function or not functions_only)]
    return max(holders, key=lambda s: s.header_end, default=None)


def _straddle(inside: _Scope | None, closing: _Scope | None, begin: int, end: int) -> str:
    """Explain a region whose two markers are in different function bodies."""
    if closing is not None and begin < closing.first:
        return (f"solution region contains the `def` line of `{closing.name}` (line "
                f"{closing.node.lineno}) but ends inside its body")
    if inside is not None and end > inside.end:
        return (f"solution region straddles the end of function `{inside.name}` (line "
                f"{inside.end}); both markers must be in the body of one function")
    assert closing is not None  # else neither marker would be in a function, and no straddle
    return f"solution region begins among the decorators of `{closing.name}` but ends in its body"


def _outside(scopes: list[_Scope], begin: int, end: int) -> str:
    """Explain a region that lies in no function body."""
    for scope in scopes:
        if scope.is_function and begin < scope.first and scope.end < end:
            return (f"solution region contains the whole function `{scope.name}` (line "
                    f"{scope.node.lineno}); put the markers inside its body")
    owner = _innermost(scopes, begin, functions_only=False)
    where = f"in the body of class `{owner.name}`" if owner else "at module level"
    return f"solution region is {where}; regions must be inside a function body"


def _kept_prefix_end(scope: _Scope, path: str | Path) -> int:
    """The last line :func:`stub_functions` keeps: the signature's, or the docstring's."""
    body = scope.node.body
    if body[0].lineno <= scope.header_end:
        raise MarkerError(path, scope.node.lineno, f"cannot stub the one-line function "
                          f"`{scope.name}`; give its body lines of its own")
    if ast.get_docstring(scope.node, clean=False) is None:
        return scope.header_end
    docstring_end = body[0].end_lineno or body[0].lineno
    if len(body) > 1 and body[1].lineno <= docstring_end:
        raise MarkerError(path, body[1].lineno, f"cannot stub `{scope.name}`: code shares a line "
                          "with its docstring")
    return docstring_end


def _apply(
    lines: list[str], edits: list[tuple[int, int, list[str], Region]], path: str | Path
) -> str:
    """Replace lines ``first..last`` (1-based, inclusive) of each edit by its new lines.

    If the result does not compile, the error names the region of the edit at fault.
    """
    out: list[str] = []
    starts: list[tuple[int, Region]] = []  # first output line of each edit
    cursor = 0
    for first, last, new, region in sorted(edits, key=lambda e: e[0]):
        out += lines[cursor : first - 1]
        starts.append((len(out) + 1, region))
        out += new
        cursor = last
    out += lines[cursor:]
    result = "".join(out)
    try:
        compile(result, str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        # Python reports the error inside the bad stub or just after it: blame the last edit
        # starting at or before the error (source was valid, so some edit is at fault).
        line = error.lineno or 1
        culprits = [region for start, region in starts if start <= line] or [starts[0][1]]
        raise MarkerError(path, culprits[-1].begin, f"the code with stubs does not compile: "
                          f"{error.msg} (line {line} of the result)") from error
    return result


def _indented(snippet: str, indent: str, newline: str) -> list[str]:
    """Indent each non-blank line of a rendered stub; blank lines stay empty."""
    lines = snippet.strip("\r\n").splitlines()
    return [(indent + line if line.strip() else "") + newline for line in lines]


def _newline(lines: list[str]) -> str:
    """The file's own line ending, so that a CRLF file stays CRLF."""
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"


def _leading_space(text: str) -> str:
    return text[: len(text) - len(text.lstrip(" \t"))]
