// Page state (site, period, range, filters, segment, chart metric, interval, comparison, funnel steps
// and window) held in the query string, and the stats parameters it gives.
import { parseFilters, filterString, filterParam } from './filters.js';

// [period, label, keyboard shortcut] (the keys are Plausible's; 'realtime' is the realtime view).
export const PERIODS = [
  ['day', 'Today', 'd'], ['realtime', 'Realtime', 'r'], ['7d', 'Last 7 days', 'w'],
  ['30d', 'Last 30 days', 't'], ['90d', 'Last 90 days', 'n'], ['12mo', 'Last 12 months', 'l'],
  ['month', 'This month', 'm'], ['year', 'This year', 'y'], ['all', 'All time', 'a'],
  ['custom', 'Custom range…', 'c'],
];
// The chart's metrics (the v2 API's names); the first is the default.
export const CHART_METRICS = ['visitors', 'pageviews', 'visits', 'bounce_rate', 'visit_duration',
  'views_per_visit'];
export const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
// The filters' own form and meaning: filters.js.
export { parseFilters, filterString } from './filters.js';

export function readUrl() {
  const q = new URLSearchParams(window.location.search);
  let period = q.get('period') || '30d';
  if (!PERIODS.some(([p]) => p === period)) period = '30d';
  const from = q.get('from') || '';
  const to = q.get('to') || '';
  if (period === 'custom' && !(DATE_RE.test(from) && DATE_RE.test(to) && from <= to)) period = '30d';
  const metric = q.get('metric');
  return {
    site: q.get('site') || '', period, auth: q.get('auth') || '', view: q.get('view') === 'settings' ? 'settings' : '',
    from: period === 'custom' ? from : '', to: period === 'custom' ? to : '',
    filters: parseFilters(q.get('filters') || ''),
    segment: /^\d{1,18}$/.test(q.get('segment') || '') ? q.get('segment') : '',
    metric: CHART_METRICS.includes(metric) ? metric : CHART_METRICS[0],
    interval: q.get('interval') || '', comparison: q.get('comparison') || '', // checked by interval.js, compare.js
    steps: q.get('steps') || '', window: q.get('window') || '',
  };
}

export function urlSearch(st) {
  const q = new URLSearchParams();
  if (st.site) q.set('site', st.site);
  if (st.auth) q.set('auth', st.auth); // a shared link's secret stays, so a reload still works
  if (st.view) q.set('view', st.view);
  q.set('period', st.period);
  if (st.period === 'custom') { q.set('from', st.from); q.set('to', st.to); }
  if (st.filters.length) q.set('filters', filterString(st.filters));
  if (st.segment) q.set('segment', st.segment);
  if (st.metric && st.metric !== CHART_METRICS[0]) q.set('metric', st.metric);
  if (st.interval) q.set('interval', st.interval);
  if (st.comparison && st.comparison !== 'previous_period') q.set('comparison', st.comparison);
  for (const k of ['steps', 'window']) if (st[k]) q.set(k, st[k]);
  return `?${q}`;
}

export const statParams = (st) => ({
  site_id: st.site,
  ...(st.period === 'custom' ? { start_date: st.from, end_date: st.to } : { period: st.period }),
  filters: filterParam(st),
});
