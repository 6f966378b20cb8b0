"""Tables a notebook displays (and saves with it): rows of results, instances' health, the
chapter's defects."""

from __future__ import annotations

import html

from IPython.display import HTML

__all__ = ["STATUS_COLOUR", "defects_table", "health_html", "health_table", "table"]

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
            f"<td><small>{html.escape(r['output'][:90])}</small></td></tr>"
        )
    head = "<tr><th>instance</th><th>address</th><th>process</th><th>check</th><th>output</th></tr>"
    return f"<table>{head}{''.join(cells)}</table>"


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
    """Return the chapter's defects (``lessons.chapter.DEFECTS``) as a table."""
    head = "<tr><th>sample</th><th>as printed</th><th>problem</th><th>fix</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(d['sample'])}</td><td><code>{html.escape(d['printed'])}</code></td>"
        f"<td>{html.escape(d['problem'])}</td><td>{html.escape(d['fix'])}</td></tr>" for d in defects)
    return HTML(f"<table>{head}{rows}</table>")

