"""Alembic migrations of the training API's database (configured in code by :func:`..db.upgrade`)."""
