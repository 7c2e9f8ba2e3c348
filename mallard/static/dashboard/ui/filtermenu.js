// The filter menu: a dimension (or a custom property key), an operator (is / is not / contains) and one
// or several values, suggested from the data as the text is typed.
import { html, useState, useEffect, useRef } from './html.js';
import { useApi } from './api.js';
import { num } from './format.js';
import { DIMS, OPS, PROP, isProp, v2Dim } from './filters.js';

const PROP_KEY = /^[A-Za-z0-9_. :$-]{1,128}$/;

// The dimension's most frequent values containing `text` (any case) in the range: the stats
// breakdown route, so the values are written as the stats routes read them (a region's name, say).
function useSuggestions(site, range, dim, text) {
  const [q, setQ] = useState(text);
  useEffect(() => {
    const id = setTimeout(() => setQ(text), 150);
    return () => clearTimeout(id);
  }, [text]);
  const name = v2Dim(dim);
  const path = site && name ? `api/stats/breakdown/${encodeURIComponent(name).replace(/%3A/g, ':')}` : null;
  const dates = range ? { start_date: range.start_date, end_date: range.end_date } : { period: '30d' };
  const s = useApi(path, {
    site_id: site, ...dates, limit: 20,
    filters: q.trim() ? JSON.stringify([['contains', name, [q.trim()], { case_sensitive: false }]]) : undefined,
  });
  return !s.loading && Array.isArray(s.data) ? s.data : [];  // never a previous dimension's values
}

export function FilterMenu({ site, range, initial, onSave, onClose }) {
  const start = initial || { dim: 'pages', op: '==', values: [] };
  const [dim, setDim] = useState(isProp(start.dim) ? 'prop' : start.dim);
  const [key, setKey] = useState(isProp(start.dim) ? start.dim.slice(PROP.length) : '');
  const [op, setOp] = useState(start.op);
  const [values, setValues] = useState(start.values);
  const [text, setText] = useState('');
  // The chosen values and the typed text as of the last event, not of the last render: a click on a
  // suggestion then on Apply (or Enter) before Preact renders again must save the value picked, not the
  // text typed before it (handlers of the previous render see the previous state).
  const live = useRef({ values: start.values, text: '' });
  const choose = (vs, t) => { live.current = { values: vs, text: t }; setValues(vs); setText(t); };
  const first = useRef(null);
  useEffect(() => { if (first.current) first.current.focus(); }, []);
  const full = dim === 'prop' ? (PROP_KEY.test(key.trim()) ? PROP + key.trim() : '') : dim;
  const rows = useSuggestions(site, range, full, text);
  const add = (v) => {
    const t = String(v).trim();
    const vs = live.current.values;
    choose(t && !vs.includes(t) ? [...vs, t] : vs, '');
  };
  const withText = (vs, t) => (t.trim() && !vs.includes(t.trim()) ? [...vs, t.trim()] : vs);
  const all = withText(values, text);
  const apply = (e) => {
    e.preventDefault();
    const chosen = withText(live.current.values, live.current.text);
    if (full && chosen.length) onSave({ dim: full, op, values: chosen });
  };
  const onKey = (e) => { if (e.key === 'Escape') { e.preventDefault(); onClose(); } };
  return html`<form class="menu filter-menu" role="dialog" aria-label="Add a filter" onSubmit=${apply}
    onKeyDown=${onKey}>
    <div class="menu-row">
      <select aria-label="Dimension" ref=${first} value=${dim}
        onChange=${(e) => { setDim(e.currentTarget.value); choose([], ''); }}>
        ${DIMS.map(([k, label]) => html`<option value=${k}>${label}</option>`)}
        <option value="prop">Property…</option>
      </select>
      ${dim === 'prop' && html`<input aria-label="Property key" placeholder="key, e.g. plan" value=${key}
        onInput=${(e) => { setKey(e.currentTarget.value); choose([], live.current.text); }} />`}
      <select aria-label="Operator" value=${op} onChange=${(e) => setOp(e.currentTarget.value)}>
        ${OPS.map(([o, label]) => html`<option value=${o}>${label}</option>`)}
      </select>
    </div>
    ${values.length > 0 && html`<div class="menu-row chosen" aria-label="Chosen values">
      ${values.map((v) => html`<span class="chip" key=${v}><span class="chip-main">${v}</span>
        <button type="button" class="chip-x" aria-label=${`Remove value ${v}`}
          onClick=${() => choose(live.current.values.filter((x) => x !== v), live.current.text)}>×</button></span>`)}
    </div>`}
    <div class="menu-row">
      <input aria-label="Value" placeholder=${values.length ? 'Another value (any of them)' : 'Value'}
        value=${text} onInput=${(e) => choose(live.current.values, e.currentTarget.value)}
        onKeyDown=${(e) => {
          if (e.key === 'Enter' && live.current.text.trim()) { e.preventDefault(); add(live.current.text); }
        }} />
    </div>
    ${rows.length > 0 && html`<ul class="suggestions" aria-label="Suggestions">
      ${rows.filter((r) => !values.includes(String(r.value))).slice(0, 10).map((r) => html`<li key=${String(r.value)}>
        <button type="button" class="ghost suggestion" onClick=${() => add(r.value)}>
          <span class="row-text">${String(r.value)}</span><span class="muted">${num(r.visitors)}</span></button></li>`)}
    </ul>`}
    <div class="menu-row">
      <button type="submit" disabled=${!full || !all.length}>${initial ? 'Update filter' : 'Apply filter'}</button>
      <button type="button" class="ghost" onClick=${onClose}>Cancel</button>
    </div>
  </form>`;
}
