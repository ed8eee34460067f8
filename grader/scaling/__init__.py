"""The scaling unit's training API: students submit runs under a compute budget and record a prediction.

| module | job |
|---|---|
| ``config`` | what a student submits: an experiment config (validated, hashed) and a final prediction |
| ``law`` | the simulator's functional form (its coefficients are a staff file, never shipped) |
| ``challenge`` | the public rules (target, budget, bands) and the scoring of a prediction |
| ``backends`` | where losses come from: ``simulated`` (instant) or ``real`` (trains the basics model) |
| ``db`` | SQLAlchemy models, engines, Alembic migrations (``migrations/``) |
| ``service`` | keys, transactional budget accounting, experiments, predictions |
| ``app`` | the FastAPI app over the service |
| ``server`` | assembles a service from settings and runs it under uvicorn |
| ``client`` | the students' httpx client |
| ``schemas`` | the JSON documents the API returns |

Only ``config``, ``schemas`` and ``client`` are needed by students; the rest needs the ``serve`` extra.
"""
