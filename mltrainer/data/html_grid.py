"""HTML tables read as grids of text, with bounded work on untrusted pages.

A table becomes rows of cell text with row- and column-spans expanded, footnote
markers (``[12]``) dropped and tables nested inside a cell ignored. The page is
untrusted input, so the work is bounded the way a browser bounds it: spans are clamped
to the table's size (the HTML standard caps ``colspan`` at 1000), at most ``MAX_ROWS``
x ``MAX_COLS`` cells of a table and ``MAX_TABLES`` tables of a page are read, and cell
text is gathered iteratively so that deep nesting cannot exhaust the stack.

:class:`HtmlPage` holds a parsed page: its tables in the order to try them and whether
the document ends inside a table (a download cut short). What the tables mean is the
caller's business (:mod:`mltrainer.data.wikipedia_tables` finds the S&P 500 tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

from lxml import etree

# Bounds on untrusted input. The real S&P 500 page has tables of 503 x 8 and 355 x 6
# cells; these leave room for decades of growth and keep any page to about a second
# of CPU (most of it libxml2 reading a page of 10 MB) and ~100 MB.
MAX_ROWS = 2_000
MAX_COLS = 64
MAX_TABLES = 500

_FOOTNOTE = re.compile(r"\[(?:\d+|[a-z]|note \d+|citation needed)\]")
_SKIPPED_IN_CELLS = frozenset(["table", "sup", "style", "script"])  # nested tables, [4]
_OWN_ROWS = "tr|thead/tr|tbody/tr|tfoot/tr"  # not the rows of tables nested in cells
_FIRST_ROWS = etree.XPath(f"({_OWN_ROWS})[position() <= {MAX_ROWS}]")
_COUNT_ROWS = etree.XPath(f"count({_OWN_ROWS})")


@dataclass
class Grid:
    """A table's rows as text, spans expanded and padded to one width.

    Attributes
    ----------
    rows : list of list of str
        Cell text, one list per row, all of the same length.
    all_th : list of bool
        Whether each row is made only of ``<th>`` cells.
    own_cells : list of int
        How many cells each row itself has (not counting those spanned down into it).
    total_rows : int
        The table's ``<tr>`` elements, before the ``MAX_ROWS`` cut.
    """

    rows: list[list[str]]
    all_th: list[bool]
    own_cells: list[int]
    total_rows: int


@dataclass
class Layout:
    """A table's first MAX_ROWS rows of cells, and the width its spans are clamped to."""

    cells: list[list]
    width: int
    total_rows: int

    @classmethod
    def of(cls, table: etree._Element) -> Layout:
        """The layout of an lxml ``<table>`` element (its width at most MAX_COLS)."""
        cells = [_cells(tr) for tr in _FIRST_ROWS(table)]
        most = max((len(c) for c in cells), default=0)
        # each span is at least 1, so a row's first MAX_COLS cells decide its width
        width = min(
            MAX_COLS,
            max(
                (sum(min(_span(c, "colspan"), most) for c in row[:MAX_COLS]) for row in cells),
                default=0,
            ),
        )
        return cls(cells, width, int(_COUNT_ROWS(table)))


def _cells(tr) -> list:
    """The row's first MAX_COLS cells (each spans at least one column)."""
    return list(islice((c for c in tr if c.tag in ("td", "th")), MAX_COLS))


def _cell_text(cell) -> str:
    """The cell's text without nested tables, footnotes or scripts; iterative, so a
    deeply nested cell cannot exhaust the stack."""
    parts = [cell.text or ""]
    stack: list = list(reversed(cell))
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            parts.append(node)
            continue
        if node.tail:
            stack.append(node.tail)
        if node.tag in _SKIPPED_IN_CELLS or not isinstance(node.tag, str):
            continue
        if node.tag == "br":
            parts.append(" ")
        parts.append(node.text or "")
        stack.extend(reversed(node))
    return _FOOTNOTE.sub("", " ".join("".join(parts).split())).strip()


def _span(cell, name: str) -> int:
    value = str(cell.get(name, "1")).strip()[:12]
    return max(1, int(value)) if value.isdigit() else 1


def read_grid(table: etree._Element, limit: int = MAX_ROWS, layout: Layout | None = None) -> Grid:
    """The first ``limit`` rows of ``table`` as text, spans expanded and clamped.

    A colspan is clamped to the widest row's cell count (so ``colspan=100000000`` on a
    two-column table spans two columns), the table to MAX_COLS columns, a rowspan to
    the rows left in the table. ``layout`` is the table's :class:`Layout` if the
    caller already has it.
    """
    layout = layout or Layout.of(table)
    cells, width, n_rows = layout.cells, layout.width, len(layout.cells)
    carry: list[tuple[str, int] | None] = [None] * width  # text, rows still to fill
    grid = Grid([], [], [], layout.total_rows)
    for i, row in enumerate(cells[:limit]):
        last_carried = max((j for j, c in enumerate(carry) if c), default=-1)
        out: list[str] = []
        k = 0
        while len(out) < width:
            col = len(out)
            if carry[col] is not None:
                text, left = carry[col]
                out.append(text)
                carry[col] = (text, left - 1) if left > 1 else None
            elif k < len(row):
                cell = row[k]
                k += 1
                text = _cell_text(cell)
                down = min(_span(cell, "rowspan"), n_rows - i)
                for _ in range(min(_span(cell, "colspan"), width - col)):
                    if down > 1:
                        carry[len(out)] = (text, down - 1)
                    out.append(text)
            elif col <= last_carried:
                out.append("")  # the row ends before a cell spanning down from above
            else:
                break
        if out:
            grid.rows.append(out)
            grid.all_th.append(bool(row) and all(c.tag == "th" for c in row))
            grid.own_cells.append(len(row))
    size = max((len(r) for r in grid.rows), default=0)
    grid.rows = [r + [""] * (size - len(r)) for r in grid.rows]
    return grid


def table_grid(table: object) -> tuple[list[list[str]], int]:
    """All rows of a table as text, with row- and column-spans expanded.

    ``table`` is an lxml element (or a BeautifulSoup tag, re-read with lxml). Returns
    ``(rows, n_header)``: ``n_header`` counts the leading rows made only of ``<th>``
    cells (the parser itself finds header rows by their text). A short row is padded
    with empty strings.
    """
    if not isinstance(table, etree._Element):
        table = next(parse_document(str(table))[0].iter("table"))
    grid = read_grid(table)
    n_header = 0
    while n_header < len(grid.rows) and grid.all_th[n_header]:
        n_header += 1
    return grid.rows, n_header


def normalise_header(text: str) -> str:
    """A header cell's text compared by words: lower case, footnote markers dropped,
    every run of punctuation or spaces turned into one space ("GICS Sub-Industry[3]"
    -> "gics sub industry")."""
    text = re.sub(r"\[[^\]]*\]", "", text)  # footnote markers left in header text
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def column_names(rows: list[list[str]]) -> list[str]:
    """One name per column: the header rows of that column normalised and joined
    ("Added Ticker"), a text repeated by a colspan counted once."""
    names = []
    for j in range(len(rows[0]) if rows else 0):
        parts: list[str] = []
        for row in rows:
            part = normalise_header(row[j])
            if part and (not parts or parts[-1] != part):
                parts.append(part)
        names.append(" ".join(parts))
    return names


def parse_document(html: str | bytes) -> tuple[etree._Element | None, list[str]]:
    """The parsed document (None if it has no elements) and why parsing stopped early.

    libxml2's HTML parser is used directly (not through BeautifulSoup): it is ten times
    faster, and its own limits (no network, a nesting depth of 256) bound the work."""
    data = html.encode("utf-8", "replace") if isinstance(html, str) else html
    parser = etree.HTMLParser(
        encoding="utf-8", recover=True, no_network=True, remove_comments=True, remove_pis=True
    )
    try:
        root = etree.fromstring(data, parser) if data.strip() else None
    except etree.ParserError:  # "Document is empty"
        root = None
    stopped = [
        f"the HTML parser stopped early ({e.message.split(',')[0].strip()})"
        for e in parser.error_log
        if e.type_name == "ERR_RESOURCE_LIMIT"
    ]
    return root, stopped[:1]


class HtmlPage:
    """A parsed page: its tables in the order to try them, and how the document ends.

    Parameters
    ----------
    html : str or bytes
        The page; bytes are read as UTF-8, else as cp1252 (a copy saved in a legacy
        code page).
    source : str
        Where the page came from, for messages.

    Attributes
    ----------
    text : str
        The decoded page.
    notes : list of str
        Why the HTML parser stopped early, if it did.
    cut : bool
        The document opens more tables than it closes (a download cut short).
    ends_inside_row : bool
        ``cut``, and the last ``<tr>`` is not closed either.
    """

    def __init__(self, html: str | bytes, source: str):
        if isinstance(html, bytes):
            try:
                html = html.decode("utf-8")
            except UnicodeDecodeError:  # a copy saved in a legacy code page
                html = html.decode("cp1252", "replace")
        self.source = source
        self.text = html
        root, self.notes = parse_document(html)
        tables = [] if root is None else list(root.iter("table"))
        self.n_tables = len(tables)
        self.top: list = []  # not inside another table, in document order
        self.nested: list = []
        self.by_id: dict = {}
        for table in tables:
            if table.get("id"):
                self.by_id.setdefault(table.get("id"), table)
            if len(self.top) < MAX_TABLES:  # beyond that, no nested table is tried
                inside = next(table.iterancestors("table"), None) is not None
                (self.nested if inside else self.top).append(table)
        # The document ends inside a table when it opens more tables than it closes: a
        # download or a save cut short. Then it ends inside a row if the last <tr> is
        # not closed (the row's cells may be cut mid-word).
        lower = html.lower()
        self.cut = lower.count("<table") > lower.count("</table")
        self.ends_inside_row = self.cut and lower.rfind("<tr") > lower.rfind("</tr")
        self._layouts: dict = {}

    def layout(self, table: etree._Element) -> Layout:
        """The table's :class:`Layout`, worked out once per page."""
        if table not in self._layouts:  # both tables are looked for in every table
            self._layouts[table] = Layout.of(table)
        return self._layouts[table]

    def candidates(self, prefer: str) -> list[etree._Element]:
        """Tables with id ``prefer`` first, then top-level ones, then nested ones (a
        page laid out in a table); at most MAX_TABLES."""
        first = self.by_id.get(prefer)
        out = [] if first is None else [first]
        out += [t for t in self.top[:MAX_TABLES] if t is not first]
        out += [t for t in self.nested[:MAX_TABLES] if t is not first]
        return out[:MAX_TABLES]

    def ends_inside(self, table: etree._Element) -> bool:
        """Whether the document ends inside ``table`` (the last top-level table, or a
        table nested in it, of a page cut short)."""
        if not self.cut or not self.top:
            return False
        last = self.top[-1]
        return table is last or any(a is last for a in table.iterancestors("table"))

    def describe(self) -> str:
        """What the page holds, for an error saying a table was not found: the number
        of tables and the headers of the first five, and why parsing stopped early."""
        if not self.n_tables:
            what = "no tables"
        else:
            heads = []
            for table in self.top[:5]:
                grid = read_grid(table, 1, self.layout(table))
                heads.append(", ".join(n for n in column_names(grid.rows[:1]) if n)[:80])
            what = f"{self.n_tables} table(s), headers: " + (
                "; ".join(h for h in heads if h) or "none"
            )
        if self.n_tables > MAX_TABLES:
            what += f"; only the first {MAX_TABLES} tables were examined"
        return "; ".join([what, *self.notes])
