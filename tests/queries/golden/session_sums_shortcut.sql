-- golden SQL of tests/queries/test_golden_sql.py, case 'session_sums_shortcut'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["visit:entry_page"], "filters": [], "metrics": ["visitors", "pageviews"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys, entry_page FROM session_rows WHERE start_time >= ? AND start_time < ?),
ev AS (SELECT entry_page AS d0, count(DISTINCT vid) AS m_visitors, coalesce(sum(pageviews) FILTER (WHERE nth = 1), 0)::BIGINT AS m_pageviews FROM (SELECT *, unnest(visitor_keys) AS vid, generate_subscripts(visitor_keys, 1) AS nth FROM sessions) GROUP BY ALL)
SELECT coalesce(ev.d0, '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_pageviews, 0) AS m_pageviews, count(*) OVER () AS total_rows FROM ev ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
