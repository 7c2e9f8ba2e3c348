// The Flow panel: a path diagram (SVG, no library) of the pages viewed just before and just after a
// page (api/stats/flow, direction previous and next), link widths by visitors; a page's button follows it.
import { html, useState, useRef } from './html.js';
import { useLazyApi } from './api.js';
import { isNum, num, pct } from './format.js';
import { Panel } from './widgets.js';

const W = 640;
const ROW = 30;
const NODE = 150; // width of a side column's node
const short = (s, n = 17) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

// One side's nodes: the pages (most visitors first) and the entrances/exits, as { label, visitors, end }.
const nodesOf = (d, side) => {
  const rows = Array.isArray(d[`${side}_pages`]) ? d[`${side}_pages`] : [];
  const out = rows.map((r) => ({ label: String(r[`${side}_page`]), visitors: r.visitors || 0 }));
  const ends = d[side === 'next' ? 'exits' : 'entrances'];
  if (isNum(ends) && ends > 0) out.push({ label: side === 'next' ? '(exit)' : '(entrance)', visitors: ends, end: true });
  return out;
};

function Diagram({ page, before, after, total }) {
  const rows = Math.max(1, before.length, after.length);
  const h = rows * ROW + 10;
  const unit = (ROW - 8) / Math.max(1, total);
  const cx = W / 2 - 70;
  const cy = h / 2;
  const link = (n, i, left) => {
    const y = 5 + i * ROW + ROW / 2;
    const x1 = left ? NODE : cx + 140;
    const x2 = left ? cx : W - NODE;
    const mid = (x1 + x2) / 2;
    const [ya, yb] = left ? [y, cy] : [cy, y];
    return html`<path class=${`flow-link${n.end ? ' end' : ''}`} d=${`M${x1},${ya} C${mid},${ya} ${mid},${yb} ${x2},${yb}`}
      stroke-width=${Math.max(1, n.visitors * unit).toFixed(1)}><title>${`${n.label}: ${num(n.visitors)} visitors`}</title></path>`;
  };
  const node = (n, i, left) => html`<g class=${`flow-node${n.end ? ' end' : ''}`}>
    <rect x=${left ? 0 : W - NODE} y=${5 + i * ROW + 3} width=${NODE} height=${ROW - 6} rx="4" />
    <text x=${left ? 6 : W - NODE + 6} y=${5 + i * ROW + ROW / 2 + 4}>${short(n.label)} · ${num(n.visitors)}</text></g>`;
  return html`<svg class="flow-diagram" viewBox=${`0 0 ${W} ${h}`} role="img"
    aria-label=${`Pages before and after ${page}`}>
    ${before.map((n, i) => link(n, i, true))}${after.map((n, i) => link(n, i, false))}
    ${before.map((n, i) => node(n, i, true))}${after.map((n, i) => node(n, i, false))}
    <g class="flow-node centre"><rect x=${cx} y=${cy - 14} width="140" height="28" rx="4" />
      <text x=${cx + 70} y=${cy + 4} text-anchor="middle">${short(page, 14)} · ${num(total)}</text></g>
  </svg>`;
}

function Follow({ title, nodes, go }) {
  return html`<div class="flow-list"><h3>${title}</h3><ul>${nodes.map((n) => html`<li key=${n.label}>
    ${n.end ? html`<span class="muted">${n.label}</span>`
      : html`<button class="row-btn" title="Follow this page" onClick=${() => go(n.label)}>${n.label}</button>`}
    <span class="n">${num(n.visitors)}</span></li>`)}</ul></div>`;
}

export function Flow({ params, ready }) {
  const [page, setPage] = useState('/');
  const [q, setQ] = useState('/');
  const box = useRef(null);
  const next = useLazyApi(box, ready, 'api/stats/flow', { ...params, page: q });
  const prev = useLazyApi(box, ready, 'api/stats/flow', { ...params, page: q, direction: 'previous' });
  const s = { loading: next.loading || prev.loading, error: next.error || prev.error,
    data: next.data && prev.data ? { next: next.data, prev: prev.data } : null };
  const go = (p) => { setPage(p); setQ(p); };
  const top = html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); if (page.trim()) go(page.trim()); }}>
    <label class="grow">Page <input value=${page} placeholder="/" onInput=${(e) => setPage(e.currentTarget.value)} /></label>
    <button type="submit">Show</button>
  </form>`;
  const body = ({ next: n, prev: p }) => {
    const total = n.visitors_at_page || 0;
    if (!total) return html`<p class="muted">Nobody viewed <code>${q}</code> in this period.</p>`;
    const before = nodesOf(p, 'previous');
    const after = nodesOf(n, 'next');
    const summary = `; ${num(p.entrances)} began there, ${num(n.exits)} left the site there (${pct((n.exits || 0) / total)}).`;
    return html`<p class="small muted flow-summary">${num(total)} visitors reached <code>${q}</code>${summary}</p>
      <${Diagram} page=${q} before=${before} after=${after} total=${total} />
      <div class="flow-lists"><${Follow} title="Before" nodes=${before} go=${go} /><${Follow} title="After" nodes=${after} go=${go} /></div>`;
  };
  return html`<${Panel} title="Flow" state=${s} quiet wide top=${top} body=${body} boxRef=${box} />`;
}
