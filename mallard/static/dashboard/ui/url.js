// Page state (site, period, range, filters, chart metric) held in the query string, and the stats
// parameters it gives.

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
export const FILTER_RE = /^([a-z][a-z-]*)(==|!=)(.+)$/;

export const parseFilters = (s) => s.split(';').map((x) => FILTER_RE.exec(x.trim())).filter(Boolean)
  .map((m) => ({ dim: m[1], op: m[2], value: m[3] }));
export const filterString = (fs) => fs.map((f) => f.dim + f.op + f.value).join(';');

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
    metric: CHART_METRICS.includes(metric) ? metric : CHART_METRICS[0],
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
  if (st.metric && st.metric !== CHART_METRICS[0]) q.set('metric', st.metric);
  return `?${q}`;
}

export const statParams = (st) => ({
  site_id: st.site,
  ...(st.period === 'custom' ? { start_date: st.from, end_date: st.to } : { period: st.period }),
  filters: filterString(st.filters) || undefined,
});
