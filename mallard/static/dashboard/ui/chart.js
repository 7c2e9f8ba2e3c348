// The visitors and pageviews chart (SVG).
import { html, useState, useEffect, useRef } from './html.js';
import { apiUrl, partOf } from './api.js';
import { num, dateLabel } from './format.js';

export function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function Chart({ params, view }) {
  const s = partOf(view, (d) => d.timeseries);
  const box = useRef(null);
  const [w, setW] = useState(800);
  const [hover, setHover] = useState(null);
  useEffect(() => {
    const el = box.current;
    if (!el || !window.ResizeObserver) return undefined;
    const ro = new ResizeObserver((entries) => setW(Math.max(260, Math.floor(entries[0].contentRect.width))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => setHover(null), [s.data]);

  const exp = (format) => apiUrl('api/stats/export', { ...params, format }).href;
  const rows = Array.isArray(s.data) ? s.data : [];
  const n = rows.length;
  const H = 220; const L = 44; const R = 10; const T = 10; const B = 26;
  const pw = w - L - R; const ph = H - T - B;
  let peak = 0;
  for (const r of rows) peak = Math.max(peak, r.visitors || 0, r.pageviews || 0);
  const max = niceMax(Math.max(4, peak));
  const x = (i) => L + (n <= 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v) => T + ph - ((v || 0) / max) * ph;
  const line = (k) => rows.map((r, i) => `${x(i).toFixed(1)},${y(r[k]).toFixed(1)}`).join(' ');
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 72))));
  const band = n > 1 ? pw / (n - 1) : pw;
  const hv = hover != null ? rows[hover] : null;
  const tipW = 150;
  const tipX = hv ? (x(hover) + tipW + 8 > w - R ? x(hover) - tipW - 8 : x(hover) + 8) : 0;

  let content;
  if (s.error) content = html`<p class="error" role="alert">${s.error.message}</p>`;
  else if (!s.data) content = html`<p class="muted">Loading…</p>`;
  else if (!n) content = html`<p class="muted">No data for this period.</p>`;
  else {
    content = html`<svg class="chart" width=${w} height=${H} viewBox=${`0 0 ${w} ${H}`} role="img"
      aria-label="Visitors and pageviews over time" onMouseLeave=${() => setHover(null)}>
      ${[0, 1, 2, 3, 4].map((i) => {
        const t = (max * i) / 4;
        return html`<g class="tick"><line x1=${L} x2=${w - R} y1=${y(t)} y2=${y(t)} />
          <text x=${L - 6} y=${y(t) + 4} text-anchor="end">${num(t)}</text></g>`;
      })}
      ${rows.map((r, i) => (i % every === 0) && html`<text class="xlabel" x=${x(i)} y=${H - 8}
        text-anchor=${n < 2 ? 'middle' : i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle'}>${dateLabel(r.date, n)}</text>`)}
      <polyline class="line pv" points=${line('pageviews')} />
      <polyline class="line vis" points=${line('visitors')} />
      ${hv && html`<g class="hover">
        <line x1=${x(hover)} x2=${x(hover)} y1=${T} y2=${T + ph} />
        <circle class="pv" cx=${x(hover)} cy=${y(hv.pageviews)} r="3.5" />
        <circle class="vis" cx=${x(hover)} cy=${y(hv.visitors)} r="3.5" />
        <rect class="tip" x=${tipX} y=${T} width=${tipW} height="54" rx="4" />
        <text x=${tipX + 8} y=${T + 16}>${String(hv.date)}</text>
        <text class="vis-t" x=${tipX + 8} y=${T + 32}>Visitors ${num(hv.visitors)}</text>
        <text class="pv-t" x=${tipX + 8} y=${T + 47}>Pageviews ${num(hv.pageviews)}</text>
      </g>`}
      ${rows.map((r, i) => {
        const x0 = Math.max(L, x(i) - band / 2);
        const x1 = Math.min(L + pw, x(i) + band / 2);
        return html`<rect class="hit" x=${x0} y=${T} width=${Math.max(1, x1 - x0)} height=${ph}
          onMouseEnter=${() => setHover(i)} onClick=${() => setHover(i)}>
          <title>${`${r.date}: ${r.visitors} visitors, ${r.pageviews} pageviews`}</title></rect>`;
      })}
    </svg>`;
  }
  return html`<section class=${`panel wide${s.loading ? ' is-loading' : ''}`}>
    <header class="panel-head"><h2>Visitors and pageviews</h2>
      <span class="legend"><i class="sw vis"></i>Visitors <i class="sw pv"></i>Pageviews</span>
      <span class="export">Export <a href=${exp('csv')} download="mallard-export.csv">CSV</a>
        <a href=${exp('json')} download="mallard-export.json">JSON</a></span>
    </header>
    <div class="chart-box" ref=${box}>${content}</div>
  </section>`;
}
