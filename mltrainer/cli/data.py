"""``data load`` and ``data status``."""

from __future__ import annotations

import time

import pandas as pd

from mltrainer import config, fmt
from mltrainer.cli import common
from mltrainer.cli.common import Subparsers, emit, load_data
from mltrainer.data.cache import get_cache
from mltrainer.data.sources import resolve_local_dir

# cache kinds that hold daily bars (not macro series, pages or scenario results)
PRICE_KINDS = ("panel", "prices")


def register(subparsers: Subparsers) -> None:
    """The ``data`` commands: load, status."""
    sub = common.add_group(subparsers, "data", "load market data, show the cache")
    load = common.add_command(sub, "load", _load, "load prices from a source and summarise them")
    common.add_data_args(load)
    common.add_json(common.add_command(sub, "status", _status, "data folder, cache and freshness"))


def _load(args) -> int:
    t0 = time.perf_counter()
    data = load_data(args)
    summary = data.summary()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    summary["tickers"] = list(data.tickers)  # all: the first 50 of 504 passed for the list
    unpriced = [str(t) for t in data.adj_close.columns[data.adj_close.isna().all()]]
    summary["tickers_without_prices"] = unpriced
    if unpriced:
        summary["warnings"].append(
            f"{fmt.count(len(unpriced), 'ticker')} with no price in this range: "
            + ", ".join(unpriced[:8])
            + (" ..." if len(unpriced) > 8 else "")
        )
    lines = [
        f"source: {summary['source']} (as of {summary['as_of']})",
        f"{fmt.count(summary['n_tickers'], 'ticker')}, {fmt.count(summary['n_dates'], 'date')}"
        f", {fmt.date_range(summary['first_date'], summary['last_date'])}",
        f"loaded in {fmt.number(summary['seconds'], 1)} s",
    ] + [f"warning: {w}" for w in summary["warnings"]]
    emit(args, summary, "\n".join(lines))
    return 0


def _status(args) -> int:
    local = resolve_local_dir(None)
    cache = get_cache()
    entries = cache.status()
    doc = {
        "data_dir": None if config.data_dir() is None else str(config.data_dir()),
        "local_folder": None if local is None else str(local),
        "auto_source": "local" if local is not None else "live or bundled",
        "data_dir_problem": None if local is not None else config.data_dir_problem(),
        "cache_dir": str(cache.directory),
        "n_entries": len(entries),
        "n_stale": sum(e["stale"] for e in entries),
        "entries": entries,
        "keys_configured": {
            name: config.api_key(name) is not None for name in ("POLYGON_API_KEY", "FRED_API_KEY")
        },
        "offline": config.offline(),
        "newest_bar": max(
            (e["last"] for e in entries if "last" in e and e["kind"] in PRICE_KINDS), default=None
        ),
    }
    lines = [
        "data folder: "
        + (
            doc["local_folder"]
            or f"none: {doc['data_dir_problem']} (auto: the live sources, else the bundled data)"
        ),
        f"cache: {doc['cache_dir']} ({fmt.integer(doc['n_entries'])} entries, "
        f"{fmt.integer(doc['n_stale'])} stale)",
    ]
    lines += [
        f"  {e['kind']:<13} {fmt.integer(e['bytes']):>11} B  stored {e['stored_at']}"
        f"{'  STALE' if e['stale'] else ''}{_bars(e)}  {e['key'][:70]}"
        for e in entries
    ]
    lines += _freshness(doc)
    emit(args, doc, "\n".join(lines))
    return 0


def _bars(entry: dict) -> str:
    if "last" not in entry:
        return ""
    return f"  rows {fmt.date_range(entry['first'], entry['last'])}"


def _freshness(doc: dict) -> list[str]:
    """How current the cached prices are, whether the network may be used, which keys."""
    newest = doc["newest_bar"]
    if newest is None:
        lines = ["newest bar: no prices cached yet (`data load` reads and caches them)"]
    else:
        age = (pd.Timestamp.today().normalize() - pd.Timestamp(newest)).days
        lines = [f"newest bar: {fmt.date(newest)} ({fmt.count(age, 'day')} before today)"]
    lines.append(
        "network: forbidden by MLTRAINER_OFFLINE (only cached copies are used)"
        if doc["offline"]
        else "network: allowed (live sources are fetched when the cache is stale)"
    )

    def state(name: str, usable: bool) -> str:  # a key set but refused is not "not set"
        return "set" if usable else "set but refused" if config.key_problem(name) else "not set"

    keys = doc["keys_configured"]
    lines.append("API keys: " + ", ".join(f"{k} {state(k, v)}" for k, v in keys.items()))
    return lines
