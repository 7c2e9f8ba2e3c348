// mallard dashboard: Preact + HTM, vendored as files under ./vendor/, no build step, no CDN.
//
// Rules this file keeps so it works under any mount prefix and under the dashboard's CSP
// (script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'):
// * every URL is relative and resolved against document.baseURI (never a leading slash);
// * no inline scripts, no eval, no raw-HTML injection: every value from the API is rendered as text;
// * no style attributes in markup: bar widths and positions go through the CSSOM (Preact's
//   object `style` prop sets el.style.width = ...), everything else is a class in style.css;
// * page state (site, period, range, filters) lives in the query string, not in storage.
import { h, render, Component, createContext } from './vendor/preact.module.js';
import { useState, useEffect, useRef, useContext } from './vendor/hooks.module.js';
import htm from './vendor/htm.module.js';

const html = htm.bind(h);

/* ------------------------------------------------------------------ HTTP */

const apiUrl = (path, params) => {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url;
};

class ApiError extends Error {
  constructor(message, status, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// Answers meaning "this endpoint is not implemented / not enabled here" (behavioural panels).
const UNAVAILABLE = new Set([404, 405, 501, 503]);

async function request(path, { params, method = 'GET', body, signal } = {}) {
  const init = { method, signal, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(apiUrl(path, params), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('Network error: the server could not be reached.', 0, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || `HTTP ${res.status}`;
    throw new ApiError(msg, res.status, res.headers.get('Retry-After'));
  }
  return data;
}

function retrySeconds(err) {
  const raw = err.retryAfter;
  if (raw && /^\d+$/.test(raw.trim())) return Number(raw);
  const when = raw ? Date.parse(raw) : NaN;
  return Number.isNaN(when) ? 60 : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

// A 401 anywhere means "log in again": the App re-reads api/auth/status.
let onUnauthorized = () => {};
const Reload = createContext(0);

function useApi(path, params) {
  const key = path ? apiUrl(path, params).href : null;
  const tick = useContext(Reload);
  const [state, setState] = useState({ loading: !!key, data: null, error: null });
  useEffect(() => {
    if (!key) {
      setState({ loading: false, data: null, error: null });
      return undefined;
    }
    const ctl = new AbortController();
    setState((s) => ({ loading: true, data: s.data, error: null }));
    request(key, { signal: ctl.signal }).then(
      (data) => setState({ loading: false, data, error: null }),
      (error) => {
        if (error.name === 'AbortError') return;
        if (error.status === 401) onUnauthorized();
        setState({ loading: false, data: null, error });
      },
    );
    return () => ctl.abort();
  }, [key, tick]);
  return state;
}

// True once the element has come near the viewport (and from then on): panels below the fold ask for
// their data only when shown. Watching starts when `ready` (the first screen has its data, so the page
// has its real height). Without IntersectionObserver, at once.
function useShown(ref, ready) {
  const [shown, setShown] = useState(!window.IntersectionObserver);
  useEffect(() => {
    const el = ref.current;
    if (shown || !ready || !el) return undefined;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) { setShown(true); io.disconnect(); }
    }, { rootMargin: '100px' });
    io.observe(el);
    return () => io.disconnect();
  }, [shown, ready]);
  return shown;
}

// A panel that fetches `path` only once shown; until then it reads as loading.
function useLazyApi(ref, ready, path, params) {
  const shown = useShown(ref, ready);
  const s = useApi(shown ? path : null, params);
  return shown ? s : { loading: true, data: null, error: null };
}

// One part of the view's answer (api/stats/view), as a useApi state.
const partOf = (view, pick) => ({
  loading: view.loading, error: view.error, data: view.data ? pick(view.data) ?? null : null,
});

/* ------------------------------------------------------------ formatting */

const intFmt = new Intl.NumberFormat();
const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
const num = (n) => (isNum(n) ? (Math.abs(n) >= 100000 ? compactFmt : intFmt).format(n) : '—');
const pct = (r) => (isNum(r) ? `${(r * 100).toFixed(1)}%` : '—');
const pct0 = (r) => (isNum(r) ? `${Math.round(r * 100)}%` : '—');
const dec = (x, d = 2) => (isNum(x) ? x.toFixed(d) : '—');
const dur = (s) => {
  if (!isNum(s)) return '—';
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
};
const range = (n) => Array.from({ length: n }, (_, i) => i);
const isoDay = (offsetDays) => new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function dateLabel(d, n) {
  const s = String(d);
  if (s.length > 10) return s.slice(11, 16); // "2024-03-01 13:00" -> "13:00"
  const [y, m, day] = s.split('-');
  if (!day) return `${MONTHS[+m - 1] || m} ${y.slice(2)}`; // "2024-03"
  return n > 400 ? `${MONTHS[+m - 1] || m} ${y.slice(2)}` : `${MONTHS[+m - 1] || m} ${+day}`;
}

/* ------------------------------------------------------- URL-held state */

const PERIODS = [
  ['day', 'Today'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['90d', 'Last 90 days'],
  ['12mo', 'Last 12 months'], ['month', 'This month'], ['year', 'This year'], ['all', 'All time'],
  ['custom', 'Custom range…'],
];
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const FILTER_RE = /^([a-z][a-z-]*)(==|!=)(.+)$/;

const parseFilters = (s) => s.split(';').map((x) => FILTER_RE.exec(x.trim())).filter(Boolean)
  .map((m) => ({ dim: m[1], op: m[2], value: m[3] }));
const filterString = (fs) => fs.map((f) => f.dim + f.op + f.value).join(';');

function readUrl() {
  const q = new URLSearchParams(window.location.search);
  let period = q.get('period') || '30d';
  if (!PERIODS.some(([p]) => p === period)) period = '30d';
  const from = q.get('from') || '';
  const to = q.get('to') || '';
  if (period === 'custom' && !(DATE_RE.test(from) && DATE_RE.test(to) && from <= to)) period = '30d';
  return {
    site: q.get('site') || '', period,
    from: period === 'custom' ? from : '', to: period === 'custom' ? to : '',
    filters: parseFilters(q.get('filters') || ''),
  };
}

function urlSearch(st) {
  const q = new URLSearchParams();
  if (st.site) q.set('site', st.site);
  q.set('period', st.period);
  if (st.period === 'custom') { q.set('from', st.from); q.set('to', st.to); }
  if (st.filters.length) q.set('filters', filterString(st.filters));
  return `?${q}`;
}

const statParams = (st) => ({
  site_id: st.site,
  ...(st.period === 'custom' ? { start_date: st.from, end_date: st.to } : { period: st.period }),
  filters: filterString(st.filters) || undefined,
});

/* ------------------------------------------------------- labels/config */

const GROUPS = [
  { title: 'Pages', head: 'Page', tabs: [['pages', 'Top pages'], ['entry-pages', 'Entry pages'], ['exit-pages', 'Exit pages']] },
  {
    title: 'Sources', head: 'Source',
    tabs: [['sources', 'Sources'], ['referrers', 'Referrers'], ['utm-sources', 'UTM source'],
      ['utm-mediums', 'UTM medium'], ['utm-campaigns', 'UTM campaign']],
  },
  { title: 'Locations', head: 'Location', tabs: [['countries', 'Countries'], ['regions', 'Regions'], ['cities', 'Cities']] },
  { title: 'Devices', head: 'Device', tabs: [['browsers', 'Browsers'], ['os', 'OS'], ['devices', 'Devices']] },
  { title: 'Events', head: 'Event', tabs: [['events', 'Events']] },
];
const DIM_LABEL = {
  pages: 'Page', 'entry-pages': 'Entry page', 'exit-pages': 'Exit page', sources: 'Source',
  referrers: 'Referrer', 'utm-sources': 'UTM source', 'utm-mediums': 'UTM medium',
  'utm-campaigns': 'UTM campaign', countries: 'Country', regions: 'Region', cities: 'City',
  browsers: 'Browser', os: 'OS', devices: 'Device', events: 'Event',
};

/* ------------------------------------------------------------ pieces */

// Keeps one broken panel (an unexpected answer shape, say) from blanking the whole page.
class Guard extends Component {
  componentDidCatch(error) { this.setState({ error }); }
  render() {
    if (this.state.error) {
      return html`<section class="panel"><p class="error" role="alert">This panel failed to render: ${String(this.state.error.message || this.state.error)}</p></section>`;
    }
    return this.props.children;
  }
}

// width through the CSSOM (Preact sets el.style.width), which the CSP allows; no style attribute.
const Bar = ({ frac }) => html`<span class="bar" style=${{ width: `${(Math.max(0, Math.min(1, frac || 0)) * 100).toFixed(1)}%` }}></span>`;

function Panel({ title, state, quiet, actions, top, body, wide, boxRef }) {
  let content;
  if (state.error) {
    content = quiet && UNAVAILABLE.has(state.error.status)
      ? html`<p class="muted">Not available yet.</p>`
      : html`<p class="error" role="alert">${state.error.message}</p>`;
  } else if (state.data == null) {
    content = html`<p class="muted">${state.loading ? 'Loading…' : 'No data.'}</p>`;
  } else {
    content = body(state.data);
  }
  const cls = `panel${wide ? ' wide' : ''}${state.loading ? ' is-loading' : ''}`;
  return html`<section class=${cls} ref=${boxRef} aria-busy=${state.loading ? 'true' : 'false'}>
    <header class="panel-head"><h2>${title}</h2>${actions}</header>
    ${top}${content}
  </section>`;
}

function FormError({ text }) {
  return text ? html`<p class="error" role="alert">${text}</p>` : null;
}

/* ------------------------------------------------------------- auth UI */

function Login({ onDone }) {
  const [pw, setPw] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      await request('api/auth/login', { method: 'POST', body: { password: pw } });
      setPw('');
      setBusy(false);
      onDone();
    } catch (x) {
      setBusy(false);
      if (x.status === 429) setErr(`Too many attempts, retry in ${retrySeconds(x)} s.`);
      else if (x.status === 401) setErr('Wrong password.');
      else setErr(x.message);
    }
  };
  return html`<main class="center"><form class="card auth" onSubmit=${submit}>
    <h1><img src="favicon.svg" alt="" width="28" height="28" /> mallard</h1>
    <label for="pw">Admin password</label>
    <input id="pw" type="password" autocomplete="current-password" required value=${pw}
      onInput=${(e) => setPw(e.currentTarget.value)} />
    <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    <${FormError} text=${err} />
  </form></main>`;
}

function SetupForm({ onDone }) {
  const [pw, setPw] = useState('');
  const [pw2, setPw2] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (pw !== pw2) { setErr('The two passwords differ.'); return; }
    setBusy(true);
    setErr('');
    try {
      await request('api/auth/setup', { method: 'POST', body: { password: pw } });
      setBusy(false);
      onDone();
    } catch (x) {
      setBusy(false);
      if (x.status === 429) setErr(`Too many attempts, retry in ${retrySeconds(x)} s.`);
      else if (x.status === 409) onDone();
      else setErr(x.message);
    }
  };
  return html`<form class="setup" onSubmit=${submit}>
    <input type="password" autocomplete="new-password" required placeholder="New password (12+ characters)"
      aria-label="New admin password" value=${pw} onInput=${(e) => setPw(e.currentTarget.value)} />
    <input type="password" autocomplete="new-password" required placeholder="Repeat password"
      aria-label="Repeat the password" value=${pw2} onInput=${(e) => setPw2(e.currentTarget.value)} />
    <button type="submit" disabled=${busy}>${busy ? 'Saving…' : 'Set password'}</button>
    <${FormError} text=${err} />
  </form>`;
}

function SetupBanner({ auth, onDone }) {
  return html`<div class="banner" role="status">
    <p><strong>No admin password set — set one to protect this dashboard.</strong>
    ${auth.loopback_only ? ' Until then, stats are readable only from this machine (loopback).' : ''}</p>
    <${SetupForm} onDone=${onDone} />
  </div>`;
}

/* ------------------------------------------------------------- header */

function SitePicker({ sites, site, onPick }) {
  const [text, setText] = useState(site);
  useEffect(() => setText(site), [site]);
  const list = (sites.data && Array.isArray(sites.data.sites)) ? sites.data.sites.map(String) : [];
  if (list.length) {
    const all = site && !list.includes(site) ? [site, ...list] : list;
    return html`<select class="site" aria-label="Site" value=${site}
      onChange=${(e) => onPick(e.currentTarget.value)}>
      ${!site && html`<option value="">Choose a site…</option>`}
      ${all.map((s) => html`<option value=${s}>${s}</option>`)}
    </select>`;
  }
  if (sites.loading && !site) return html`<span class="muted">Loading sites…</span>`;
  return html`<form class="site" onSubmit=${(e) => { e.preventDefault(); onPick(text.trim()); }}>
    <input aria-label="Site id" placeholder="site id, e.g. example.com" value=${text}
      onInput=${(e) => setText(e.currentTarget.value)} />
    <button type="submit">Open</button>
  </form>`;
}

function PeriodPicker({ st, update }) {
  const [mode, setMode] = useState(st.period);
  const [from, setFrom] = useState(st.from || isoDay(-30));
  const [to, setTo] = useState(st.to || isoDay(0));
  const [err, setErr] = useState('');
  useEffect(() => {
    setMode(st.period);
    if (st.from) setFrom(st.from);
    if (st.to) setTo(st.to);
  }, [st.period, st.from, st.to]);
  const choose = (e) => {
    const v = e.currentTarget.value;
    setMode(v);
    setErr('');
    if (v !== 'custom') update({ period: v, from: '', to: '' });
  };
  const apply = (e) => {
    e.preventDefault();
    if (!DATE_RE.test(from) || !DATE_RE.test(to)) setErr('Pick both dates.');
    else if (from > to) setErr('The start date must be on or before the end date.');
    else { setErr(''); update({ period: 'custom', from, to }); }
  };
  return html`<div class="period">
    <select aria-label="Period" value=${mode} onChange=${choose}>
      ${PERIODS.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
    </select>
    ${mode === 'custom' && html`<form class="range" onSubmit=${apply}>
      <input type="date" aria-label="From (inclusive)" value=${from} max=${to}
        onInput=${(e) => setFrom(e.currentTarget.value)} required />
      <span aria-hidden="true">–</span>
      <input type="date" aria-label="To (inclusive)" value=${to} min=${from}
        onInput=${(e) => setTo(e.currentTarget.value)} required />
      <button type="submit">Apply</button>
    </form>`}
    ${err && html`<span class="error">${err}</span>`}
  </div>`;
}

function Chips({ filters, setFilters }) {
  if (!filters.length) return null;
  const toggle = (i) => setFilters(filters.map((f, j) => (j === i ? { ...f, op: f.op === '==' ? '!=' : '==' } : f)));
  return html`<div class="chips" aria-label="Active filters">
    <span class="muted">Filtered by</span>
    ${filters.map((f, i) => html`<span class="chip" key=${f.dim + f.op + f.value}>
      <button class="chip-main" title=${`${f.dim}${f.op}${f.value} (click to toggle is / is not)`}
        onClick=${() => toggle(i)}>${DIM_LABEL[f.dim] || f.dim} ${f.op === '==' ? 'is' : 'is not'} <b>${f.value}</b></button>
      <button class="chip-x" aria-label=${`Remove filter ${f.dim}${f.op}${f.value}`}
        onClick=${() => setFilters(filters.filter((_, j) => j !== i))}>×</button>
    </span>`)}
    ${filters.length > 1 && html`<button class="link" onClick=${() => setFilters([])}>Clear all</button>`}
  </div>`;
}

/* -------------------------------------------------------- top metrics */

const CARDS = [
  ['unique_visitors', 'Unique visitors', num],
  ['total_pageviews', 'Pageviews', num],
  ['total_sessions', 'Visits', num],
  ['bounce_rate', 'Bounce rate', pct],
  ['avg_visit_duration_secs', 'Visit duration', dur],
  ['views_per_visit', 'Views per visit', (v) => dec(v, 2)],
];

function Cards({ view }) {
  const s = partOf(view, (d) => d.main);
  if (s.error) return html`<section class="panel wide"><p class="error" role="alert">${s.error.message}</p></section>`;
  const d = s.data ? { ...s.data, views_per_visit: s.data.views_per_visit ?? s.data.pages_per_visit } : null;
  return html`<section class=${`cards${s.loading ? ' is-loading' : ''}`} aria-label="Summary">
    ${CARDS.map(([k, label, f]) => html`<div class="card">
      <div class="card-label">${label}</div>
      <div class="card-value" title=${d && d[k] != null ? String(d[k]) : ''}>${d ? f(d[k]) : '…'}</div>
    </div>`)}
  </section>`;
}

/* ------------------------------------------------------------- chart */

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function Chart({ params, view }) {
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

/* -------------------------------------------------------- breakdowns */

function Breakdown({ group, params, view, addFilter }) {
  const first = group.tabs[0][0];
  const [tab, setTab] = useState(first);
  // The first tab comes with the view; another is asked for when clicked.
  const own = useApi(tab === first ? null : `api/stats/breakdown/${tab}`, { ...params, limit: 10 });
  const s = tab === first ? partOf(view, (d) => d.breakdowns && d.breakdowns[first]) : own;
  const tabs = group.tabs.length > 1 && html`<div class="tabs" role="tablist">
    ${group.tabs.map(([slug, label]) => html`<button role="tab" aria-selected=${slug === tab ? 'true' : 'false'}
      class=${slug === tab ? 'tab on' : 'tab'} onClick=${() => setTab(slug)}>${label}</button>`)}
  </div>`;
  const body = (rows) => {
    if (!Array.isArray(rows) || !rows.length) return html`<p class="muted">No data.</p>`;
    const max = Math.max(1, ...rows.map((r) => r.visitors || 0));
    return html`<table class="bars">
      <thead><tr><th>${DIM_LABEL[tab] || group.head}</th><th class="n">Visitors</th><th class="n">Views</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${String(r.value)}>
        <td class="label"><${Bar} frac=${(r.visitors || 0) / max} />
          <button class="row-btn" title=${`Filter: ${tab}==${r.value}`}
            onClick=${() => addFilter(tab, String(r.value))}>${String(r.value)}</button></td>
        <td class="n">${num(r.visitors)}</td><td class="n">${num(r.pageviews)}</td>
      </tr>`)}</tbody>
    </table>`;
  };
  return html`<${Panel} title=${group.title} state=${s} actions=${tabs} body=${body} />`;
}

/* ------------------------------------------------------- behavioural */

function Sessions({ view }) {
  const s = partOf(view, (d) => d.sessions);
  return html`<${Panel} title="Sessions" state=${s} quiet body=${(d) => html`<dl class="stats">
    <div><dt>Sessions</dt><dd>${num(d.total_sessions)}</dd></div>
    <div><dt>Avg. duration</dt><dd>${dur(d.avg_session_duration_secs)}</dd></div>
    <div><dt>Pages / session</dt><dd>${dec(d.avg_pages_per_session)}</dd></div>
    <div><dt>Bounce rate</dt><dd>${pct(d.bounce_rate)}</dd></div>
  </dl>`} />`;
}

const DEFAULT_STEPS = 'page:/,page:/pricing,event:signup';

function Funnel({ params, ready }) {
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

function Retention({ params, ready }) {
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

function Flow({ params, ready }) {
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

/* ---------------------------------------------------------- dashboard */

function Dashboard({ auth, recheck }) {
  const [st, setSt] = useState(readUrl);
  const [tick, setTick] = useState(0);
  const replace = useRef(true);
  const sites = useApi('api/sites');

  useEffect(() => {
    const onPop = () => { replace.current = true; setSt(readUrl()); };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    const next = urlSearch(st);
    if (next !== window.location.search) {
      if (replace.current) window.history.replaceState(null, '', next);
      else window.history.pushState(null, '', next);
    }
    replace.current = false;
  }, [st]);
  useEffect(() => {
    const list = sites.data && Array.isArray(sites.data.sites) ? sites.data.sites : [];
    if (!st.site && list.length) { replace.current = true; setSt((s) => ({ ...s, site: String(list[0]) })); }
  }, [sites.data]);

  const update = (patch) => setSt((s) => ({ ...s, ...patch }));
  const setFilters = (filters) => update({ filters });
  const addFilter = (dim, value) => setSt((s) => ({
    ...s, filters: [...s.filters.filter((f) => f.dim !== dim), { dim, op: '==', value }],
  }));
  const logout = async () => {
    try { await request('api/auth/logout', { method: 'POST' }); } catch { /* status decides */ }
    recheck();
  };
  const params = statParams(st);
  // The first screen in one request: main, timeseries, sessions and each panel's first tab.
  const view = useApi(st.site ? 'api/stats/view' : null, {
    ...params, limit: 10, breakdowns: GROUPS.map((g) => g.tabs[0][0]).join(','),
  });
  const noSites = sites.data && Array.isArray(sites.data.sites) && !sites.data.sites.length;

  return html`<${Reload.Provider} value=${tick}>
    <header class="top">
      <div class="brand"><img src="favicon.svg" alt="" width="22" height="22" /><span>mallard</span></div>
      <${SitePicker} sites=${sites} site=${st.site} onPick=${(site) => update({ site })} />
      <${PeriodPicker} st=${st} update=${update} />
      <span class="spacer"></span>
      <button class="ghost" title="Reload every panel" aria-label="Reload" onClick=${() => setTick((t) => t + 1)}>↻</button>
      ${!auth.setup_required && html`<button class="ghost" onClick=${logout}>Sign out</button>`}
    </header>
    ${auth.setup_required && html`<${SetupBanner} auth=${auth} onDone=${recheck} />`}
    <main>
      ${!st.site ? html`<p class="notice">${noSites
        ? 'No site has sent events yet. Add the tracker to a page, or type a site id above.'
        : 'Choose a site above.'}</p>` : html`
        <${Chips} filters=${st.filters} setFilters=${setFilters} />
        <${Guard}><${Cards} view=${view} /><//>
        <${Guard}><${Chart} params=${params} view=${view} /><//>
        <div class="grid">
          ${GROUPS.map((g) => html`<${Guard} key=${g.title}><${Breakdown} group=${g} params=${params} view=${view} addFilter=${addFilter} /><//>`)}
        </div>
        <h2 class="section">Behaviour</h2>
        <div class="grid">
          <${Guard}><${Sessions} view=${view} /><//>
          <${Guard}><${Flow} params=${params} ready=${!view.loading} /><//>
          <${Guard}><${Funnel} params=${params} ready=${!view.loading} /><//>
          <${Guard}><${Retention} params=${params} ready=${!view.loading} /><//>
        </div>`}
    </main>
    <footer>mallard · cookieless analytics · times are UTC</footer>
  <//>`;
}

/* ---------------------------------------------------------------- app */

function App() {
  const [auth, setAuth] = useState(null);
  const [err, setErr] = useState(null);
  const checking = useRef(false);
  const check = () => {
    if (checking.current) return;
    checking.current = true;
    request('api/auth/status').then(
      (a) => { checking.current = false; setErr(null); setAuth(a || {}); },
      (e) => { checking.current = false; setErr(e); },
    );
  };
  useEffect(() => {
    onUnauthorized = check;
    check();
  }, []);

  if (err && !auth) {
    return html`<main class="center"><div class="card auth">
      <p class="error" role="alert">Cannot load the dashboard: ${err.message}</p>
      <button onClick=${check}>Retry</button></div></main>`;
  }
  if (!auth) return html`<main class="center"><p class="muted">Loading…</p></main>`;
  if (!auth.authenticated && !auth.setup_required) return html`<${Login} onDone=${check} />`;
  if (!auth.authenticated) {
    return html`<main class="center"><div class="card auth">
      <h1><img src="favicon.svg" alt="" width="28" height="28" /> mallard</h1>
      <p><strong>No admin password set — set one to protect this dashboard.</strong></p>
      <p class="muted">${auth.loopback_only
        ? 'Until a password exists, stats are readable only from the server itself (loopback).'
        : 'Stats are not readable from here yet.'}</p>
      <${SetupForm} onDone=${check} />
    </div></main>`;
  }
  return html`<${Dashboard} auth=${auth} recheck=${check} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
