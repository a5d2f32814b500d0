"""A shared link's page settings that a page could not use are named, not dropped.

Streamlit fills a widget bound to the URL (``bind="query-params"``) from a link on the
session's first run, and silently drops a value the widget cannot take
(``risk_level=0.5`` is not one of the levels, ``risk_window=abc`` is not a number): the
page then shows its default, and the reader believes it shows what the link says.
:func:`remember` keeps the link's parameters on a session's first run; :func:`report`,
after each page run (app.py) or before an error stops it (``ui.feedback.friendly``),
compares them with the widgets of the same keys and names in a toast each value that
was dropped for another.

The sidebar's parameters and the Model Lab's own ones are validated where they are read,
with their own warnings, and are left out here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import streamlit as st

_KEY = "_link_params"
_HINTS = "_link_hints"  # per session: widget key -> explain(left-out choices)
_MOST = "_link_most"  # per session: multiselect key -> (its option labels, max_selections)
_SIDEBAR = ("source", "start", "end", "sectors")
_LABELS: dict[str, Callable[[object], str]] = {}  # widget key -> its format_func


def label(key: str, format_func: Callable[[object], str]) -> Callable[[object], str]:
    """Declare the ``format_func`` of the bound widget ``key`` (Streamlit writes a choice
    to the URL as its label) and return it, to pass on to the widget."""
    _LABELS[key] = format_func
    return format_func


def hint(key: str, explain: Callable[[list[str]], list[str]]) -> None:
    """Declare, for this session, what explains the link's choices the multiselect
    ``key`` left out (``explain(left_out)`` gives sentences: what the data calls a
    ticker); :func:`report` adds them to its toast."""
    st.session_state.setdefault(_HINTS, {})[key] = explain


def most(key: str, options: list, n: int) -> int:
    """Declare, for this session, the ``options`` of the multiselect ``key`` and its
    ``max_selections`` ``n``; return ``n``, to pass on to the widget. A link's choices
    past the n-th (Streamlit keeps the first n) are then said to be over the limit: 70
    tickers read "'BIIB', 'BIO' ... are not on this page's list", which they were."""
    labels = frozenset(_LABELS.get(key, str)(o) for o in options)
    st.session_state.setdefault(_MOST, {})[key] = (labels, n)
    return n


def remember() -> None:
    """On a session's first run, keep the link's page parameters (raw strings)."""
    if _KEY not in st.session_state:
        from ui.lab import PARAM_PREFIX, URL_KEYS  # after the model library's import

        own = {*_SIDEBAR, "wf", *URL_KEYS}
        st.session_state[_KEY] = {
            k: st.query_params.get_all(k)
            for k in st.query_params
            if k not in own and not k.startswith(PARAM_PREFIX)
        }


def report() -> None:
    """Name each remembered parameter whose widget exists now and did not take it."""
    pending = st.session_state.get(_KEY) or {}
    for key in [k for k in pending if k in st.session_state]:  # its widget ran this time
        raw, value = pending.pop(key), st.session_state[key]
        if isinstance(value, list):  # a multiselect: Streamlit keeps the choices it knows
            _report_choices(key, raw, value)
            continue
        if isinstance(value, tuple):  # a range slider: two values, one parameter each
            _report_range(key, raw, value)
            continue
        if not isinstance(value, bool | int | float | str | dt.date):
            continue  # app state that shares a link parameter's name, not a widget
        if len(raw) > 1:  # a widget takes one value: which one was used is not the link's
            given = _given(raw)
            st.toast(
                plain(
                    f"The link gives {key} {len(raw)} times ({given}); this page takes one "
                    f"and shows {_shown(value)}."
                ),
                icon="⚠️",
            )
            continue
        if key in st.query_params or not raw:  # taken (Streamlit keeps what it used)
            continue
        labelled = key in _LABELS and raw[-1] == _LABELS[key](value)
        if not (labelled or matches(raw[-1], value)):  # dropped, not for being the default
            st.toast(
                plain(
                    f"The link's {key}={raw[-1][:40]!r} is not a value this page takes; "
                    f"showing {_shown(value)} instead."
                ),
                icon="⚠️",
            )


def repeated(name: str) -> None:
    """Warn when the link gives ``name``, a value the app reads itself (not a widget's),
    more than once with different values: the last is used, as for a widget's, and said."""
    raw = st.query_params.get_all(name)
    if len(set(raw)) > 1:
        st.warning(
            plain(
                f"The link gives {name} {len(raw)} times ({_given(raw)}); using the last, "
                f"{raw[-1][:40]!r}."
            )
        )


def _given(raw: list[str]) -> str:
    """A link's values for a message: five at most, each cut to 40 characters."""
    return ", ".join(repr(r[:40]) for r in raw[:5]) + (" ..." if len(raw) > 5 else "")


def _report_range(key: str, raw: list[str], value: tuple) -> None:
    """Name a range slider's link values that it did not take (it takes two: ``key=lo``
    and ``key=hi``; ``mon:vol_windows=300`` alone was dropped unsaid)."""
    if key in st.query_params or not raw:  # taken
        return
    if len(raw) == len(value) and all(matches(r, v) for r, v in zip(raw, value, strict=True)):
        return  # the default range, which Streamlit leaves out of the URL
    given = _given(raw)
    st.toast(
        plain(
            f"The link's {key} ({given}) is not a range this page takes (two values, "
            f"{key}=low&{key}=high, within the slider's bounds); showing "
            f"{' to '.join(_shown(v) for v in value)} instead."
        ),
        icon="⚠️",
    )


def _report_choices(key: str, raw: list[str], value: list) -> None:
    """Name the link's choices for the multiselect ``key`` that it left out."""
    kept = st.query_params.get_all(key) if key in st.query_params else []
    if not kept:  # all dropped, or the link gave the default choices
        shown = _LABELS.get(key, str)
        kept = [shown(v) for v in value]
    lost = [r for r in raw if r and r not in kept]
    offered, n = st.session_state.get(_MOST, {}).get(key, (frozenset(), 0))
    over = list(dict.fromkeys(r for r in lost if r in offered))
    if over:  # on the list, past the widget's max_selections
        st.toast(
            plain(
                f"The link gives {key} {len(set(filter(None, raw)))} choices and this page "
                f"takes at most {n}; left out: {', '.join(repr(r[:40]) for r in over[:5])}"
                f"{' and more' if len(over) > 5 else ''}."
            ),
            icon="⚠️",
        )
        lost = [r for r in lost if r not in offered]
    if lost:
        explain = st.session_state.get(_HINTS, {}).get(key)
        hints = "".join(f" {h[0].upper()}{h[1:]}." for h in explain(lost)) if explain else ""
        st.toast(
            plain(
                f"The link's {key} choices {', '.join(repr(r[:40]) for r in lost[:5])}"
                f"{' and more' if len(lost) > 5 else ''} are not on this page's list; "
                f"left out.{hints}"
            ),
            icon="⚠️",
        )


def matches(raw: str, value: object) -> bool:
    """Whether the URL text ``raw`` says the one value ``value`` (Streamlit drops a
    parameter equal to its widget's default from the URL: that one was not lost)."""
    if isinstance(value, bool):
        return raw.strip().lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return math.isclose(float(raw), float(value), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    if isinstance(value, dt.date):
        return raw.strip() == value.isoformat()
    return raw == str(value)


_MARKUP = str.maketrans({c: "\\" + c for c in "\\[]!<>$"})  # [ ] also end :red[...]


def plain(text: str) -> str:
    """``text`` that holds a link's raw value, escaped for Streamlit's markdown: a crafted
    link cannot put a link, an image (fetched by the reader's browser), LaTeX or a colour
    directive in a warning the page shows (emphasis and code spans are left: harmless)."""
    return text.translate(_MARKUP)


def _shown(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else repr(value)
