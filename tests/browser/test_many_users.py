"""Several users at once (issue 11): five browser sessions open Home, Universe, Risk &
Stress and the Model Lab of one server at the same time, through the driver of
``bench/bench_users.py`` (:mod:`ui.user_sessions`). Every view renders, with no error.

The time bound is a hang guard only: the figures (p95, CPU per view) are the bench's,
as CI machines differ in speed.
"""

from __future__ import annotations

import pytest

from ui.user_sessions import VIEWS, run_sessions, summarize

pytestmark = pytest.mark.browser

SESSIONS = 5
HANG_S = 240  # per page view: a cold server computes Home's regimes and baskets first


def test_five_sessions_at_once_render_every_page_without_errors(server, chromium_path):
    views = run_sessions(
        server, SESSIONS, window_s=2.0, chromium_path=chromium_path, timeout_s=HANG_S
    )
    figures = summarize(views, [])
    assert figures["error_messages"] == []
    assert figures["views"] == SESSIONS * len(VIEWS)
    assert figures["rendered"] == SESSIONS * len(VIEWS)
    assert {v.view for v in views} == {v.name for v in VIEWS}
    print(
        f"\n{SESSIONS} sessions: time to rendered p50 {figures['seconds']['p50']:.2f} s, "
        f"max {figures['seconds']['max']:.2f} s"
    )
