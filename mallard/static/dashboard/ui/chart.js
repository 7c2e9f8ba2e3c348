// The chart of one metric over time (SVG), the compared period (the previous one, or a year before)
// drawn behind it, bucketed by `interval`. Visitors and pageviews come with the view's answer; another
// metric is asked of the v2 query API with its comparison.
// Accessible: the SVG is an image named by a summary (metric, interval, dates, lowest and highest) and
// is in the Tab order; ArrowLeft/ArrowRight, Home and End move the tooltip between the points, and a
// polite live region says the focused point's figures (the same text as the mouse's <title>s).
import { html, useState, useEffect, useRef } from './html.js';
import { apiUrl, partOf, useApi } from './api.js';
import { dateLabel } from './format.js';
import { metricOf } from './cards.js';
import { comparedLabel } from './compare.js';
import { shareParams } from './share.js';

const IN_VIEW = ['visitors', 'pageviews'];

// A step of 1, 2, 2.5 or 5 times a power of ten giving about four intervals up to `peak`; a whole
// step (at least 1) for counts, so no tick reads "1.25 visitors".
export function axisTicks(peak, count) {
  const top = Math.max(peak, count ? 4 : 1);
  const rough = top / 4;
  const p = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= rough);
  if (count) step = Math.max(1, Math.ceil(step));
  const n = Math.ceil(top / step - 1e-9);
  return Array.from({ length: n + 1 }, (_, i) => i * step);
}

// Rows { date, value, prevDate, prev } for `metric`, from the view or from the v2 answer; `src`: the
// answer they were read from (the rows are a new array at each render, the answer only when it changes).
function useSeries(view, metric, range, filters, interval, mode) {
  const own = !IN_VIEW.includes(metric) && view.data && range;
  const body = own ? {
    site_id: range.site, metrics: [metric], date_range: [range.start_date, range.end_date],
    dimensions: [`time:${interval}`], filters: filters || undefined,
    include: { comparisons: { mode } },
  } : undefined;
  const q = useApi(own ? 'api/v2/query' : null, null, { body });
  if (!own) {
    return { ...partOf(view, (d) => (Array.isArray(d.timeseries) ? d.timeseries.map((r, i) => {
      const p = Array.isArray(d.previous_timeseries) ? d.previous_timeseries[i] : undefined;
      return { date: r.date, value: r[metric], prevDate: p && p.date, prev: p && p[metric] };
    }) : null)), src: view.data };
  }
  return {
    loading: q.loading, error: q.error, src: q.data,
    data: q.data && Array.isArray(q.data.results) ? q.data.results.map((r) => ({
      date: r.dimensions[0], value: r.metrics[0],
      prevDate: r.comparison && r.comparison.dimensions[0], prev: r.comparison && r.comparison.metrics[0],
    })) : null,
  };
}

export function Chart({ params, view, metric, site, filters, interval = 'day', mode = 'previous_period', actions }) {
  const m = metricOf(metric);
  const range = view.data && view.data.range ? { ...view.data.range, site } : null;
  const s = useSeries(view, m.metric, range, filters, interval, mode);
  const cmpName = comparedLabel(mode);
  const box = useRef(null);
  const [w, setW] = useState(800);
  const [hover, setHover] = useState(null);
  const [said, setSaid] = useState('');
  useEffect(() => {
    const el = box.current;
    if (!el || !window.ResizeObserver) return undefined;
    const ro = new ResizeObserver((entries) => setW(Math.max(260, Math.floor(entries[0].contentRect.width))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => { setHover(null); setSaid(''); }, [s.src, metric]);

  const exp = (format) => apiUrl('api/stats/export', { ...params, ...shareParams(), format }).href;
  const rows = Array.isArray(s.data) ? s.data : [];
  const n = rows.length;
  const hasPrev = rows.some((r) => r.prev != null);
  const H = 220; const L = 48; const R = 10; const T = 10; const B = 26;
  const pw = w - L - R; const ph = H - T - B;
  let peak = 0;
  for (const r of rows) peak = Math.max(peak, r.value || 0, r.prev || 0);
  const ticks = axisTicks(peak, m.count);
  const max = ticks[ticks.length - 1];
  const x = (i) => L + (n <= 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v) => T + ph - ((v || 0) / max) * ph;
  const line = (k) => rows.map((r, i) => `${x(i).toFixed(1)},${y(r[k]).toFixed(1)}`).join(' ');
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 72))));
  const band = n > 1 ? pw / (n - 1) : pw;
  const hv = hover != null ? rows[hover] : null;
  const tipW = 190;
  const tipX = hv ? (x(hover) + tipW + 8 > w - R ? x(hover) - tipW - 8 : x(hover) + 8) : 0;
  const describe = (r) => `${r.date}: ${m.chartFmt(r.value)} ${m.label.toLowerCase()}`
    + (r.prevDate ? `; ${r.prevDate}: ${m.chartFmt(r.prev)} (${cmpName.toLowerCase()})` : '');
  const values = rows.map((r) => r.value || 0);
  const summary = n ? `${m.label} per ${interval}, ${rows[0].date} to ${rows[n - 1].date}: lowest `
    + `${m.chartFmt(Math.min(...values))}, highest ${m.chartFmt(Math.max(...values))}`
    + `${hasPrev ? `, ${cmpName.toLowerCase()} drawn behind` : ''}. Arrow keys, Home and End read each point.` : '';
  // The keyboard moves the shown point (the first arrow press from none picks an end) and says it.
  const show = (i) => { setHover(i); setSaid(describe(rows[i])); };
  const onKey = (e) => {
    const last = n - 1;
    const to = {
      ArrowRight: hover == null ? 0 : Math.min(last, hover + 1),
      ArrowLeft: hover == null ? last : Math.max(0, hover - 1),
      Home: 0, End: last,
    }[e.key];
    if (to === undefined || !n) return;
    e.preventDefault();
    show(to);
  };
  const leave = () => { setHover(null); setSaid(''); };

  let content;
  if (s.error) content = html`<p class="error" role="alert">${s.error.message}</p>`;
  else if (!s.data) content = html`<p class="muted">Loading…</p>`;
  else if (!n) content = html`<p class="muted">No data for this period.</p>`;
  else {
    content = html`<svg class="chart" width=${w} height=${H} viewBox=${`0 0 ${w} ${H}`} role="img"
      aria-label=${summary} tabindex="0" aria-keyshortcuts="ArrowLeft ArrowRight Home End"
      onKeyDown=${onKey} onBlur=${leave} onMouseLeave=${() => setHover(null)}>
      ${ticks.map((t) => html`<g class="tick"><line x1=${L} x2=${w - R} y1=${y(t)} y2=${y(t)} />
          <text x=${L - 6} y=${y(t) + 4} text-anchor="end">${m.chartFmt(t)}</text></g>`)}
      ${rows.map((r, i) => (i % every === 0) && html`<text class="xlabel" x=${x(i)} y=${H - 8}
        text-anchor=${n < 2 ? 'middle' : i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle'}>${dateLabel(r.date, n, interval)}</text>`)}
      ${hasPrev && html`<polyline class="line prev" points=${line('prev')} />`}
      <polyline class="line cur" points=${line('value')} />
      ${hv && html`<g class="hover">
        <line x1=${x(hover)} x2=${x(hover)} y1=${T} y2=${T + ph} />
        ${hasPrev && html`<circle class="prev" cx=${x(hover)} cy=${y(hv.prev)} r="3" />`}
        <circle class="cur" cx=${x(hover)} cy=${y(hv.value)} r="3.5" />
        <rect class="tip" x=${tipX} y=${T} width=${tipW} height=${hasPrev ? 54 : 38} rx="4" />
        <text class="cur-t" x=${tipX + 8} y=${T + 16}>${String(hv.date)}</text>
        <text class="cur-t" x=${tipX + 8} y=${T + 32}>${m.label} ${m.chartFmt(hv.value)}</text>
        ${hasPrev && html`<text class="prev-t" x=${tipX + 8} y=${T + 47}>${String(hv.prevDate || '')}: ${m.chartFmt(hv.prev)}</text>`}
      </g>`}
      ${rows.map((r, i) => {
        const x0 = Math.max(L, x(i) - band / 2);
        const x1 = Math.min(L + pw, x(i) + band / 2);
        return html`<rect class="hit" x=${x0} y=${T} width=${Math.max(1, x1 - x0)} height=${ph}
          onMouseEnter=${() => setHover(i)} onClick=${() => setHover(i)}><title>${describe(r)}</title></rect>`;
      })}
    </svg>`;
  }
  return html`<section class=${`panel wide${s.loading ? ' is-loading' : ''}`} aria-label="Chart">
    <header class="panel-head"><h2>${m.label}</h2>
      ${actions}
      <span class="legend"><i class="sw cur"></i>This period${hasPrev && html` <i class="sw prev"></i>${cmpName}`}</span>
      <span class="export">Export <a href=${exp('csv')} download="mallard-export.csv">CSV</a>
        <a href=${exp('json')} download="mallard-export.json">JSON</a></span>
    </header>
    <div class="chart-box" id="chart-box" ref=${box}>${content}</div>
    <p class="chart-said sr-only" aria-live="polite">${said}</p>
  </section>`;
}
