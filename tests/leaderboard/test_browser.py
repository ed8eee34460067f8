"""The leaderboard in a real headless Chromium, against a real uvicorn, on SQLite and on PostgreSQL.

Entries arrive through the JSON API as a student's client would send them; the test then reads
the page as a visitor sees it: the table's rows in the DOM, the curve image as decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lmcourse.leaderboard.store import Store
from lmcourse.leaderboard.web import create_app

from .webkit import BOARD, LiveServer, PlantedScore, Roster, checkpoint, files, live_server, open_roster

CHROMIUM = Path("/usr/bin/chromium")
STUDENTS = {"s001": "Ada L.", "s002": "Grace H.", "s003": "Alan T.", "s004": "Edsger D."}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module: Debian's, since Playwright's own download is offline here."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install -y chromium).",
                    pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield launched
        launched.close()


@pytest.fixture
def roster(store: Store) -> Roster:
    return open_roster(store, STUDENTS)


@pytest.fixture
def server(roster: Roster) -> Iterator[LiveServer]:
    with live_server(create_app(roster.store, PlantedScore(), title="Course leaderboards")) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


def submit(server: LiveServer, roster: Roster, student: str, bits_per_byte: float, seed: int) -> dict:
    response = httpx.post(f"{server.url}/api/boards/{BOARD}/submissions", files=files(checkpoint(bits_per_byte, seed)),
                          headers=roster.auth(student), timeout=60)
    assert response.status_code == 201, response.text
    return response.json()


def ranking(page: Page) -> list[dict[str, str]]:
    """The rows of the ranking table as the browser laid them out, keyed by column header."""
    table = page.get_by_role("table", name=re.compile(f"^Ranking of {BOARD}"))  # named by its <caption>
    header = [text.strip() for text in table.locator("thead th").all_inner_texts()]
    rows = table.locator("tbody tr")
    return [dict(zip(header, (t.strip() for t in rows.nth(i).locator("td, th").all_inner_texts()), strict=True))
            for i in range(rows.count())]


def test_the_board_ranks_entries_and_a_new_one_appears_after_reload(
    page: Page, server: LiveServer, roster: Roster
) -> None:
    submit(server, roster, "s001", 1.25, seed=1)
    submit(server, roster, "s002", 0.875, seed=2)
    submit(server, roster, "s003", 1.5, seed=3)
    response = page.goto(f"{server.url}/boards/{BOARD}")
    assert response is not None and response.status == 200
    assert page.title() == f"{BOARD} · Course leaderboards"
    assert [(r["rank"], r["name"], r["bits/byte"]) for r in ranking(page)] == [
        ("1", "Grace H.", "0.8750"), ("2", "Ada L.", "1.2500"), ("3", "Alan T.", "1.5000")]
    assert all(r["status"] == "verified" and re.fullmatch(r"\d{4}-\d\d-\d\d", r["date"]) for r in ranking(page))

    entry = submit(server, roster, "s004", 1.0, seed=4)  # lands between Grace and Ada
    page.reload()
    rows = ranking(page)
    assert [(r["rank"], r["name"]) for r in rows] == [("1", "Grace H."), ("2", "Edsger D."), ("3", "Ada L."),
                                                      ("4", "Alan T.")]
    assert rows[1]["bits/byte"] == "1.0000" and rows[1]["loss"] == f"{entry['loss']:.4f}"
    assert rows[1]["perplexity"] == f"{entry['perplexity']:.2f}" and rows[1]["parameters"] == f"{entry['parameters']:,}"


def test_the_entry_page_shows_the_learning_curve(page: Page, server: LiveServer, roster: Roster) -> None:
    entry = submit(server, roster, "s001", 1.25, seed=1)
    page.goto(f"{server.url}/boards/{BOARD}")
    page.get_by_role("link", name="Ada L.").click()
    page.wait_for_url(f"**/entries/{entry['id']}")
    assert page.get_by_role("heading", level=1).inner_text() == f"Ada L. on {BOARD}"
    image = page.get_by_role("img", name=re.compile("Training and validation loss"))
    image.wait_for()
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [640, 400]
    config = page.get_by_role("table", name=re.compile("architecture"))
    assert config.get_by_role("row", name=re.compile("^d_model")).inner_text().split() == ["d_model", "16"]


def test_a_hidden_entry_disappears(page: Page, server: LiveServer, roster: Roster) -> None:
    hidden = submit(server, roster, "s001", 0.5, seed=1)
    submit(server, roster, "s002", 1.0, seed=2)
    page.goto(f"{server.url}/boards/{BOARD}")
    assert [r["name"] for r in ranking(page)] == ["Ada L.", "Grace H."]

    response = httpx.post(f"{server.url}/api/entries/{hidden['id']}/hide", json={"value": True},
                          headers=roster.staff, timeout=30)
    assert response.status_code == 200
    page.reload()
    assert [(r["rank"], r["name"]) for r in ranking(page)] == [("1", "Grace H.")]
    gone = page.goto(f"{server.url}/entries/{hidden['id']}")
    assert gone is not None and gone.status == 404
    assert page.locator("p.error").inner_text() == f"There is no entry {hidden['id']}."
