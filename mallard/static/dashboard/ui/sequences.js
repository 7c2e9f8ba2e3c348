// The Sequences panel: the visitors who did every step in order, with no time limit (api/stats/sequences).
import { html, useState, useEffect, useRef } from './html.js';
import { useLazyApi } from './api.js';
import { num, pct } from './format.js';
import { Bar, Panel } from './widgets.js';
import { StepsEditor, DEFAULT_STEPS, stepLabel } from './steps.js';

export function Sequences({ params, ready, steps }) {
  // Starts from the funnel's steps (at least two); its own edits stay in the panel.
  const start = (steps || DEFAULT_STEPS).split(',').length >= 2 ? steps || DEFAULT_STEPS : DEFAULT_STEPS;
  const [q, setQ] = useState(start);
  useEffect(() => setQ(start), [start]);
  const box = useRef(null);
  const s = useLazyApi(box, ready, 'api/stats/sequences', { ...params, steps: q });
  const top = html`<${StepsEditor} name="sequence" value=${q} params=${params} onRun=${setQ} min=${2} />`;
  const body = (d) => html`<div class="seq">
    <p class="seq-path">${(Array.isArray(d.steps) ? d.steps : []).map((l, i) => html`${i > 0 && html`<span class="seq-arrow" aria-hidden="true"> → </span>`}<code>${stepLabel(l)}</code>`)}</p>
    <div class="seq-figures">
      <p><b class="seq-converting">${num(d.converting_visitors)}</b> of <span class="seq-total">${num(d.total_visitors)}</span> visitors did every step in order
        (<span class="seq-rate">${pct(d.conversion_rate)}</span>).</p>
      <div class="track"><${Bar} frac=${d.conversion_rate} /></div>
      <p class="small muted">Of the <span class="seq-step1">${num(d.step1_visitors)}</span> who did the first step,
        <span class="seq-step1-rate">${pct(d.step1_conversion_rate)}</span> went on to do them all.</p>
    </div>
  </div>`;
  return html`<${Panel} title="Sequences" state=${s} quiet top=${top} body=${body} boxRef=${box} />`;
}
