"""Stress harnesses (issue 15): `python -m stress`."""
