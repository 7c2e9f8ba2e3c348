"""Seeded synthetic traffic → a mallard data directory (Parquet lake), vectorised with numpy and pyarrow.

Writes ``<out>/events/site_id=<site>/date=<YYYY-MM-DD>/<segment>.parquet`` (ZSTD, the column schema of
``mallard._store.lake.SCHEMA``, rows sorted by timestamp, row groups of 122,880 rows as DuckDB's
compaction writes them): one file per partition, as compaction leaves them, except the last day, which
is left in a few un-compacted files as the flusher writes them during the day.

Shape of the traffic (see ``traffic.py`` for the vocabularies):

* one dominant site with 2/3 of the events, the others sharing the rest; a weekly rhythm (weekends
  ~30% lower), a slight growth trend and day-to-day noise; a diurnal curve of visit starts (UTC);
* visitors with daily-rotating ids (64 hex characters, like mallard's keyed hash), each with 1–4
  sessions a day separated by more than the 30-minute session window; sessions of 1–8 events with
  exponential gaps (mean 50 s, capped at 25 min); ~51% of sessions bounce;
* ~15% custom events (signups, purchases with revenue, outbound clicks, downloads…) with props, on
  the page of the preceding pageview; pageviews over ~500 paths with a Zipf distribution;
* the landing event of a session carries the referrer (38% direct, Google, Bing, ChatGPT, Reddit, HN…;
  ``referrer_source`` is computed by mallard's own classifier) and, for ~8% of sessions, UTM tags; later
  pageviews carry the internal referrer (source ``(direct)``), as a browser sends it;
* browser, OS and device come from a weighted mix of real User-Agents parsed by mallard's own parser;
  a matching viewport width; country/region/city from a weighted list (2% unknown);
* ``visitor_id_prev`` is set on events in the first 30 minutes of a day, as the tracker does after the
  salt rotation.

``manifest.json`` records the parameters and, per site, the totals a correct query engine must
reproduce (events, pageviews, visitor-days, sessions, bounces): the output is reused when a manifest with
the same parameters exists.

Usage::

    python benchmarks/generate.py --events 2000000 --days 30 --sites 3 --out benchmarks/.data/2m
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import traffic

from mallard._enrich.channels import channel
from mallard._enrich.referrers import referrer_source
from mallard._enrich.useragent import AgentParser, device_type
from mallard._store.lake import SCHEMA, site_dir_name

GENERATOR_VERSION = 2  # 2: lake schema version 3 (click_id, channel)
ROW_GROUP_SIZE = 122_880  # DuckDB's row group size: what compaction (COPY … TO parquet) writes
DAY_US = 86_400_000_000
WINDOW_US = 30 * 60 * 1_000_000

# Session length 1..8 events (mean ≈ 2.45) and sessions per visitor and day 1..4 (mean ≈ 1.41).
SESSION_LENGTH_P = np.array([0.45, 0.20, 0.12, 0.08, 0.06, 0.04, 0.03, 0.02])
SESSIONS_PER_VISITOR_P = np.array([0.72, 0.18, 0.07, 0.03])
CUSTOM_SHARE = 0.15
UTM_SHARE = 0.08
IN_SESSION_GAP_MEAN_S = 50.0
IN_SESSION_GAP_MAX_S = 25 * 60.0
BETWEEN_SESSIONS_MIN_S = 31 * 60.0
BETWEEN_SESSIONS_MEAN_S = 100 * 60.0
BETWEEN_SESSIONS_MAX_S = 3 * 3600.0
# Share of visit starts per UTC hour (Europe + Americas).
DIURNAL = np.array([2.0, 1.5, 1.2, 1.0, 1.0, 1.2, 2.0, 3.0, 4.5, 5.5, 6.0, 6.2, 6.0, 6.0, 6.5, 7.0,
                    7.0, 6.5, 6.0, 5.5, 5.0, 4.5, 3.5, 2.5])

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _norm(weights: Any) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


class Vocabulary:
    """Dictionaries (Arrow arrays) and their weights; events hold indices into them."""

    def __init__(self) -> None:
        parser = AgentParser()
        # client profiles: one per (User-Agent, width)
        browsers, bversions, oses, oversions, devices, screens, weights = [], [], [], [], [], [], []
        for ua_weight, ua in traffic.USER_AGENTS:
            agent = parser.parse(ua)
            assert not agent.is_bot and agent.device is not None, ua
            widths = traffic.SCREEN_WIDTHS[agent.device]
            total = sum(w for w, _ in widths)
            for w, width in widths:
                browsers.append(agent.browser)
                bversions.append(agent.browser_version)
                oses.append(agent.os)
                oversions.append(agent.os_version)
                devices.append(device_type(agent, width, None))
                screens.append(str(width))
                weights.append(ua_weight * w / total)
        self.browser = pa.array(browsers, pa.string())
        self.browser_version = pa.array(bversions, pa.string())
        self.os = pa.array(oses, pa.string())
        self.os_version = pa.array(oversions, pa.string())
        self.device = pa.array(devices, pa.string())
        self.screen = pa.array(screens, pa.string())
        self.profile_p = _norm(weights)

        countries, regions, cities, weights = [], [], [], []
        for weight, country, places in traffic.COUNTRIES:
            for region, city in places or ((None, None),):
                countries.append(country)
                regions.append(region)
                cities.append(city)
                weights.append(weight / max(1, len(places)))
        self.country = pa.array(countries, pa.string())
        self.region = pa.array(regions, pa.string())
        self.city = pa.array(cities, pa.string())
        self.place_p = _norm(weights)

        self.paths_list = traffic.page_paths()
        self.paths = pa.array(self.paths_list, pa.string())
        self.path_p = _norm(traffic.zipf_weights(len(self.paths_list)))

        self.referrer_urls = [url for _, url in traffic.REFERRERS]
        self.referrer = pa.array(self.referrer_urls, pa.string())
        self.referrer_p = _norm([w for w, _ in traffic.REFERRERS])

        self.utm = [pa.array([t[i] for t in traffic.UTM_TAGS], pa.string()) for i in range(1, 6)]
        self.utm_p = _norm([t[0] for t in traffic.UTM_TAGS])

        events = traffic.custom_events()
        self.custom_name = pa.array([e[1] for e in events], pa.string())
        self.custom_props = pa.array([traffic.props_json(e[2]) for e in events], pa.string())
        self.custom_revenue = np.array([np.nan if e[3] is None else e[3] for e in events])
        self.custom_currency = pa.array([e[4] for e in events], pa.string())
        self.custom_p = _norm([e[0] for e in events])

    def sources(self, host: str) -> pa.Array:
        """``referrer_source`` of every referrer of the vocabulary, as mallard classifies it."""
        return pa.array([referrer_source(url, host) for url in self.referrer_urls], pa.string())


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random 64-hex-character strings, built straight into an Arrow string array."""
    digits = _HEX[rng.integers(0, 16, size=n * 64, dtype=np.uint8)]
    offsets = np.arange(0, (n + 1) * 64, 64, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))


def _take(dictionary: pa.Array, indices: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    idx = pa.array(indices.astype(np.int32), mask=None if valid is None else ~valid)
    return pc.take(dictionary, idx)


def _group_offsets(sizes: np.ndarray) -> np.ndarray:
    """Start offset of each group for groups of the given sizes laid out contiguously."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    return starts


def _sizes_summing_to(rng: np.random.Generator, total: int, p: np.ndarray) -> np.ndarray:
    """Sizes 1..len(p) drawn with probabilities ``p`` until they sum to ``total`` (last one cut)."""
    mean = float(np.dot(np.arange(1, len(p) + 1), p))
    out: list[np.ndarray] = []
    have = 0
    while have < total:
        chunk = rng.choice(np.arange(1, len(p) + 1), size=int((total - have) / mean * 1.05) + 16, p=p)
        out.append(chunk)
        have += int(chunk.sum())
    sizes = np.concatenate(out)
    csum = np.cumsum(sizes)
    k = int(np.searchsorted(csum, total))  # first index where the running sum reaches total
    sizes = sizes[: k + 1].copy()
    sizes[k] -= int(csum[k] - total)
    return sizes


def partition_table(vocab: Vocabulary, rng: np.random.Generator, site: str, day: date, n: int,
                    path_perm: np.ndarray, sources: pa.Array) -> tuple[pa.Table, dict[str, int]]:
    """``n`` events of ``site`` on ``day`` as an Arrow table sorted by timestamp, and their totals."""
    # -- sessions and visitors -------------------------------------------------------------------
    sess_len = _sizes_summing_to(rng, n, SESSION_LENGTH_P)
    n_sess = len(sess_len)
    sess_per_vis = _sizes_summing_to(rng, n_sess, SESSIONS_PER_VISITOR_P)
    n_vis = len(sess_per_vis)
    vis_of_sess = np.repeat(np.arange(n_vis), sess_per_vis)
    sess_of_ev = np.repeat(np.arange(n_sess), sess_len)
    vis_of_ev = vis_of_sess[sess_of_ev]
    pos = np.arange(n) - np.repeat(_group_offsets(sess_len), sess_len)
    first_sess_of_vis = _group_offsets(sess_per_vis)
    vis_first_ev = np.zeros(n, dtype=bool)
    vis_first_ev[_group_offsets(sess_len)[first_sess_of_vis]] = True

    # -- timestamps: gaps within a visitor's day, then a diurnal start that keeps the day whole ---
    gap = np.minimum(rng.exponential(IN_SESSION_GAP_MEAN_S, n), IN_SESSION_GAP_MAX_S)
    new_sess = pos == 0
    between = np.minimum(BETWEEN_SESSIONS_MIN_S + rng.exponential(BETWEEN_SESSIONS_MEAN_S, n),
                         BETWEEN_SESSIONS_MAX_S)
    gap = np.where(new_sess, between, gap)
    gap[vis_first_ev] = 0.0
    gap_us = (gap * 1e6).astype(np.int64)
    csum = np.cumsum(gap_us)
    vis_start_ev = np.flatnonzero(vis_first_ev)
    offset = csum - np.repeat(csum[vis_start_ev], np.diff(np.append(vis_start_ev, n)))
    vis_end_ev = np.append(vis_start_ev[1:], n) - 1
    span = offset[vis_end_ev]
    hour = rng.choice(24, size=n_vis, p=_norm(DIURNAL))
    wanted = (hour + rng.random(n_vis)) * 3600e6  # µs after midnight
    start = (wanted * (DAY_US - 1 - span) / DAY_US).astype(np.int64)
    tod = start[vis_of_ev] + offset  # µs after midnight, < DAY_US

    # -- event names and pages ---------------------------------------------------------------------
    n_later = n - n_sess
    p_custom = min(0.9, CUSTOM_SHARE * n / n_later) if n_later else 0.0
    custom = (pos > 0) & (rng.random(n) < p_custom)
    pageview = ~custom
    page_rank = rng.choice(len(path_perm), size=n, p=vocab.path_p)
    page = path_perm[page_rank]
    # a custom event happens on the page of the latest pageview (every session starts with one)
    last_pv = np.maximum.accumulate(np.where(pageview, np.arange(n), 0))
    page = page[last_pv]
    # internal referrer of a later pageview: the page of the event before it
    prev_page = np.zeros(n, dtype=page.dtype)
    prev_page[1:] = page[:-1]
    internal = pageview & (pos > 0)

    # -- per session: referrer, UTM; per visitor: client and place ---------------------------------
    ref_of_sess = rng.choice(len(vocab.referrer_p), size=n_sess, p=vocab.referrer_p)
    utm_of_sess = np.where(rng.random(n_sess) < UTM_SHARE,
                           rng.choice(len(vocab.utm_p), size=n_sess, p=vocab.utm_p), -1)
    profile = rng.choice(len(vocab.profile_p), size=n_vis, p=vocab.profile_p)
    place = rng.choice(len(vocab.place_p), size=n_vis, p=vocab.place_p)
    kind = rng.choice(len(vocab.custom_p), size=n, p=vocab.custom_p)

    # -- sort everything by timestamp --------------------------------------------------------------
    order = np.argsort(tod, kind="stable")
    tod, vis_of_ev, sess_of_ev, pos = tod[order], vis_of_ev[order], sess_of_ev[order], pos[order]
    custom, pageview, page, prev_page = custom[order], pageview[order], page[order], prev_page[order]
    internal, kind = internal[order], kind[order]
    landing = pos == 0

    host = site
    ref_idx = ref_of_sess[sess_of_ev]
    ref_valid = landing & np.array([u is not None for u in vocab.referrer_urls])[ref_idx]
    landing_ref = _take(vocab.referrer, ref_idx, ref_valid)
    internal_ref = pc.binary_join_element_wise(f"https://{host}", _take(vocab.paths, prev_page), "")
    referrer = pc.if_else(pa.array(internal), internal_ref, landing_ref)
    source = pc.if_else(pa.array(landing), _take(sources, ref_idx), pa.scalar("(direct)"))
    utm_idx = utm_of_sess[sess_of_ev]
    utm_valid = landing & (utm_idx >= 0)
    utm_idx = np.maximum(utm_idx, 0)

    vis_ids = _hex_ids(rng, n_vis)
    prev_ids = _hex_ids(rng, n_vis)
    early = tod <= WINDOW_US
    vis_prof, vis_place = profile[vis_of_ev], place[vis_of_ev]
    revenue = np.where(custom, vocab.custom_revenue[kind], np.nan)
    names = pc.if_else(pa.array(custom), _take(vocab.custom_name, kind), pa.scalar("pageview"))

    day_us = int((datetime(day.year, day.month, day.day) - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    columns = {
        "site_id": _take(pa.array([site]), np.zeros(n, dtype=np.int32)),
        "visitor_id": pc.take(vis_ids, pa.array(vis_of_ev.astype(np.int32))),
        "timestamp": pa.array(tod + day_us, pa.int64()).cast(pa.timestamp("us")),
        "event_name": names,
        "pathname": _take(vocab.paths, page),
        "hostname": _take(pa.array([host]), np.zeros(n, dtype=np.int32)),
        "referrer": referrer,
        "referrer_source": source,
        "utm_source": _take(vocab.utm[0], utm_idx, utm_valid),
        "utm_medium": _take(vocab.utm[1], utm_idx, utm_valid),
        "utm_campaign": _take(vocab.utm[2], utm_idx, utm_valid),
        "utm_content": _take(vocab.utm[3], utm_idx, utm_valid),
        "utm_term": _take(vocab.utm[4], utm_idx, utm_valid),
        "browser": _take(vocab.browser, vis_prof),
        "browser_version": _take(vocab.browser_version, vis_prof),
        "os": _take(vocab.os, vis_prof),
        "os_version": _take(vocab.os_version, vis_prof),
        "device_type": _take(vocab.device, vis_prof),
        "screen_size": _take(vocab.screen, vis_prof),
        "country_code": _take(vocab.country, vis_place),
        "region": _take(vocab.region, vis_place),
        "city": _take(vocab.city, vis_place),
        "props": _take(vocab.custom_props, kind, custom),
        "revenue_amount": pa.array(revenue, mask=np.isnan(revenue)).cast(pa.decimal128(12, 2)),
        "revenue_currency": _take(vocab.custom_currency, kind, custom),
        "user_id": pa.nulls(n, pa.string()),
        "visitor_id_prev": _take(prev_ids, vis_of_ev, early),
        "click_id": pa.nulls(n, pa.string()),
        # no engagement events, and every custom event interactive: the tracker stores NULLs then
        "scroll_depth": pa.nulls(n, pa.int16()),
        "engagement_ms": pa.nulls(n, pa.int64()),
        "interactive": pa.nulls(n, pa.bool_()),
    }
    # as the tracker stores it (cached per distinct combination: few)
    tags = [columns[c].to_pylist() for c in ("referrer_source", "utm_medium", "utm_campaign", "utm_source")]
    columns["channel"] = pa.array([channel(*t, None) for t in zip(*tags, strict=True)], pa.string())
    table = pa.Table.from_arrays([columns[f.name].cast(f.type) for f in SCHEMA], schema=SCHEMA)

    # totals a query engine must reproduce
    pv_per_sess = np.bincount(sess_of_ev[pageview], minlength=n_sess)
    totals = {"events": n, "pageviews": int(pageview.sum()), "visitors": n_vis, "sessions": n_sess,
              "bounces": int((pv_per_sess == 1).sum())}
    return table, totals


def _segment_name(ts_us: int, seq: int) -> str:
    return f"{ts_us:016d}-benchgen-0-{seq}-{seq * 7919 % 0xFFFFFF:06x}.parquet"


def _write(table: pa.Table, directory: Path, pieces: int, seq: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    n = table.num_rows
    bounds = np.linspace(0, n, pieces + 1).astype(int)
    written = 0
    for i in range(pieces):
        part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
        if part.num_rows == 0:
            continue
        last_ts = part.column("timestamp")[-1].value
        pq.write_table(part, directory / _segment_name(last_ts, seq + i), compression="zstd",
                       row_group_size=ROW_GROUP_SIZE)
        written += 1
    return written


def daily_counts(rng: np.random.Generator, events: int, days: int, sites: int,
                 end: date) -> np.ndarray:
    """Events per (site, day): 2/3 to the dominant site, weekly rhythm, growth, noise; exact total."""
    day_list = [end - timedelta(days=days - 1 - i) for i in range(days)]
    weekday = np.array([0.7 if d.weekday() >= 5 else 1.0 for d in day_list])
    trend = 1.0 + 0.005 * np.arange(days)
    noise = rng.lognormal(0.0, 0.06, size=(sites, days))
    w = np.outer(traffic.site_weights(sites), weekday * trend) * noise
    return rng.multinomial(events, (w / w.sum()).ravel()).reshape(sites, days)


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "events": args.events, "days": args.days,
            "sites": args.sites, "seed": args.seed, "end_date": args.end_date,
            "tail_files": args.tail_files}


def cached(out: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of ``out`` when it was generated with ``params``, else None."""
    try:
        manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("params") == params else None


def generate(out: Path, *, events: int, days: int = 30, sites: int = 3, seed: int = 42,
             end_date: str = "2025-06-30", tail_files: int = 4, force: bool = False,
             quiet: bool = False) -> dict[str, Any]:
    """Generate the lake (or reuse it); return the manifest."""
    args = argparse.Namespace(events=events, days=days, sites=sites, seed=seed, end_date=end_date,
                              tail_files=tail_files)
    params = params_of(args)
    if not force and (manifest := cached(out, params)) is not None:
        if not quiet:
            print(f"{out}: up to date ({events:,} events), reusing it")
        return manifest
    if out.exists():
        if not (out / "manifest.json").exists() and any(out.iterdir()) and not force:
            raise SystemExit(f"{out} exists, is not empty and has no manifest.json; use --force.")
        shutil.rmtree(out)
    if not 1 <= sites <= len(traffic.SITE_IDS):
        raise SystemExit(f"--sites must be 1..{len(traffic.SITE_IDS)}")
    t0 = time.perf_counter()
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    end = date.fromisoformat(end_date)
    root = np.random.SeedSequence(seed)
    counts = daily_counts(np.random.default_rng(root.spawn(1)[0]), events, days, sites, end)
    vocab = Vocabulary()
    site_totals: dict[str, dict[str, int]] = {}
    files = 0
    seq = 0
    for s in range(sites):
        site = traffic.SITE_IDS[s]
        site_rng = np.random.default_rng([seed, s, 1_000_003])
        # each site has its own popularity order of pages; "/", "/pricing", "/blog"… stay on top
        top = 8
        path_perm = np.concatenate([np.arange(top),
                                    top + site_rng.permutation(len(vocab.paths_list) - top)])
        sources = vocab.sources(site)
        totals = {"events": 0, "pageviews": 0, "visitors": 0, "sessions": 0, "bounces": 0}
        for d in range(days):
            n = int(counts[s, d])
            if n == 0:
                continue
            day = end - timedelta(days=days - 1 - d)
            rng = np.random.default_rng([seed, s, d])
            table, t = partition_table(vocab, rng, site, day, n, path_perm, sources)
            for key in totals:
                totals[key] += t[key]
            directory = tmp / "events" / site_dir_name(site) / f"date={day.isoformat()}"
            pieces = tail_files if d == days - 1 else 1
            files += _write(table, directory, pieces, seq)
            seq += pieces
        site_totals[site] = totals
        if not quiet:
            print(f"  {site}: {totals['events']:,} events, {totals['visitors']:,} visitor-days, "
                  f"{totals['sessions']:,} sessions ({time.perf_counter() - t0:.1f} s)", flush=True)
    start = end - timedelta(days=days - 1)
    manifest = {
        "params": params,
        "start_date": start.isoformat(), "end_date": end.isoformat(),
        "dominant_site": traffic.SITE_IDS[0],
        "sites": site_totals, "files": files,
        "seconds": round(time.perf_counter() - t0, 2),
        "generated_at": datetime.now().isoformat(timespec="seconds"),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, out)
    if not quiet:
        size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
        print(f"{out}: {events:,} events in {files} files, {size / 1e6:.1f} MB, "
              f"generated in {manifest['seconds']} s")
    return manifest


def parse_count(text: str) -> int:
    """``2000000``, ``2m``, ``500k`` → int."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=parse_count, default=2_000_000, help="total events (2m, 500k, …)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sites", type=int, default=3, help="sites; the first gets 2/3 of the events")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end-date", default="2025-06-30", help="last day (UTC), YYYY-MM-DD")
    ap.add_argument("--tail-files", type=int, default=4,
                    help="files in each partition of the last day (not yet compacted)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/.data/2m"))
    ap.add_argument("--force", action="store_true", help="regenerate even if the manifest matches")
    args = ap.parse_args(argv)
    generate(args.out, events=args.events, days=args.days, sites=args.sites, seed=args.seed,
             end_date=args.end_date, tail_files=args.tail_files, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
