-- golden SQL of tests/queries/test_golden_sql.py, case 'time_bucket_zero_fill'
-- query: {"date_range": ["2024-05-01", "2024-05-07"], "dimensions": ["time:day"], "filters": [], "metrics": ["visitors", "visits"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "Europe/Berlin"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys FROM session_rows WHERE start_time >= ? AND start_time < ?),
ev AS (SELECT date_trunc('day', timezone(?, timezone('UTC', timestamp))) AS d0, count(DISTINCT visitor_id) AS m_visitors FROM scoped GROUP BY ALL),
se AS (SELECT date_trunc('day', timezone(?, timezone('UTC', start))) AS d0, count(*) AS m_visits FROM sessions GROUP BY ALL)
SELECT strftime(coalesce(ev.d0, se.d0), '%Y-%m-%d') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(se.m_visits, 0) AS m_visits, count(*) OVER () AS total_rows FROM ev FULL OUTER JOIN se ON ev.d0 IS NOT DISTINCT FROM se.d0 ORDER BY d0 ASC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 4, 30, 22, 0)
--   datetime.datetime(2024, 5, 7, 22, 0)
--   datetime.datetime(2024, 4, 30, 22, 0)
--   datetime.datetime(2024, 5, 7, 22, 0)
--   'Europe/Berlin'
--   'Europe/Berlin'
