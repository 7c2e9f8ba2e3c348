// Realtime: the "N current visitors" figure of the header, and the realtime view it opens (visitors of
// the last 5 minutes, the pages they are on and where they came from), refreshed while shown.
import { html } from './html.js';
import { useApi, useEvery } from './api.js';
import { num } from './format.js';
import { Bar, Panel } from './widgets.js';

const FIGURE_MS = 30000;
const VIEW_MS = 10000;

// The realtime answer for `site`, asked again every 10 s while the realtime view is open (it feeds the
// header figure too); while it is closed, only the number of current visitors, every 30 s (Plausible's
// v1 realtime route: one query, where the pages and sources are three and contend with the view).
export function useRealtime(site, open) {
  const again = useEvery(open ? VIEW_MS : FIGURE_MS, !!site);
  const path = site ? (open ? 'api/stats/realtime' : 'api/v1/stats/realtime/visitors') : null;
  const s = useApi(path, open ? { site_id: site, limit: 10 } : { site_id: site }, { again });
  // The last answer stays while the next loads: a number (the count) is the header's, shown as one;
  // the realtime view waits for its own answer.
  if (typeof s.data !== 'number') return s;
  return open ? { loading: true, data: null, error: null } : { ...s, data: { visitors: s.data } };
}

export function CurrentVisitors({ live, onOpen }) {
  if (!live.data || typeof live.data.visitors !== 'number') return null;
  const n = live.data.visitors;
  return html`<button type="button" class="ghost live" onClick=${onOpen} aria-keyshortcuts="r"
    title="Visitors in the last 5 minutes: open the realtime view (R)">
    <i class="dot" aria-hidden="true"></i><span class="live-n">${num(n)}</span> current visitor${n === 1 ? '' : 's'}
  </button>`;
}

function Rows({ head, rows }) {
  if (!Array.isArray(rows) || !rows.length) return html`<p class="muted">Nobody right now.</p>`;
  const max = Math.max(1, ...rows.map((r) => r.visitors || 0));
  return html`<table class="bars">
    <thead><tr><th>${head}</th><th class="n">Visitors</th></tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${String(r.value)}>
      <td class="label"><${Bar} frac=${(r.visitors || 0) / max} /><span class="row-text">${String(r.value)}</span></td>
      <td class="n">${num(r.visitors)}</td></tr>`)}</tbody>
  </table>`;
}

// `tz`: the time zone of the site's stats (from the last view answer), else UTC.
export function RealtimeView({ live, tz }) {
  const zone = tz || 'UTC';
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString(undefined, { timeZone: zone }) : '');
  return html`<section class="realtime" aria-label="Realtime">
    <${Panel} title="Realtime" wide state=${live} body=${(d) => html`<div class="rt-head">
      <p class="rt-figure"><span class="rt-n">${num(d.visitors)}</span> visitor${d.visitors === 1 ? '' : 's'} in the last ${d.minutes || 5} minutes</p>
      <p class="small muted">Refreshed every ${VIEW_MS / 1000} s · last at ${time(d.to)} (${zone})</p>
      ${d.warning && html`<p class="caveat">${String(d.warning)}</p>`}</div>`} />
    <div class="grid">
      <${Panel} title="Current pages" state=${live} body=${(d) => html`<${Rows} head="Page" rows=${d.pages} />`} />
      <${Panel} title="Sources" state=${live} body=${(d) => html`<${Rows} head="Source" rows=${d.sources} />`} />
    </div>
  </section>`;
}
