-- golden SQL of tests/queries/test_golden_sql.py, case 'engagement_by_page'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["event:page"], "filters": [], "metrics": ["visitors", "scroll_depth", "time_on_page"], "order_by": [], "pagination": {"limit": null, "offset": 0}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
rollups AS (SELECT * FROM rollup_lake),
en_rows AS (SELECT * EXCLUDE (new_visit), sum(new_visit) OVER (PARTITION BY visitor_id ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit FROM (SELECT *, CASE WHEN epoch_us(timestamp) - lag(epoch_us(timestamp)) OVER (PARTITION BY visitor_id ORDER BY timestamp) <= 1800000000 THEN 0 ELSE 1 END AS new_visit FROM (SELECT * FROM (SELECT * FROM lake WHERE event_name = 'engagement') WHERE site_id = ? AND timestamp >= ? AND timestamp < ?))),
ev AS (SELECT value AS d0, sum(visitors)::BIGINT AS m_visitors FROM rollups WHERE dimension = ? AND day >= ? AND day <= ? GROUP BY ALL),
en AS (SELECT d0, round_even(avg(sd), 0)::INTEGER AS m_scroll_depth, round_even(coalesce(sum(ms), 0) / 1000.0 / nullif(count(*), 0), 0)::INTEGER AS m_time_on_page FROM (SELECT pathname AS d0, visitor_id, visit, max(scroll_depth) AS sd, sum(engagement_ms) AS ms FROM en_rows GROUP BY ALL) GROUP BY ALL)
SELECT coalesce(coalesce(ev.d0, en.d0), '(unknown)') AS d0, coalesce(ev.m_visitors, 0) AS m_visitors, en.m_scroll_depth AS m_scroll_depth, en.m_time_on_page AS m_time_on_page, count(*) OVER () AS total_rows FROM ev FULL OUTER JOIN en ON ev.d0 IS NOT DISTINCT FROM en.d0 ORDER BY m_visitors DESC, d0 ASC
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   'event:page'
--   datetime.date(2024, 5, 1)
--   datetime.date(2024, 5, 2)
