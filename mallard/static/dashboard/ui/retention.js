// The Retention panel: the weekly cohort triangle. Weeks that have not begun are blank; the week in
// progress is marked (a lower bound); colours are fitted to the largest visible rate after week 0.
import { html, useState, useRef } from './html.js';
import { useLazyApi } from './api.js';
import { isNum, num, pct0, range } from './format.js';
import { Panel } from './widgets.js';

// Week k of a cohort has not begun when week k - 1 has not ended (the route's `complete`).
export const isFuture = (c, k) => k > 0 && Array.isArray(c.complete) && c.complete[k - 1] === false;

function Cell({ c, k, top }) {
  const r = Array.isArray(c.rates) ? c.rates[k] : undefined;
  if (!isNum(r) || isFuture(c, k)) return html`<td class="cell future" data-week=${k}></td>`;
  const done = !Array.isArray(c.complete) || c.complete[k] !== false;
  const kept = Array.isArray(c.retained) ? c.retained[k] : undefined;
  const shade = k === 0 ? 1 : top > 0 ? Math.max(0, Math.min(1, r / top)) : 0;
  return html`<td class=${`cell${shade > 0.55 ? ' strong' : ''}${done ? '' : ' partial'}`} data-week=${k}
    data-shade=${shade.toFixed(3)} style=${{ '--shade': shade.toFixed(3) }}
    title=${`${num(kept)} of ${num(c.visitors)} visitors${done ? '' : ' (week not over yet)'}`}>${pct0(r)}${done ? '' : '*'}</td>`;
}

export function Retention({ params, ready }) {
  const [weeks, setWeeks] = useState(4);
  const [users, setUsers] = useState(false);
  const box = useRef(null);
  const s = useLazyApi(box, ready, 'api/stats/retention', { ...params, weeks, identity: users ? 'user_id' : undefined });
  const actions = html`<label class="check"><input type="checkbox" checked=${users}
      onChange=${(e) => setUsers(e.currentTarget.checked)} /> Identified users only</label>
    <select aria-label="Weeks" value=${weeks} onChange=${(e) => setWeeks(Number(e.currentTarget.value))}>
      ${[4, 6, 8, 12].map((n) => html`<option value=${n}>${n} weeks</option>`)}
    </select>`;
  const body = (raw) => {
    const d = Array.isArray(raw) ? { cohorts: raw } : raw;
    const cohorts = Array.isArray(d.cohorts) ? d.cohorts : [];
    const cols = Math.max(0, ...cohorts.map((c) => (Array.isArray(c.rates) ? c.rates.length : 0)));
    const visible = cohorts.flatMap((c) => range(cols).filter((k) => k > 0 && !isFuture(c, k))
      .map((k) => (Array.isArray(c.rates) && isNum(c.rates[k]) ? c.rates[k] : 0)));
    const top = Math.max(0, ...visible);
    return html`${cohorts.length ? html`<div class="scroll"><table class="retention">
      <thead><tr><th>Cohort (week of)</th><th class="n">Visitors</th>${range(cols).map((i) => html`<th class="n">W${i}</th>`)}</tr></thead>
      <tbody>${cohorts.map((c) => html`<tr key=${c.cohort_date}>
        <td>${c.cohort_date}</td><td class="n">${num(c.visitors)}</td>
        ${range(cols).map((k) => html`<${Cell} c=${c} k=${k} top=${top} />`)}
      </tr>`)}</tbody></table></div>` : html`<p class="muted">No cohorts in this period.</p>`}
    ${cohorts.some((c) => range(cols).some((k) => !isFuture(c, k) && Array.isArray(c.complete) && c.complete[k] === false))
      && html`<p class="small muted">* week not over yet (a lower bound); blank: not begun.</p>`}
    ${top > 0 && html`<p class="small muted">Colours: week 0 full; later weeks relative to the highest, ${pct0(top)}.</p>`}
    ${d.identity && html`<p class="small muted">Identity used: ${String(d.identity)}</p>`}
    ${d.caveat && html`<p class="caveat">${String(d.caveat)}</p>`}`;
  };
  return html`<${Panel} title="Retention" state=${s} quiet wide actions=${actions} body=${body} boxRef=${box} />`;
}
