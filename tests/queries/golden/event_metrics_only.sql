-- golden SQL of tests/queries/test_golden_sql.py, case 'event_metrics_only'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["event:page"], "filters": [], "metrics": ["visitors", "pageviews"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
rollups AS (SELECT * FROM rollup_lake),
ev AS (SELECT value AS d0, sum(visitors)::BIGINT AS m_visitors, sum(pageviews)::BIGINT AS m_pageviews FROM rollups WHERE dimension = ? AND day >= ? AND day <= ? GROUP BY ALL)
SELECT coalesce(ev.d0, '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, coalesce(ev.m_pageviews, 0) AS m_pageviews, count(*) OVER () AS total_rows FROM ev ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'event:page'
--   datetime.date(2024, 5, 1)
--   datetime.date(2024, 5, 2)
