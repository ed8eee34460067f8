"""Perplexity leaderboards: trusted evaluation, storage and the web page (see DESIGN.md)."""
