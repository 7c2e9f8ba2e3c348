-- golden SQL of tests/queries/test_golden_sql.py, case 'props_dimension'
-- query: {"date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["event:props:plan"], "filters": [], "metrics": ["events"], "order_by": [], "pagination": {"limit": 10, "offset": 20}, "site_id": "example.com", "timezone": "UTC"}
WITH events AS NOT MATERIALIZED (SELECT * FROM lake),
scoped AS NOT MATERIALIZED (SELECT "event_name", "pathname", "props", "timestamp", "visitor_id" FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ?),
ev AS (SELECT json_extract_string(props, ?) AS d0, count(*) AS m_events FROM scoped GROUP BY ALL)
SELECT coalesce(ev.d0, '(unknown)') AS d0, coalesce(ev.m_events, 0) AS m_events, count(*) OVER () AS total_rows FROM ev ORDER BY m_events DESC, d0 ASC LIMIT ? OFFSET ?
-- params:
--   'example.com'
--   datetime.datetime(2024, 5, 1, 0, 0)
--   datetime.datetime(2024, 5, 3, 0, 0)
--   '$."plan"'
--   10
--   20
