// The header's site and period pickers (the filter bar: filterbar.js).
import { html, useState, useEffect } from './html.js';
import { isoDay } from './format.js';
import { PERIODS, DATE_RE } from './url.js';
import { rangeError } from './info.js';

export function SitePicker({ sites, site, onPick }) {
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

const KEYS_HINT = `Keyboard: ${PERIODS.map(([, label, key]) => `${key.toUpperCase()} ${label.replace('…', '')}`)
  .join(', ')}; Esc clears the filters`;

// `openCustom` goes up when the custom range should open (the C shortcut); `maxDays`: the longest range
// the server answers (api/stats/info), refused here rather than sent for a 400.
export function PeriodPicker({ st, update, openCustom = 0, maxDays }) {
  const [mode, setMode] = useState(st.period);
  const [from, setFrom] = useState(st.from || isoDay(-30));
  const [to, setTo] = useState(st.to || isoDay(0));
  const [err, setErr] = useState('');
  useEffect(() => {
    setMode(st.period);
    if (st.from) setFrom(st.from);
    if (st.to) setTo(st.to);
  }, [st.period, st.from, st.to]);
  useEffect(() => { if (openCustom) setMode('custom'); }, [openCustom]);
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
    else if (rangeError(from, to, maxDays)) setErr(rangeError(from, to, maxDays));
    else { setErr(''); update({ period: 'custom', from, to }); }
  };
  return html`<div class="period">
    <select aria-label="Period" value=${mode} onChange=${choose} title=${KEYS_HINT}
      aria-keyshortcuts=${PERIODS.map((p) => p[2]).join(' ')}>
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
    ${err && html`<span class="error" role="alert">${err}</span>`}
  </div>`;
}
