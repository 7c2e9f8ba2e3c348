-- golden SQL of tests/queries/test_golden_sql.py, case 'visit_dimension'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["visit:source"], "filters": [], "metrics": ["visitors", "visits", "bounce_rate"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS (SELECT "event_name", "pathname", "referrer_source", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys, referrer_source AS s_referrer_source FROM session_rows WHERE start_time >= ? AND start_time < ?),
visits AS (SELECT * FROM visit_lake),
ev AS (SELECT value AS d0, (sum(visitors) - coalesce(sum(carried) FILTER (WHERE day > ?), 0))::BIGINT AS m_visitors FROM visits WHERE dimension = ? AND day >= ? AND day < ? GROUP BY ALL),
se AS (SELECT s_referrer_source AS d0, count(*) AS m_visits, coalesce(avg((pageviews = 1)::INTEGER), 0) AS m_bounce_rate FROM sessions GROUP BY ALL)
SELECT coalesce(coalesce(ev.d0, se.d0), '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(se.m_visits, 0) AS m_visits, coalesce(se.m_bounce_rate, 0.0) AS m_bounce_rate, count(*) OVER () AS total_rows FROM ev FULL OUTER JOIN se ON ev.d0 IS NOT DISTINCT FROM se.d0 ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.date(2024, 5, 1)
--   'visit:source'
--   datetime.date(2024, 5, 1)
--   datetime.date(2024, 5, 3)
