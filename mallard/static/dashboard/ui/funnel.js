// The Funnel panel: a step builder (steps and window kept in the page URL as the funnel route's own
// steps= and window=) and the funnel route's answer drawn as steps with their counts, the drop-off
// between them and the median time to convert.
import { html, useState, useEffect, useRef } from './html.js';
import { useLazyApi, useShown } from './api.js';
import { isNum, num, pct, dur } from './format.js';
import { Bar, Panel } from './widgets.js';
import { StepsEditor, DEFAULT_STEPS, DEFAULT_WINDOW } from './steps.js';
import { SavedFunnels } from './savedfunnels.js';

export { DEFAULT_STEPS, DEFAULT_WINDOW };

function Steps({ rows }) {
  if (!Array.isArray(rows) || !rows.length) return html`<p class="muted">No data.</p>`;
  const first = rows[0].visitors || 0;
  return html`<ol class="funnel">${rows.map((r, i) => {
    const rate = isNum(r.conversion_rate) ? r.conversion_rate : (first ? (r.visitors || 0) / first : 0);
    const prev = i > 0 ? rows[i - 1].visitors || 0 : 0;
    const lost = Math.max(0, prev - (r.visitors || 0));
    return html`<li key=${i} class="f-step" data-step=${i + 1}>
      ${i > 0 && html`<div class="f-drop small muted">
        <span class="f-lost">↓ ${num(lost)} dropped off (${pct(prev ? lost / prev : 0)})</span>
        ${isNum(r.median_seconds) && html`<span class="f-time">median ${dur(r.median_seconds)} to convert</span>`}
      </div>`}
      <div class="f-head"><span class="f-label">${r.label || `Step ${r.step ?? i + 1}`}</span>
        <span class="f-count"><b class="f-visitors">${num(r.visitors)}</b> · <span class="f-rate">${pct(rate)}</span></span></div>
      <div class="track"><${Bar} frac=${rate} /></div>
    </li>`;
  })}</ol>`;
}

// `admin`: the caller may save and delete saved funnels (the picker lists them for every viewer).
export function Funnel({ params, ready, steps, win, update, admin }) {
  const current = steps || DEFAULT_STEPS;
  const [draftWin, setDraftWin] = useState(win || DEFAULT_WINDOW);
  useEffect(() => setDraftWin(win || DEFAULT_WINDOW), [win]); // a saved funnel picked, the URL changed
  const box = useRef(null);
  const s = useLazyApi(box, ready, 'api/stats/funnel', { ...params, steps: current, window: win || DEFAULT_WINDOW });
  const run = (text) => update({ steps: text, window: draftWin.trim() === DEFAULT_WINDOW ? '' : draftWin.trim() });
  const shown = useShown(box, ready); // the saved funnels too are asked for once the panel is shown
  const top = html`<${SavedFunnels} on=${shown} site=${params.site_id} key=${params.site_id} steps=${current} win=${win}
    admin=${admin} update=${update} />
  <${StepsEditor} name="funnel" value=${current} params=${params} onRun=${run} min=${1}>
    <label class="f-window">Within <input class="short" aria-label="Window" value=${draftWin} placeholder=${DEFAULT_WINDOW}
      onInput=${(e) => setDraftWin(e.currentTarget.value)} /></label>
  <//>`;
  const body = (rows) => html`<${Steps} rows=${rows} />`;
  return html`<${Panel} title="Funnel" state=${s} quiet top=${top} body=${body} boxRef=${box} />`;
}
