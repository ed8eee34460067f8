"""The leaderboard web app: server-rendered pages, a JSON API, submissions and staff switches.

``create_app(store, evaluator)`` builds it; ``lmcourse leaderboard serve`` runs it under uvicorn.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
