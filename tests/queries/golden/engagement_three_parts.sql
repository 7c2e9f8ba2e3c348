-- golden SQL of tests/queries/test_golden_sql.py, case 'engagement_three_parts'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": [], "filters": [["is", "event:page", ["/blog"]]], "metrics": ["visitors", "visits", "scroll_depth"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
flagged AS (SELECT s.vid0, s.start_time, coalesce(bool_or(coalesce((pathname IN (?)), false)), false) AS f_0 FROM (SELECT visitor_keys[1] AS vid0, unnest(visitor_keys) AS vid, start_time, end_time FROM session_rows WHERE start_time >= ? AND start_time < ?) s JOIN scoped e ON coalesce(CASE WHEN length(e.visitor_id) = 64 THEN TRY_CAST('0x' || left(e.visitor_id, 16) AS UBIGINT) END, md5_number_lower(e.visitor_id)) = s.vid AND e.timestamp BETWEEN s.start_time AND s.end_time GROUP BY s.vid0, s.start_time),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys, coalesce(f.f_0, false) AS f_0 FROM (SELECT *, visitor_keys[1] AS vid0 FROM session_rows WHERE start_time >= ? AND start_time < ?) LEFT JOIN flagged f USING (vid0, start_time)),
en_rows AS (SELECT * EXCLUDE (new_visit), sum(new_visit) OVER (PARTITION BY visitor_id ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit FROM (SELECT *, CASE WHEN epoch_us(timestamp) - lag(epoch_us(timestamp)) OVER (PARTITION BY visitor_id ORDER BY timestamp) <= 1800000000 THEN 0 ELSE 1 END AS new_visit FROM (SELECT * FROM (SELECT * FROM lake WHERE event_name = 'engagement') WHERE site_id = ? AND timestamp >= ? AND timestamp < ?))),
ev AS (SELECT count(DISTINCT visitor_id) AS m_visitors FROM scoped WHERE coalesce((pathname IN (?)), false)),
se AS (SELECT count(*) AS m_visits FROM sessions WHERE f_0),
en AS (SELECT round_even(avg(sd), 0)::INTEGER AS m_scroll_depth FROM (SELECT visitor_id, visit, max(scroll_depth) AS sd, sum(engagement_ms) AS ms FROM en_rows WHERE coalesce((pathname IN (?)), false) GROUP BY ALL))
SELECT coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(se.m_visits, 0) AS m_visits, en.m_scroll_depth AS m_scroll_depth, count(*) OVER () AS total_rows FROM ev FULL OUTER JOIN se ON true FULL OUTER JOIN en ON true
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   '/blog'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   '/blog'
--   '/blog'
