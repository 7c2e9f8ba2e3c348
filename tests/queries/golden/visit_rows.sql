-- golden SQL of tests/queries/test_golden_sql.py, case 'visit_rows'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["visit:source"], "filters": [["is_not", "visit:source", ["Bing"]]], "metrics": ["visitors", "pageviews", "events"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "referrer_source", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
visits AS (SELECT * FROM visit_lake),
ev AS (SELECT value AS d0, (sum(visitors) - coalesce(sum(carried) FILTER (WHERE day > ?), 0))::BIGINT AS m_visitors, sum(pageviews)::BIGINT AS m_pageviews, sum(events)::BIGINT AS m_events FROM visits WHERE dimension = ? AND day >= ? AND day < ? AND (NOT coalesce((value IN (?)), false)) GROUP BY ALL)
SELECT coalesce(ev.d0, '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_pageviews, 0) AS m_pageviews, coalesce(ev.m_events, 0) AS m_events, count(*) OVER () AS total_rows FROM ev ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   datetime.date(2024, 5, 1)
--   'visit:source'
--   datetime.date(2024, 5, 1)
--   datetime.date(2024, 5, 3)
--   'Bing'
