-- golden SQL of tests/queries/test_golden_sql.py, case 'goal_event_filter'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": [], "filters": [["and", [["is", "event:name", ["signup"]], ["is", "visit:country", ["DE"]]]]], "metrics": ["visitors", "conversion_rate", "visits"], "order_by": [["visitors", "desc"]], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS (SELECT "country_code", "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
session_rows AS (SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (SELECT * FROM session_lake)),
flagged AS (SELECT s.vid0, s.start_time, coalesce(bool_or(coalesce((event_name IN (?)), false)), false) AS f_0 FROM (SELECT visitor_keys[1] AS vid0, unnest(visitor_keys) AS vid, start_time, end_time FROM session_rows WHERE start_time >= ? AND start_time < ?) s JOIN scoped e ON coalesce(CASE WHEN length(e.visitor_id) = 64 THEN TRY_CAST('0x' || left(e.visitor_id, 16) AS UBIGINT) END, md5_number_lower(e.visitor_id)) = s.vid AND e.timestamp BETWEEN s.start_time AND s.end_time GROUP BY s.vid0, s.start_time),
sessions AS (SELECT start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, revenue, visitor_keys, country_code AS s_country_code, coalesce(f.f_0, false) AS f_0 FROM (SELECT *, visitor_keys[1] AS vid0 FROM session_rows WHERE start_time >= ? AND start_time < ?) LEFT JOIN flagged f USING (vid0, start_time)),
ev AS (SELECT count(DISTINCT visitor_id) AS m_visitors, count(DISTINCT visitor_id) AS m_conversion_rate FROM scoped WHERE (coalesce((event_name IN (?)), false) AND coalesce((country_code IN (?)), false))),
total AS (SELECT count(DISTINCT visitor_id) AS n FROM scoped WHERE coalesce((country_code IN (?)), false)),
se AS (SELECT count(*) AS m_visits FROM sessions WHERE (f_0 AND coalesce((s_country_code IN (?)), false)))
SELECT coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_conversion_rate / nullif(total.n, 0), 0) AS m_conversion_rate, coalesce(se.m_visits, 0) AS m_visits, count(*) OVER () AS total_rows FROM ev FULL OUTER JOIN se ON true CROSS JOIN total ORDER BY m_visitors DESC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'signup'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'signup'
--   'DE'
--   'DE'
--   'DE'
