"""Writing a report file: the format chosen, rendered, and written atomically."""

from __future__ import annotations

from pathlib import Path

from tools.core.errors import ParameterError
from tools.core.workspace import atomic_write_text
from tools.report.html import render_html
from tools.report.markdown import render_markdown
from tools.report.model import ReportInput

FORMATS = ("html", "md")



def write_report(inp: ReportInput, out: Path, fmt: str = "html", segment_id: int | None = None) -> Path:
    """Render and write the report atomically (never a half-written file); returns the path written.

    ``out`` may be a folder, in which case the file is ``report.html`` / ``report.md`` inside it.
    """
    if fmt not in FORMATS:
        raise ParameterError(f"unknown report format {fmt!r}", "use html or md")
    out = Path(out)
    if out.is_dir():
        suffix = f"-segment-{segment_id}" if segment_id is not None else ""
        out = out / f"report{suffix}.{fmt}"
    text = render_html(inp, segment_id) if fmt == "html" else render_markdown(inp, segment_id)
    atomic_write_text(out, text)
    return out
