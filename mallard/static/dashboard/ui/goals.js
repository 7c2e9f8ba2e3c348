// Goal conversions (Plausible's v2 `event:goal` breakdown): per goal the unique and total conversions,
// the conversion rate, and revenue (total and average) in the goal's own currency; amounts in
// different currencies are never added up. Shown when a goal converted in the range.
import { html, useRef } from './html.js';
import { useShown, useSeededApi, requestKey, seeded } from './api.js';
import { num, isNum } from './format.js';
import { Bar, Panel } from './widgets.js';

export const GOAL_METRICS = ['visitors', 'events', 'conversion_rate', 'total_revenue', 'average_revenue'];
// A v2 revenue value ({value, currency, short, long}) as text; null (no revenue) as a dash.
export const money = (r) => (r && typeof r === 'object' ? String(r.short ?? `${r.value} ${r.currency}`) : '—');
// The total, and under it the average per conversion with revenue (one currency each, as v2 answers).
const Money = ({ r, avg }) => (r && typeof r === 'object' ? html`<span class="money" title=${String(r.long ?? '')}>${money(r)}
  <small class="muted">avg ${money(avg)}</small></span>` : '—');

// `early`: the answer the page's first view carried (api/stats/view's `goals`), for its range.
export function Goals({ range, site, filters, ready, early }) {
  const box = useRef(null);
  const shown = useShown(box, ready, !!early);
  const body = range ? {
    site_id: site, metrics: GOAL_METRICS, dimensions: ['event:goal'],
    date_range: [range.start_date, range.end_date], filters: filters || undefined, timezone: range.timezone,
  } : undefined;
  const seed = seeded(requestKey('api/v2/query', null, body), early);
  const q = useSeededApi(seed, range ? 'api/v2/query' : null, null, { body, off: !shown });
  const rows = q.data && Array.isArray(q.data.results) ? q.data.results : null;
  if (rows && !rows.length && !q.loading) return html`<span ref=${box} hidden></span>`;
  const state = { loading: q.loading, error: q.error, data: rows };
  // A goal whose revenue came in several currencies has none shown (never converted, never added up).
  const warned = q.data && q.data.meta && q.data.meta.metric_warnings && q.data.meta.metric_warnings.total_revenue;
  const note = warned && html`<p class="caveat revenue-note">— in Revenue: ${String(warned.warning || 'amounts in several currencies')}</p>`;
  const table = (list) => {
    const revenue = list.some((r) => r.metrics[3] != null);
    const max = Math.max(1, ...list.map((r) => r.metrics[0] || 0));
    return html`<table class="bars goals">
      <thead><tr><th>Goal</th><th class="n">Uniques</th><th class="n">Total</th><th class="n">CR</th>
        ${revenue && html`<th class="n">Revenue</th>`}</tr></thead>
      <tbody>${list.map((r) => html`<tr key=${String(r.dimensions[0])}>
        <td class="label"><${Bar} frac=${(r.metrics[0] || 0) / max} /><span class="row-text">${String(r.dimensions[0])}</span></td>
        <td class="n">${num(r.metrics[0])}</td><td class="n">${num(r.metrics[1])}</td>
        <td class="n">${isNum(r.metrics[2]) ? `${r.metrics[2].toFixed(1)}%` : '—'}</td>
        ${revenue && html`<td class="n"><${Money} r=${r.metrics[3]} avg=${r.metrics[4]} /></td>`}
      </tr>`)}</tbody>
    </table>`;
  };
  return html`<${Panel} title="Goal conversions" state=${state} body=${(list) => html`${table(list)}${note}`}
    boxRef=${box} />`;
}
