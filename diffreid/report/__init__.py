"""Figures for docs and reports."""
