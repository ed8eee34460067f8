"""Definitions the problems share; shipped to students as they are."""

import re

#: A word is a run of ASCII letters and apostrophes ("don't" is one word).
WORD_RE = re.compile(r"[A-Za-z']+")

#: Words that ``word_counts`` never counts (compared after normalisation).
STOP_WORDS = frozenset({"a", "an", "and", "in", "is", "it", "of", "the", "to"})
