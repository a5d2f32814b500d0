"""Leaderboard page plumbing: the latest stored run, a small starter run when none is
stored yet, and the links that open a row in the Model Lab."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from mltrainer.config import DEFAULT_COST_BPS
from mltrainer.errors import MLTrainerError
from ui.feedback import result_store, with_progress

STARTER_FAMILY = "momentum"  # milliseconds a setting on a few tickers: a quick first look
PERCENT = ("oos_cagr", "oos_max_drawdown", "default_oos_cagr")


@st.cache_data(show_spinner=False, max_entries=4)
def _read(folder: str, mtime: float) -> tuple[pd.DataFrame, dict]:
    """A stored run, read again only when its meta file changes (``mtime``)."""
    from pathlib import Path

    from mltrainer.backtest.leaderboard_store import read_run

    return read_run(Path(folder))


def latest_stored() -> tuple[pd.DataFrame, dict] | None:
    """The most recently finished leaderboard in ``results/leaderboard`` (the CLI's)."""
    from mltrainer.backtest.leaderboard_store import latest_run

    folder = latest_run()
    if folder is None:
        return None
    return _read(str(folder), (folder / "meta.json").stat().st_mtime)


def starter(sel, tickers: list[str]) -> tuple[pd.DataFrame, dict]:
    """The momentum family on ``tickers`` over the sidebar's range (504-day first
    training window, 126-day test folds, the default 5 bps a trade), computed once per server with a
    progress bar; its tasks are kept in the cache folder like any leaderboard's."""
    from mltrainer.backtest.leaderboard import data_meta, leaderboard_models, run_leaderboard
    from mltrainer.backtest.walkforward import WalkForwardSettings
    from mltrainer.data.cache import get_cache
    from ui.data import window

    def compute(progress):
        data = window(sel, tickers)
        settings = WalkForwardSettings(
            train_size=504, test_size=126, backtest_kwargs={"commission_bps": DEFAULT_COST_BPS}
        )
        settings.check_fits(data.dates, "widen the sidebar's date range")
        board = run_leaderboard(
            data,
            leaderboard_models([STARTER_FAMILY]),
            settings,
            root=get_cache().directory / "leaderboard",  # a temporary one if it must be
            progress=progress,
            n_jobs=1,
        )
        board.meta["data"] = data_meta(data, tickers)
        board.meta["universe"] = {"name": "survivors", "label": "the tickers picked, whole period"}
        board.meta["audit_id"] = _audit(board, data)
        return board.table, board.meta

    key = (sel.source, tuple(tickers), str(sel.start), str(sel.end))
    label = f"Leaderboard of the {STARTER_FAMILY} family on {len(tickers)} tickers"
    return with_progress(result_store("leaderboard_starter", 4), key, label, compute)


def _audit(board, data) -> str | None:
    from mltrainer import audit

    try:
        rec = audit.record(
            "leaderboard",
            None,
            {"models": [k for k in board.table.index if not k.startswith("baseline/")]},
            data=data,
            metrics={"n_models": int((board.table["family"] != "baseline").sum())},
            extra={"page": "leaderboard", "run_id": board.meta["run_id"]},
        )
    except (OSError, MLTrainerError):
        return None
    return rec["id"]


def lab_link(key: str, row: pd.Series, meta: dict) -> str | None:
    """The Model Lab URL that opens ``key`` with the setting its last training fold chose,
    on the leaderboard's data, universe and costs (None for a baseline)."""
    if key.startswith("baseline/"):
        return None
    data = meta.get("data") or {}
    universe = (meta.get("universe") or {}).get("name", "survivors")
    costs = ((meta.get("out_of_sample") or {}).get("costs") or {}).get("commission_bps", 0.0)
    query = {"family": key.split("/")[0], "model": key, "universe": universe, "costs": f"{costs:g}"}
    if data.get("source"):
        query["source"] = data["source"]
    if data.get("first_date") and data.get("last_date"):
        query.update(start=data["first_date"], end=data["last_date"])
    if universe != "sp500" and data.get("tickers"):
        query["tickers"] = ",".join(data["tickers"][:50])
    chosen = row.get("chosen_params")
    if isinstance(chosen, str):
        query.update({f"p.{k}": str(v) for k, v in json.loads(chosen).items()})
    return "model_lab?" + urlencode(query)


def display_frame(table: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """The table as shown: short names, percentages in percent, a Model Lab link."""
    out = pd.DataFrame(index=table.index)
    out["model"] = [k.split("/", 1)[1] for k in table.index]
    out["family"] = table["family"]
    for name in ("oos_cagr", "oos_sharpe", "oos_dsr", "oos_max_drawdown", "oos_turnover"):
        out[name] = table[name] * (100 if name in PERCENT else 1)
    out["n_settings"] = table["n_settings"]
    out["default_oos_sharpe"] = table.get("default_oos_sharpe")
    for name in ("chosen_params", "error"):  # text: blank where none (not "None")
        column = table.get(name, pd.Series(None, index=table.index, dtype=object))
        out[name] = column.astype(object).where(column.notna(), "")
    out["lab"] = [lab_link(k, row, meta) for k, row in table.iterrows()]
    return out


def coverage(meta: dict) -> str:
    """One sentence: what every figure of the table covers."""
    span = meta.get("out_of_sample") or {}
    costs = ", ".join(
        f"{k.removesuffix('_bps')} {v:g} bps" for k, v in (span.get("costs") or {}).items()
    )
    universe = (meta.get("universe") or {}).get("label", "?")
    return (
        f"Out of sample {span.get('first_date')} to {span.get('last_date')} "
        f"({span.get('n_folds')} test folds; each fold's setting chosen on its training "
        f"folds only); universe: {universe}; {span.get('universe', '')}; costs "
        f"{costs or 'none'}. Audit record {meta.get('audit_id') or '-'}, run "
        f"{meta.get('run_id')}."
    )
