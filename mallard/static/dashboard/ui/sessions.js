// The Sessions panel (from the view answer).
import { html } from './html.js';
import { partOf } from './api.js';
import { num, dur, dec, pct } from './format.js';
import { Panel } from './widgets.js';

export function Sessions({ view }) {
  const s = partOf(view, (d) => d.sessions);
  return html`<${Panel} title="Sessions" state=${s} quiet body=${(d) => html`<dl class="stats">
    <div><dt>Sessions</dt><dd>${num(d.total_sessions)}</dd></div>
    <div><dt>Avg. duration</dt><dd>${dur(d.avg_session_duration_secs)}</dd></div>
    <div><dt>Pages / session</dt><dd>${dec(d.avg_pages_per_session)}</dd></div>
    <div><dt>Bounce rate</dt><dd>${pct(d.bounce_rate)}</dd></div>
  </dl>`} />`;
}
