"""Tests for :mod:`lmcourse.grader.markers`: finding, stripping and keeping solution regions."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from lmcourse.grader.errors import MarkerError
from lmcourse.grader.markers import (
    Region,
    find_regions,
    keep_solutions,
    solution_lines,
    strip_solutions,
    stub_functions,
)

PATH = "ref/unit.py"


def src(text: str) -> str:
    """Dedent a test source; sources start right after the opening quotes, on line 1."""
    return textwrap.dedent(text)


def raise_stub(region: Region) -> str:
    return f"raise NotImplementedError({region.function!r})"


def run(code: str) -> dict:
    """Execute code as a fresh module and return its namespace."""
    namespace: dict = {"__name__": "handout"}
    exec(compile(code, PATH, "exec"), namespace)  # noqa: S102 - the code is the test's own
    return namespace


def stripped(code: str, render=raise_stub, **kwargs) -> str:
    return strip_solutions(code, PATH, render, **kwargs)


SOFTMAX = src("""\
import math


def softmax(xs):
    \"\"\"Numerically stable softmax.\"\"\"
    # BEGIN SOLUTION problem=softmax stub=pass
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    return [e / sum(exps) for e in exps]
    # END SOLUTION
""")


# ------------------------------------------------------------------ finding regions


def test_region_fields_come_from_markers_and_function():
    assert find_regions(SOFTMAX, PATH) == [
        Region(begin=6, end=10, indent="    ", function="softmax", problem="softmax", stub="pass")
    ]


def test_options_are_optional_and_may_be_quoted():
    code = src("""\
    def f():
        # BEGIN SOLUTION stub="raise ValueError"
        return 1
        # END SOLUTION
    """)
    [region] = find_regions(code, PATH)
    assert (region.problem, region.stub) == (None, "raise ValueError")


def test_markers_inside_strings_and_docstrings_are_ignored():
    code = src('''\
    def f():
        """Example:

        # BEGIN SOLUTION
        """
        text = """
        # END SOLUTION
        """
        # BEGIN SOLUTION
        return text
        # END SOLUTION
    ''')
    assert [(r.begin, r.end) for r in find_regions(code, PATH)] == [(9, 11)]
    assert "# BEGIN SOLUTION" in stripped(code)  # the docstring is untouched
    assert "return text" not in stripped(code)


def test_decorated_function():
    code = src("""\
    import functools


    @functools.lru_cache(maxsize=None)
    def square(x):
        # BEGIN SOLUTION
        return x * x
        # END SOLUTION
    """)
    assert find_regions(code, PATH)[0].function == "square"
    with pytest.raises(NotImplementedError, match="square"):
        run(stripped(code))["square"](3)
    assert run(keep_solutions(code, PATH))["square"](3) == 9


def test_region_in_nested_function_is_indented_like_its_markers():
    code = src("""\
    def outer(k):
        def inner(x):
            # BEGIN SOLUTION
            return x * k
            # END SOLUTION
        return inner
    """)
    [region] = find_regions(code, PATH)
    assert (region.function, region.indent) == ("outer.inner", "        ")
    assert stripped(code, lambda r: "return -1") == src("""\
    def outer(k):
        def inner(x):
            return -1
        return inner
    """)


def test_region_may_contain_a_whole_nested_function():
    code = src("""\
    def outer(k):
        # BEGIN SOLUTION
        def inner(x):
            return x * k
        return inner
        # END SOLUTION
    """)
    assert find_regions(code, PATH)[0].function == "outer"
    result = stripped(code)
    assert "inner" not in result
    with pytest.raises(NotImplementedError, match="outer"):
        run(result)["outer"](2)
    assert run(keep_solutions(code, PATH))["outer"](2)(5) == 10


def test_methods_are_named_by_class():
    code = src("""\
    class Tokenizer:
        def encode(self, text):
            # BEGIN SOLUTION
            return list(text.encode())
            # END SOLUTION

        class Vocab:
            def size(self):
                # BEGIN SOLUTION
                return 256
                # END SOLUTION
    """)
    assert [r.function for r in find_regions(code, PATH)] == ["Tokenizer.encode", "Tokenizer.Vocab.size"]
    with pytest.raises(NotImplementedError, match="Tokenizer.encode"):
        run(stripped(code))["Tokenizer"]().encode("hi")


def test_async_def():
    code = src("""\
    async def fetch(x):
        # BEGIN SOLUTION
        return x + 1
        # END SOLUTION
    """)
    assert find_regions(code, PATH)[0].function == "fetch"
    with pytest.raises(NotImplementedError):
        asyncio.run(run(stripped(code))["fetch"](1))
    assert asyncio.run(run(keep_solutions(code, PATH))["fetch"](1)) == 2


def test_multiline_signature_with_defaults_and_return_annotation():
    code = src("""\
    def attention(
        q: list[float],
        scale: float = (
            0.5
        ),
        names: tuple[str, ...] = ("a",
                                  "b"),
    ) -> dict[
        str, float
    ]:
        \"\"\"Docstring.\"\"\"
        # BEGIN SOLUTION
        return {name: scale * x for name, x in zip(names, q)}
        # END SOLUTION
    """)
    [region] = find_regions(code, PATH)
    assert (region.begin, region.end, region.function) == (12, 14, "attention")
    with pytest.raises(NotImplementedError):
        run(stripped(code))["attention"]([1.0, 2.0])
    assert run(keep_solutions(code, PATH))["attention"]([1.0, 2.0]) == {"a": 0.5, "b": 1.0}


def test_region_at_end_of_file_without_trailing_newline():
    code = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION"
    assert find_regions(code, PATH)[0].end == 4
    assert stripped(code, lambda r: "return 0") == "def f():\n    return 0\n"
    assert keep_solutions(code, PATH) == "def f():\n    return 1\n"


def test_several_regions_in_one_function_keep_the_code_between():
    code = src("""\
    def f(x):
        # BEGIN SOLUTION problem=first
        x = x + 1
        # END SOLUTION
        x = x * 10
        # BEGIN SOLUTION problem=second
        x = x - 3
        # END SOLUTION
        return x
    """)
    assert [(r.problem, r.begin, r.end) for r in find_regions(code, PATH)] == [("first", 2, 4), ("second", 6, 8)]
    assert stripped(code, lambda r: f"pass  # {r.problem}") == src("""\
    def f(x):
        pass  # first
        x = x * 10
        pass  # second
        return x
    """)
    assert solution_lines(code, PATH) == ["    x = x + 1", "    x = x - 3"]


def test_crlf_line_endings_are_preserved():
    code = SOFTMAX.replace("\n", "\r\n")
    result = stripped(code, lambda r: "x = 1\nreturn x")
    assert result.count("\r\n") == result.count("\n") == len(result.splitlines())
    assert "    x = 1\r\n    return x\r\n" in result
    assert keep_solutions(code, PATH) == SOFTMAX.replace("\n", "\r\n").replace(
        "    # BEGIN SOLUTION problem=softmax stub=pass\r\n", ""
    ).replace("    # END SOLUTION\r\n", "")
    assert run(result)["softmax"]([0.0]) == 1


def test_multiline_stub_is_indented_and_blank_lines_stay_empty():
    code = src("""\
    class A:
        def m(self):
            # BEGIN SOLUTION
            return 1
            # END SOLUTION
    """)
    stub = "# TODO: implement\n\nraise NotImplementedError\n"
    assert stripped(code, lambda r: stub) == src("""\
    class A:
        def m(self):
            # TODO: implement

            raise NotImplementedError
    """)


def test_keep_solutions_drops_only_marker_lines_and_runs():
    kept = keep_solutions(SOFTMAX, PATH)
    assert "SOLUTION" not in kept
    assert len(kept.splitlines()) == len(SOFTMAX.splitlines()) - 2
    assert run(kept)["softmax"]([1.0, 1.0]) == [0.5, 0.5]


def test_solution_lines_exclude_markers_and_code_outside():
    assert solution_lines(SOFTMAX, PATH) == [
        "    top = max(xs)",
        "    exps = [math.exp(x - top) for x in xs]",
        "    return [e / sum(exps) for e in exps]",
    ]


def test_module_level_regions_are_allowed_when_not_requiring_functions():
    cell = "# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION\nprint('done')\n"
    [region] = find_regions(cell, "nb.ipynb", require_function=False)
    assert (region.function, region.indent) == ("<module>", "")
    assert stripped(cell, lambda r: "answer = None", require_function=False) == "answer = None\nprint('done')\n"


# ------------------------------------------------------------------ whole-file stubs


STUB_FILE = src('''\
"""A module to stub."""
import functools

LIMIT = 3


def helper(x):
    """Double x."""

    def inner(y):
        return y * 2
    return inner(x)


class Model:
    """A model."""

    size = 4

    def __init__(self, n):
        self.n = n

    @property
    def double(self):
        """Twice n."""
        return 2 * self.n

    @functools.cache
    @staticmethod
    def build():
        # BEGIN SOLUTION
        return Model(LIMIT)
        # END SOLUTION

    class Config:
        def value(self):
            return 1
''')


def test_stub_functions_keeps_signatures_decorators_and_docstrings():
    regions: list[Region] = []

    def render(region: Region) -> str:
        regions.append(region)
        return f"raise NotImplementedError({region.function!r})"

    result = stub_functions(STUB_FILE, PATH, render)
    assert [r.function for r in regions] == [
        "helper", "Model.__init__", "Model.double", "Model.build", "Model.Config.value",
    ]
    assert regions[0] == Region(8, 12, "    ", "helper")
    assert "@property\n    def double(self):\n        \"\"\"Twice n.\"\"\"\n        raise" in result
    assert "    @functools.cache\n    @staticmethod\n    def build():\n        raise" in result
    assert "inner" not in result and "SOLUTION" not in result and "return" not in result
    namespace = run(result)
    assert namespace["LIMIT"] == 3 and namespace["Model"].size == 4
    assert namespace["helper"].__doc__ == "Double x."
    with pytest.raises(NotImplementedError, match="helper"):
        namespace["helper"](1)
    with pytest.raises(NotImplementedError, match="Model.double"):
        _ = namespace["Model"].__new__(namespace["Model"]).double
    with pytest.raises(NotImplementedError, match="Model.Config.value"):
        namespace["Model"].Config().value()


def test_stub_functions_stubs_a_function_without_docstring_after_its_signature():
    code = "def f(\n    x,\n):\n    # comment\n    return x\n\n\nY = 1\n"
    assert stub_functions(code, PATH, lambda r: "pass") == "def f(\n    x,\n):\n    pass\n\n\nY = 1\n"


def test_stub_functions_adds_a_stub_after_a_docstring_only_body():
    code = 'class Base:\n    def forward(self):\n        """Subclasses override this."""\n'
    result = stub_functions(code, PATH, lambda r: "raise NotImplementedError")
    assert result == code + "        raise NotImplementedError\n"


def test_form_feeds_do_not_shift_line_numbers():
    code = "def f():\n    x = 1\x0c\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n"
    assert [(r.begin, r.end) for r in find_regions(code, PATH)] == [(3, 5)]
    assert stripped(code, lambda r: "return 0").endswith("    x = 1\x0c\n    return 0\n")


def test_stub_functions_rejects_a_one_line_function():
    with pytest.raises(MarkerError) as caught:
        stub_functions("X = 1\ndef f(): return 1\n", PATH, lambda r: "pass")
    assert caught.value.line == 2 and "one-line function `f`" in caught.value.problem


# ------------------------------------------------------------------ malformed markers


def error(code: str, **kwargs) -> MarkerError:
    with pytest.raises(MarkerError) as caught:
        find_regions(code, PATH, **kwargs)
    assert str(caught.value).startswith(f"{PATH}:{caught.value.line}: ")
    return caught.value


def test_begin_without_end():
    e = error("def f():\n    x = 1\n    # BEGIN SOLUTION\n    return x\n")
    assert e.line == 3 and "unclosed" in e.problem and "opened here" in e.problem


def test_end_without_begin():
    e = error("def f():\n    return 1\n    # END SOLUTION\n")
    assert e.line == 3 and "without a matching BEGIN" in e.problem


def test_nested_begin():
    code = src("""\
    def f():
        # BEGIN SOLUTION
        x = 1
        # BEGIN SOLUTION
        return x
        # END SOLUTION
    """)
    e = error(code)
    assert e.line == 4 and "line 2" in e.problem and "nest" in e.problem


def test_begin_and_end_at_different_indentation():
    code = src("""\
    def f(x):
        if x:
            # BEGIN SOLUTION
            return 1
        # END SOLUTION
        return 2
    """)
    e = error(code)
    assert e.line == 5 and "indented differently" in e.problem and "line 3" in e.problem


def test_region_at_module_level():
    e = error("import os\n# BEGIN SOLUTION\nX = 1\n# END SOLUTION\n")
    assert e.line == 2 and "module level" in e.problem


def test_region_in_class_body():
    code = src("""\
    class A:
        def m(self):
            return 1

        # BEGIN SOLUTION
        size = 3
        # END SOLUTION
    """)
    e = error(code)
    assert e.line == 5 and "class `A`" in e.problem


def test_region_containing_the_def_line():
    code = src("""\
    X = 1
    # BEGIN SOLUTION
    @staticmethod
    def f():
        return 1
    # END SOLUTION
    """)
    e = error(code)
    assert e.line == 2 and "whole function `f` (line 4)" in e.problem


def test_region_containing_a_def_line_but_ending_in_its_body():
    code = src("""\
    def outer():
        # BEGIN SOLUTION
        def inner():
            x = 1
        # END SOLUTION
            return x
        return inner
    """)
    e = error(code)
    assert e.line == 2 and "`def` line of `outer.inner` (line 3)" in e.problem


def test_region_beginning_among_decorators():
    code = src("""\
    def outer():
        @staticmethod
        # BEGIN SOLUTION
        def inner():
            x = 1
        # END SOLUTION
            return x
        return inner
    """)
    e = error(code)
    assert e.line == 3 and "decorators of `outer.inner`" in e.problem


def test_region_straddling_the_end_of_its_function():
    # Comments may sit left of the code they precede, so `first` still holds line 4.
    code = src("""\
    class A:
        def first(self):
            x = 1
        # BEGIN SOLUTION
            return x

        def second(self):
            return 2
        # END SOLUTION
    """)
    e = error(code)
    assert e.line == 4 and "straddles the end of function `A.first`" in e.problem


def test_keep_solutions_also_requires_regions_in_functions():
    assert keep_solutions("# BEGIN SOLUTION\nX = 1\n# END SOLUTION\n", PATH, require_function=False) == "X = 1\n"
    with pytest.raises(MarkerError, match="module level"):
        keep_solutions("# BEGIN SOLUTION\nX = 1\n# END SOLUTION\n", PATH)


def test_invalid_python():
    e = error("def f():\n    return 1\n\nx = (\n")
    assert e.line == 4 and "not valid Python" in e.problem


def test_compile_time_errors_count_as_invalid_python():
    e = error("x = 1\nreturn x\n")
    assert e.line == 2 and "not valid Python" in e.problem


@pytest.mark.parametrize(
    ("marker", "fragment"),
    [
        ("# BEGIN SOLUTION problme=x", "unknown marker option `problme`"),
        ("# BEGIN SOLUTION problem", "`problem` is not of the form key=value"),
        ("# BEGIN SOLUTION stub=a stub=b", "`stub` is given twice"),
        ("# BEGIN SOLUTION stub='open", "cannot read the marker options"),
    ],
)
def test_bad_marker_options(marker, fragment):
    e = error(f"def f():\n    {marker}\n    return 1\n    # END SOLUTION\n")
    assert e.line == 2 and fragment in e.problem


def test_end_marker_takes_no_options():
    e = error("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION problem=x\n")
    assert e.line == 4 and "takes no options" in e.problem


def test_marker_after_code_on_the_same_line():
    e = error("def f():\n    x = 1  # BEGIN SOLUTION\n    return x\n")
    assert e.line == 2 and "line of its own" in e.problem


def test_marker_inside_brackets():
    code = src("""\
    def f():
        return [
            # BEGIN SOLUTION
            1,
            # END SOLUTION
        ]
    """)
    e = error(code)
    assert e.line == 3 and "inside brackets" in e.problem


def test_look_alike_comments_are_not_markers():
    code = "def f():\n    # BEGIN SOLUTIONS are below\n    # END-SOLUTION\n    return 1\n"
    assert find_regions(code, PATH) == []


def test_stub_that_does_not_compile_is_blamed_on_its_region():
    code = src("""\
    def f():
        return 1


    def g(x):
        # BEGIN SOLUTION
        return x
        # END SOLUTION
    """)
    with pytest.raises(MarkerError) as caught:
        stripped(code, lambda r: "return (")
    assert caught.value.line == 6 and "does not compile" in caught.value.problem


def test_stub_functions_rejects_region_before_docstring():
    code = src('''\
    def f():
        # BEGIN SOLUTION
        """Doc."""
        return 1
        # END SOLUTION
    ''')
    with pytest.raises(MarkerError) as caught:
        stub_functions(code, PATH, lambda r: "pass")
    assert caught.value.line == 2 and "docstring of `f`" in caught.value.problem
