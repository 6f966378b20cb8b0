"""Tables a notebook displays (and saves with it): rows of results, instances' health, the
chapter's defects."""

from __future__ import annotations

import html

from IPython.display import HTML

__all__ = ["STATUS_COLOUR", "defects_table", "health_html", "health_table", "shorten", "table"]

STATUS_COLOUR = {"passing": "#2e7d32", "warning": "#f9a825", "critical": "#c62828",
                 "deregistered": "#757575"}


def health_html(rows: list[dict]) -> str:
    """Return an HTML table of :meth:`Mesh.health` rows, coloured by status."""
    cells = []
    for r in rows:
        colour = STATUS_COLOUR.get(r["status"], "#000")
        cells.append(
            f"<tr><td>{html.escape(r['instance'])}</td><td>{html.escape(r['address'])}</td>"
            f"<td>{'running' if r['running'] else 'killed'}</td>"
            f"<td style='color:{colour};font-weight:bold'>{html.escape(r['status'])}</td>"
            f"<td title='{html.escape(r['output'], quote=True)}'><small>{html.escape(shorten(r['output']))}"
            f"</small></td></tr>"
        )
    head = "<tr><th>instance</th><th>address</th><th>process</th><th>check</th><th>output</th></tr>"
    return f"<table>{head}{''.join(cells)}</table>"


def shorten(text: str, width: int = 90) -> str:
    """Return ``text`` cut to at most ``width`` characters at a word's end, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def health_table(rows: list[dict]) -> HTML:
    """Return :meth:`Mesh.health` rows as a table that a notebook displays (and saves)."""
    return HTML(health_html(rows))


def table(rows: list[dict]) -> HTML:
    """Return rows of dicts (experiment tables, metrics summaries) as an HTML table."""
    if not rows:
        return HTML("<i>no rows</i>")
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value) -> str:
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        return html.escape("" if value is None else str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


def defects_table(defects: list[dict]) -> HTML:
    """Return the chapter's defects (``lessons.chapter.DEFECTS``) as a table as wide as the notebook,
    its long cells wrapping."""
    cell = "style='text-align:left;vertical-align:top;white-space:normal;overflow-wrap:anywhere'"
    head = (f"<tr><th {cell}>sample</th><th {cell}>as printed</th><th {cell}>problem</th>"
            f"<th {cell}>fix</th></tr>")
    rows = "".join(
        f"<tr><td {cell}>{html.escape(d['sample'])}</td>"
        f"<td {cell}><code>{html.escape(d['printed'])}</code></td>"
        f"<td {cell}>{html.escape(d['problem'])}</td><td {cell}>{html.escape(d['fix'])}</td></tr>"
        for d in defects)
    widths = "<colgroup><col style='width:12%'><col style='width:28%'><col style='width:32%'>" \
             "<col style='width:28%'></colgroup>"
    return HTML(f"<table style='table-layout:fixed;width:100%'>{widths}{head}{rows}</table>")

