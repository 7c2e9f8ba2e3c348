-- golden SQL of tests/queries/test_golden_sql.py, case 'rollup_series_and_sessions'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["time:day"], "filters": [], "metrics": ["visitors", "pageviews", "visits"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys FROM session_rows WHERE start_time >= ? AND start_time < ?),
rollups AS (SELECT * FROM rollup_lake),
ev AS (SELECT date_trunc('day', day::TIMESTAMP) AS d0, sum(visitors)::BIGINT AS m_visitors, sum(pageviews)::BIGINT AS m_pageviews FROM rollups WHERE dimension = ? AND day >= ? AND day <= ? GROUP BY ALL),
se AS (SELECT date_trunc('day', start) AS d0, count(*) AS m_visits FROM sessions GROUP BY ALL)
SELECT strftime(coalesce(ev.d0, se.d0), '%Y-%m-%d') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_pageviews, 0) AS m_pageviews, coalesce(se.m_visits, 0) AS m_visits, count(*) OVER () AS total_rows FROM ev FULL OUTER JOIN se ON ev.d0 IS NOT DISTINCT FROM se.d0 ORDER BY d0 ASC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   ''
--   datetime.date(2024, 5, 1)
--   datetime.date(2024, 5, 2)
