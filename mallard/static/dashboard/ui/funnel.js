// The Funnel panel.
import { html, useState, useRef } from './html.js';
import { useLazyApi } from './api.js';
import { isNum, num, pct } from './format.js';
import { Bar, Panel, FormError } from './widgets.js';

export const DEFAULT_STEPS = 'page:/,page:/pricing,event:signup';

export function Funnel({ params, ready }) {
  const [steps, setSteps] = useState(DEFAULT_STEPS);
  const [win, setWin] = useState('1 day');
  const [q, setQ] = useState({ steps: DEFAULT_STEPS, window: '1 day' });
  const [err, setErr] = useState('');
  const box = useRef(null);
  const s = useLazyApi(box, ready, 'api/stats/funnel', { ...params, ...q });
  const run = (e) => {
    e.preventDefault();
    const list = steps.split(',').map((x) => x.trim()).filter(Boolean);
    if (list.length < 2) { setErr('Give at least two steps, separated by commas.'); return; }
    setErr('');
    setQ({ steps: list.join(','), window: win.trim() || '1 day' });
  };
  const top = html`<form class="inline" onSubmit=${run}>
    <label class="grow">Steps <input value=${steps} placeholder=${DEFAULT_STEPS}
      onInput=${(e) => setSteps(e.currentTarget.value)} /></label>
    <label>Window <input class="short" value=${win} placeholder="1 day"
      onInput=${(e) => setWin(e.currentTarget.value)} /></label>
    <button type="submit">Run</button>
    <${FormError} text=${err} />
    <p class="hint">Steps: <code>page:/path</code> or <code>event:name</code>. Window: e.g. <code>30 minutes</code>, <code>2 hours</code>, <code>7 days</code>.</p>
  </form>`;
  const body = (rows) => {
    if (!Array.isArray(rows) || !rows.length) return html`<p class="muted">No data.</p>`;
    const first = rows[0].visitors || 0;
    return html`<ol class="funnel">${rows.map((r, i) => {
      const rate = isNum(r.conversion_rate) ? r.conversion_rate : (first ? (r.visitors || 0) / first : 0);
      return html`<li key=${i}>
        <div class="f-head"><span class="f-label">${r.label || `Step ${r.step ?? i + 1}`}</span>
          <span class="n">${num(r.visitors)} · ${pct(rate)}</span></div>
        <div class="track"><${Bar} frac=${rate} /></div>
        ${i > 0 && html`<div class="small muted">${pct(r.step_conversion_rate)} of the previous step ·
          ${num(Math.max(0, (rows[i - 1].visitors || 0) - (r.visitors || 0)))} dropped off</div>`}
      </li>`;
    })}</ol>`;
  };
  return html`<${Panel} title="Funnel" state=${s} quiet top=${top} body=${body} boxRef=${box} />`;
}
