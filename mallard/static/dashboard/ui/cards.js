// The summary cards: each figure, its change against the previous period, and a click that puts it on
// the chart.
import { html } from './html.js';
import { partOf } from './api.js';
import { isNum, num, pct, dur, dec, changeText } from './format.js';

// key: the field of api/stats/main; metric: the v2 name the chart asks for; fmt: the card's value;
// chartFmt: a value of the chart (v2 units: the bounce rate in percent); count: whole numbers only.
export const METRICS = [
  { key: 'unique_visitors', metric: 'visitors', label: 'Unique visitors', fmt: num, chartFmt: num, count: true },
  { key: 'total_pageviews', metric: 'pageviews', label: 'Pageviews', fmt: num, chartFmt: num, count: true },
  { key: 'total_sessions', metric: 'visits', label: 'Visits', fmt: num, chartFmt: num, count: true },
  { key: 'bounce_rate', metric: 'bounce_rate', label: 'Bounce rate', fmt: pct, chartFmt: (v) => `${dec(v, 0)}%`, lowerIsBetter: true },
  { key: 'avg_visit_duration_secs', metric: 'visit_duration', label: 'Visit duration', fmt: dur, chartFmt: dur },
  { key: 'views_per_visit', metric: 'views_per_visit', label: 'Views per visit', fmt: (v) => dec(v, 2), chartFmt: (v) => dec(v, 1) },
];
export const metricOf = (name) => METRICS.find((m) => m.metric === name) || METRICS[0];

function Change({ m, cmp }) {
  if (!cmp || !cmp.change) return null;
  const c = cmp.change[m.key];
  const dir = isNum(c) && c !== 0 ? (c > 0 ? 'up' : 'down') : 'flat';
  const good = dir === 'flat' ? '' : ((dir === 'up') !== !!m.lowerIsBetter ? ' good' : ' bad');
  return html`<span class=${`card-change ${dir}${good}`}
    title=${`${cmp.start_date} – ${cmp.end_date}: ${m.fmt(cmp[m.key])}`}>${changeText(c, m.key === 'bounce_rate')}</span>`;
}

export function Cards({ view, metric, setMetric }) {
  const s = partOf(view, (d) => d.main);
  if (s.error) return html`<section class="panel wide"><p class="error" role="alert">${s.error.message}</p></section>`;
  const d = s.data ? { ...s.data, views_per_visit: s.data.views_per_visit ?? s.data.pages_per_visit } : null;
  const cmp = d && d.comparison;
  return html`<section class=${`cards${s.loading ? ' is-loading' : ''}`} aria-label="Summary">
    ${METRICS.map((m) => html`<button type="button" class=${`card${m.metric === metric ? ' on' : ''}`}
      aria-pressed=${m.metric === metric ? 'true' : 'false'} data-metric=${m.metric}
      title=${`Show ${m.label.toLowerCase()} on the chart`} onClick=${() => setMetric(m.metric)}>
      <span class="card-label">${m.label}</span>
      <span class="card-value">${d ? m.fmt(d[m.key]) : '…'}</span>
      <${Change} m=${m} cmp=${cmp} />
    </button>`)}
    ${cmp && html`<p class="cards-note small muted">Changes against ${cmp.start_date} – ${cmp.end_date}.</p>`}
  </section>`;
}
