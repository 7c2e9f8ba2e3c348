// Funnel and sequence steps: the text form the routes take ("page:/,event:signup"), and an editor that
// adds, removes and reorders them, with suggestions from the data (Stats API v2, `contains` + limit).
import { html, useState, useEffect } from './html.js';
import { useApi } from './api.js';
import { FormError } from './widgets.js';

export const DEFAULT_STEPS = 'page:/,page:/pricing,event:signup';
// The funnel route's default window (a URL without window= reads this).
export const DEFAULT_WINDOW = '1 day';
const KINDS = [['page', 'Page'], ['event', 'Event']];
const DIMENSION = { page: 'event:page', event: 'event:name' };

export const parseSteps = (text) => String(text || '').split(',').map((x) => x.trim()).filter(Boolean)
  .map((x) => {
    const i = x.indexOf(':');
    const kind = x.slice(0, i);
    return KINDS.some(([k]) => k === kind) ? { kind, value: x.slice(i + 1).trim() } : null;
  })
  .filter((s) => s && s.value);
export const stepsText = (steps) => steps.map((s) => `${s.kind}:${s.value.trim()}`).join(',');
export const stepLabel = (label) => String(label || '').replace(/^page:/, '').replace(/^event:/, '');

// Values of `kind` containing `text` in the period of `params`, most visitors first (custom events only
// for `event`: a pageview is a page step).
function useSuggestions(params, kind, text) {
  const on = params.site_id && text !== null;
  const filters = [...(text ? [['contains', DIMENSION[kind], [text]]] : []),
    ...(kind === 'event' ? [['is_not', 'event:name', ['pageview', 'engagement']]] : [])];
  const body = on ? {
    site_id: params.site_id, metrics: ['visitors'], dimensions: [DIMENSION[kind]],
    date_range: params.period || [params.start_date, params.end_date], filters,
    order_by: [['visitors', 'desc']], pagination: { limit: 10 },
  } : undefined;
  const s = useApi(on ? 'api/v2/query' : null, null, { body });
  return s.data && Array.isArray(s.data.results) ? s.data.results.map((r) => String(r.dimensions[0])) : [];
}

function StepRow({ step, i, n, id, params, change, move, remove }) {
  const [focused, setFocused] = useState(false);
  const list = useSuggestions(params, step.kind, focused ? step.value.trim() : null);
  return html`<li class="step-row">
    <span class="step-no" aria-hidden="true">${i + 1}</span>
    <select aria-label=${`Step ${i + 1} kind`} value=${step.kind}
      onChange=${(e) => change(i, { ...step, kind: e.currentTarget.value })}>
      ${KINDS.map(([k, label]) => html`<option value=${k}>${label}</option>`)}
    </select>
    <input class="step-value" aria-label=${`Step ${i + 1} ${step.kind === 'page' ? 'page path' : 'event name'}`}
      list=${id} value=${step.value} placeholder=${step.kind === 'page' ? '/pricing' : 'signup'}
      onFocus=${() => setFocused(true)} onBlur=${() => setFocused(false)}
      onInput=${(e) => change(i, { ...step, value: e.currentTarget.value })} />
    <datalist id=${id}>${list.map((v) => html`<option value=${v}></option>`)}</datalist>
    <span class="step-tools">
      <button type="button" class="ghost" aria-label=${`Move step ${i + 1} up`} disabled=${i === 0} onClick=${() => move(i, -1)}>↑</button>
      <button type="button" class="ghost" aria-label=${`Move step ${i + 1} down`} disabled=${i === n - 1} onClick=${() => move(i, 1)}>↓</button>
      <button type="button" class="ghost" aria-label=${`Remove step ${i + 1}`} disabled=${n <= 1} onClick=${() => remove(i)}>✕</button>
    </span>
  </li>`;
}

// The editor of `value` (steps text); `onRun(text)` when submitted with valid steps. `min`: fewest steps.
export function StepsEditor({ name, value, params, onRun, min = 2, children }) {
  const [steps, setSteps] = useState(() => parseSteps(value));
  const [err, setErr] = useState('');
  useEffect(() => setSteps(parseSteps(value)), [value]);
  const change = (i, s) => setSteps((list) => list.map((x, j) => (j === i ? s : x)));
  const move = (i, d) => setSteps((list) => {
    const out = [...list];
    [out[i], out[i + d]] = [out[i + d], out[i]];
    return out;
  });
  const remove = (i) => setSteps((list) => list.filter((_, j) => j !== i));
  const add = () => setSteps((list) => [...list, { kind: 'page', value: '' }]);
  const run = (e) => {
    e.preventDefault();
    const kept = steps.filter((s) => s.value.trim());
    if (kept.length < min) { setErr(`Give at least ${min} steps.`); return; }
    if (kept.some((s) => s.value.includes(','))) { setErr('A step cannot contain a comma.'); return; }
    setErr('');
    onRun(stepsText(kept));
  };
  return html`<form class="steps" onSubmit=${run} aria-label=${`${name} steps`}>
    <ol class="step-list">${steps.map((s, i) => html`<${StepRow} key=${i} step=${s} i=${i} n=${steps.length}
      id=${`${name}-suggest-${i}`} params=${params} change=${change} move=${move} remove=${remove} />`)}</ol>
    <div class="step-actions">
      <button type="button" class="ghost" onClick=${add} disabled=${steps.length >= 32}>+ Add step</button>
      ${children}
      <button type="submit">Show</button>
    </div>
    <${FormError} text=${err} />
  </form>`;
}
