"""mini toy: a miniature unit of the lmcourse test course.

Four small problems in pure Python: a numerically stable softmax, word counting, a streaming
mean and an asynchronous look-up. The package imports itself relatively, so it runs in place
as the reference and, renamed, as the student package of the handout.
"""

from .constants import STOP_WORDS, WORD_RE
from .remote import fetch, fetch_many
from .scaffold import render_counts, top_words
from .stats import RunningMean, softmax
from .text import normalize, word_counts

__all__ = [
    "STOP_WORDS",
    "WORD_RE",
    "RunningMean",
    "fetch",
    "fetch_many",
    "normalize",
    "render_counts",
    "softmax",
    "top_words",
    "word_counts",
]
