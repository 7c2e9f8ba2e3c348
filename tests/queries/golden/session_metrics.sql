-- golden SQL of tests/queries/test_golden_sql.py, case 'session_metrics'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": [], "filters": [], "metrics": ["visits", "bounce_rate", "visit_duration", "views_per_visit"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys FROM session_rows WHERE start_time >= ? AND start_time < ?),
se AS (SELECT count(*) AS m_visits, coalesce(avg((pageviews = 1)::INTEGER), 0) AS m_bounce_rate, coalesce(avg(duration_s), 0) AS m_visit_duration, coalesce(avg(pageviews), 0) AS m_views_per_visit FROM sessions)
SELECT coalesce(se.m_visits, 0) AS m_visits, coalesce(se.m_bounce_rate, 0.0) AS m_bounce_rate, coalesce(se.m_visit_duration, 0.0) AS m_visit_duration, coalesce(se.m_views_per_visit, 0.0) AS m_views_per_visit, count(*) OVER () AS total_rows FROM se
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
