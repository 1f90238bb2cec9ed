"""Shareable reports on a run: the report model, its HTML and Markdown renderings, and the charts and page style they use."""
