// The Flow panel: next pages after a page.
import { html, useState, useRef } from './html.js';
import { useLazyApi } from './api.js';
import { isNum, num, pct } from './format.js';
import { Bar, Panel } from './widgets.js';

export function Flow({ params, ready }) {
  const [page, setPage] = useState('/');
  const [q, setQ] = useState('/');
  const box = useRef(null);
  const s = useLazyApi(box, ready, 'api/stats/flow', { ...params, page: q });
  const go = (p) => { setPage(p); setQ(p); };
  const top = html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); if (page.trim()) go(page.trim()); }}>
    <label class="grow">From page <input value=${page} placeholder="/" onInput=${(e) => setPage(e.currentTarget.value)} /></label>
    <button type="submit">Show</button>
  </form>`;
  const body = (raw) => {
    const d = Array.isArray(raw) ? { next_pages: raw } : raw;
    const next = Array.isArray(d.next_pages) ? d.next_pages : [];
    const base = Math.max(1, d.visitors_at_page || 0, ...next.map((r) => r.visitors || 0));
    return html`${isNum(d.visitors_at_page) && html`<p class="small muted">${num(d.visitors_at_page)} visitors reached
      <code>${q}</code>; ${num(d.exits)} left the site there${d.visitors_at_page ? ` (${pct((d.exits || 0) / d.visitors_at_page)})` : ''}.</p>`}
    ${next.length ? html`<table class="bars">
      <thead><tr><th>Next page</th><th class="n">Visitors</th></tr></thead>
      <tbody>${next.map((r) => html`<tr key=${String(r.next_page)}>
        <td class="label"><${Bar} frac=${(r.visitors || 0) / base} />
          <button class="row-btn" title="Follow this page" onClick=${() => go(String(r.next_page))}>${String(r.next_page)}</button></td>
        <td class="n">${num(r.visitors)}</td></tr>`)}</tbody>
    </table>` : html`<p class="muted">No next pages.</p>`}`;
  };
  return html`<${Panel} title="Flow" state=${s} quiet top=${top} body=${body} boxRef=${box} />`;
}
