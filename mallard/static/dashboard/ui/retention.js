// The Retention panel: weekly cohorts.
import { html, useState, useRef } from './html.js';
import { useLazyApi } from './api.js';
import { isNum, num, pct0, range } from './format.js';
import { Panel } from './widgets.js';

export function Retention({ params, ready }) {
  const [weeks, setWeeks] = useState(4);
  const box = useRef(null);
  const s = useLazyApi(box, ready, 'api/stats/retention', { ...params, weeks });
  const actions = html`<select aria-label="Weeks" value=${weeks} onChange=${(e) => setWeeks(Number(e.currentTarget.value))}>
    ${[4, 6, 8, 12].map((n) => html`<option value=${n}>${n} weeks</option>`)}
  </select>`;
  const body = (raw) => {
    const d = Array.isArray(raw) ? { cohorts: raw } : raw;
    const cohorts = Array.isArray(d.cohorts) ? d.cohorts : [];
    const cols = Math.max(0, ...cohorts.map((c) => (Array.isArray(c.rates) ? c.rates.length : 0)));
    return html`${cohorts.length ? html`<div class="scroll"><table class="retention">
      <thead><tr><th>Cohort (week of)</th><th class="n">Visitors</th>${range(cols).map((i) => html`<th class="n">W${i}</th>`)}</tr></thead>
      <tbody>${cohorts.map((c) => html`<tr key=${c.cohort_date}>
        <td>${c.cohort_date}</td><td class="n">${num(c.visitors)}</td>
        ${range(cols).map((i) => {
          const r = Array.isArray(c.rates) ? c.rates[i] : undefined;
          if (!isNum(r)) return html`<td></td>`;
          const done = !Array.isArray(c.complete) || c.complete[i] !== false;
          const kept = Array.isArray(c.retained) ? c.retained[i] : undefined;
          const shade = Math.round(Math.max(0, Math.min(1, r)) * 10);
          return html`<td class=${`cell shade-${shade}${done ? '' : ' partial'}`}
            title=${`${num(kept)} of ${num(c.visitors)} visitors${done ? '' : ' (week not over yet)'}`}>${pct0(r)}${done ? '' : '*'}</td>`;
        })}
      </tr>`)}</tbody></table></div>` : html`<p class="muted">No cohorts in this period.</p>`}
    ${cohorts.some((c) => Array.isArray(c.complete) && c.complete.includes(false)) && html`<p class="small muted">* week not over yet.</p>`}
    ${d.identity && html`<p class="small muted">Identity used: ${String(d.identity)}</p>`}
    ${d.caveat && html`<p class="caveat">${String(d.caveat)}</p>`}`;
  };
  return html`<${Panel} title="Retention" state=${s} quiet wide actions=${actions} body=${body} boxRef=${box} />`;
}
