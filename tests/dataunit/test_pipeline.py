"""The filtering pipeline runs end to end over the fixture WARC (real worker processes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reference.data.pipeline import main

WARC = Path(__file__).resolve().parents[2] / "assignments" / "data" / "fixtures" / "pages.warc.gz"


def test_pipeline_reports_what_each_filter_removed(tmp_path):
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(WARC.read_bytes()[:100_000])
    shutil.copy(WARC, tmp_path / "pages.warc.gz")
    out = tmp_path / "out"
    main([str(tmp_path / "pages.warc.gz"), str(broken), "--out", str(out),
          "--filters", "language,gopher,nsfw,toxic,quality,pii", "--workers", "2"])
    report = json.loads((out / "report.json").read_text())
    removed = sum(report["removed_docs"].values())
    assert report["skipped"] == 1
    assert report["records"] == removed + report["kept"]
    assert report["removed_docs"]["language"] >= 9  # the Spanish, Chinese, Japanese, Thai, Arabic... pages
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kept_text = (out / "pages.warc.gz.txt").read_text(encoding="utf-8")
    assert report["kept"] == 0 or kept_text.strip()
