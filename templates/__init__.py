"""Jinja2 templates for handouts, stubs and reports, shipped as package data."""
