"""Table layout shared by the pages."""

from __future__ import annotations

ROW_PX = 35  # Streamlit's dataframe row (and header) height


def table_height(n_rows: int, max_rows: int | None = None) -> int:
    """Pixel height for ``st.dataframe`` that shows ``n_rows`` rows and the header without
    an inner scroll bar (Streamlit's automatic height stops at ten rows), or ``max_rows``
    of them when given and smaller (a long table scrolls, a short one leaves no blank
    rows)."""
    shown = max(1, n_rows if max_rows is None else min(n_rows, max_rows))
    return (shown + 1) * ROW_PX + 3
