// The summary cards.
import { html } from './html.js';
import { partOf } from './api.js';
import { num, pct, dur, dec } from './format.js';

export const CARDS = [
  ['unique_visitors', 'Unique visitors', num],
  ['total_pageviews', 'Pageviews', num],
  ['total_sessions', 'Visits', num],
  ['bounce_rate', 'Bounce rate', pct],
  ['avg_visit_duration_secs', 'Visit duration', dur],
  ['views_per_visit', 'Views per visit', (v) => dec(v, 2)],
];

export function Cards({ view }) {
  const s = partOf(view, (d) => d.main);
  if (s.error) return html`<section class="panel wide"><p class="error" role="alert">${s.error.message}</p></section>`;
  const d = s.data ? { ...s.data, views_per_visit: s.data.views_per_visit ?? s.data.pages_per_visit } : null;
  return html`<section class=${`cards${s.loading ? ' is-loading' : ''}`} aria-label="Summary">
    ${CARDS.map(([k, label, f]) => html`<div class="card">
      <div class="card-label">${label}</div>
      <div class="card-value" title=${d && d[k] != null ? String(d[k]) : ''}>${d ? f(d[k]) : '…'}</div>
    </div>`)}
  </section>`;
}
