"""Is a model's final answer equal to the ground truth? Extraction, normalization, equivalence.

Answers arrive as ``1,000``, ``$1000``, ``1000 dollars``, ``\\frac{1}{2}``, ``0.5``, ``\\boxed{x=3}``,
``\\text{(B)}``... Grading goes from cheap and strict to expensive and lenient:

1. normalize both strings (LaTeX spacing, ``\\text{}``, units, thousands separators, ``\\dfrac``...)
   and compare them;
2. read both as numbers (integers, decimals, fractions, percentages) and compare with a relative
   tolerance of 1e-6;
3. parse both as expressions with sympy (LaTeX through ``latex2sympy2_extended``) and check that
   their difference simplifies to 0;
4. unless ``fast``, ask ``math-verify`` (sets, intervals, equations, matrices).

A wrong "yes" rewards a wrong answer, which RL will find and exploit, so every step errs towards
"no": a parse failure is a mismatch, never an exception.
"""

from __future__ import annotations

import math
import re
import threading
from fractions import Fraction
from typing import Any

#: Longest answer (characters) handed to sympy: simplification time explodes on long expressions.
MAX_SYMBOLIC_CHARS = 80
RELATIVE_TOLERANCE = 1e-6

_UNITS = (
    "dollars", "dollar", "cents", "cent", "units", "unit", "degrees", "degree", "percent", "inches", "inch",
    "feet", "foot", "meters", "meter", "cm", "mm", "km", "kg", "grams", "gram", "g", "hours", "hour", "minutes",
    "minute", "seconds", "second", "days", "day", "weeks", "week", "years", "year", "miles", "mile", "mph",
    "pounds", "pound", "lbs", "ounces", "people", "students", "apples", "points", "sq", "square",
)
_UNIT_SUFFIX = re.compile(r"^(-?[\d.,/]+)\s*(?:(?:" + "|".join(_UNITS) + r")\b\.?\s*)+$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_FRAC_SHORT = re.compile(r"\\frac(\d)(\d)")
_FRAC_HALF_SHORT = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_LEADING_VARIABLE = re.compile(r"^[a-zA-Z]\s*=\s*(?!=)")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
_LATEX_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_PLAIN_FRACTION = re.compile(r"^(-?\d+)/(\d+)$")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``), braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:].removeprefix("\\boxed").removeprefix("\\fbox")
    if rest.startswith(" "):
        return rest.split("$")[0].strip() or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, char in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return rest[1:i]
    return None


def _strip_text_commands(s: str) -> str:
    """``\\text{abc}``, ``\\textbf{abc}``, ``\\mbox{abc}`` -> ``abc``."""
    return re.sub(r"\\(?:text|textbf|mathrm|mbox|mathbf)\{([^{}]*)\}", r"\1", s)


def normalize_answer(answer: str) -> str:
    """A canonical spelling of ``answer``: what equal answers most often differ in is removed."""
    s = str(answer).strip()
    boxed = last_boxed(s)
    if boxed is not None:
        s = boxed
    s = s.replace("\u2212", "-").replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", " ")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("\\%", "%").replace("\\$", "$")
    s = re.sub(r"\^\{?\\circ\}?", "", s)
    s = _strip_text_commands(s)
    s = s.replace("$", "").strip()
    s = _LEADING_VARIABLE.sub("", s)
    s = s.rstrip(".").strip()
    unit = _UNIT_SUFFIX.match(s)
    if unit:
        s = unit.group(1)
    if s.endswith("%"):
        s = s[:-1].strip()
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = s.replace(" ", "")
    if re.fullmatch(r"\(([A-Ea-e])\)", s):  # "(B)" -> "B"
        s = s[1]
    if _NUMBER.match(s) and "." in s:  # "5.0" -> "5", "2.50" -> "2.5"
        s = s.rstrip("0").rstrip(".") if s.rstrip("0").rstrip(".") not in ("", "-") else "0"
    return s.lower() if re.fullmatch(r"[A-Za-z ]+", s) else s


def as_number(s: str) -> Fraction | float | None:
    """A normalized answer read as an exact fraction (or a float), if it is plainly a number."""
    if _NUMBER.match(s):
        return Fraction(s)
    for pattern in (_LATEX_FRACTION, _PLAIN_FRACTION):
        match = pattern.match(s)
        if match:
            groups = match.groups()
            sign = -1 if len(groups) == 3 and groups[0] == "-" else 1
            numerator, denominator = int(groups[-2]), int(groups[-1])
            return None if denominator == 0 else sign * Fraction(numerator, denominator)
    try:
        value = float(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numbers_equal(a: Fraction | float, b: Fraction | float) -> bool:
    if isinstance(a, Fraction) and isinstance(b, Fraction) and a == b:
        return True
    return math.isclose(float(a), float(b), rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9)


def _sympy_expression(s: str) -> Any:
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    if "\\" in s or "{" in s:
        from latex2sympy2_extended import latex2sympy

        return latex2sympy(s)
    transformations = (*standard_transformations, implicit_multiplication_application, convert_xor)
    return sympy.sympify(parse_expr(s, transformations=transformations, evaluate=True))


def symbolically_equal(a: str, b: str) -> bool:
    """Whether ``a − b`` simplifies to 0 (False when either side does not parse)."""
    if len(a) > MAX_SYMBOLIC_CHARS or len(b) > MAX_SYMBOLIC_CHARS or "=" in a + b or "," in a + b:
        return False
    try:
        import sympy

        difference = sympy.simplify(_sympy_expression(a) - _sympy_expression(b))
        return bool(difference == 0)
    except Exception:  # noqa: BLE001 - unparsable or incomparable means "not equal"
        return False


def math_verify_equal(answer: str, ground_truth: str) -> bool:
    """``math-verify``'s verdict; its timeouts use SIGALRM, which only the main thread may set."""
    from math_verify import parse, verify

    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold = parse(f"${ground_truth}$", parsing_timeout=timeout)
        target = parse(f"${answer}$", parsing_timeout=timeout)
        return bool(gold and target and verify(gold, target, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - a crash in the verifier is a mismatch
        return False


def is_equivalent(answer: str, ground_truth: str, fast: bool = True) -> bool:
    """Whether ``answer`` means ``ground_truth`` (see the module docstring for the steps)."""
    if not str(answer).strip():
        return False
    a, b = normalize_answer(answer), normalize_answer(ground_truth)
    if not a or not b:
        return False
    if a == b:
        return True
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None:
        return numbers_equal(x, y)
    if symbolically_equal(a, b):
        return True
    return not fast and math_verify_equal(answer, str(ground_truth))


def grade(answer: str, ground_truth: str | float | int | list[Any], fast: bool = True) -> bool:
    """Whether ``answer`` matches the ground truth, or any of several acceptable ones (a list)."""
    truths = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    return any(is_equivalent(answer, str(truth), fast) for truth in truths)
