-- golden SQL of tests/queries/test_golden_sql.py, case 'event_metrics_filtered'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["event:page"], "filters": [["is", "visit:country", ["DE"]]], "metrics": ["visitors", "pageviews"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "country_code", "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
ev AS (SELECT pathname AS d0, count(DISTINCT visitor_id) AS m_visitors, count(*) FILTER (WHERE event_name = 'pageview') AS m_pageviews FROM scoped WHERE coalesce((country_code IN (?)), false) GROUP BY ALL)
SELECT coalesce(ev.d0, '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_pageviews, 0) AS m_pageviews, count(*) OVER () AS total_rows FROM ev ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'DE'
