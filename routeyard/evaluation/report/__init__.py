"""Replay reports: report.md, report.json and curves.png."""
