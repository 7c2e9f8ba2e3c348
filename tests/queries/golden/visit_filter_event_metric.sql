-- golden SQL of tests/queries/test_golden_sql.py, case 'visit_filter_event_metric'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["event:page"], "filters": [["is", "visit:source", ["Google"]]], "metrics": ["visitors", "pageviews"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "referrer_source", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys, referrer_source AS s_referrer_source FROM session_rows WHERE start_time >= ? AND start_time < ?),
ev_rows AS (SELECT e.*, s.vid AS vk, s.s_referrer_source FROM scoped e JOIN (SELECT unnest(visitor_keys) AS vid, start_time, end_time, referrer_source AS s_referrer_source FROM session_rows WHERE end_time >= ? AND start_time < ?) s ON coalesce(CASE WHEN length(e.visitor_id) = 64 THEN TRY_CAST('0x' || left(e.visitor_id, 16) AS UBIGINT) END, md5_number_lower(e.visitor_id)) = s.vid AND e.timestamp BETWEEN s.start_time AND s.end_time),
ev AS (SELECT pathname AS d0, count(DISTINCT vk) AS m_visitors, count(*) FILTER (WHERE event_name = 'pageview') AS m_pageviews FROM ev_rows WHERE coalesce((s_referrer_source IN (?)), false) GROUP BY ALL)
SELECT coalesce(ev.d0, '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_pageviews, 0) AS m_pageviews, count(*) OVER () AS total_rows FROM ev ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'Google'
