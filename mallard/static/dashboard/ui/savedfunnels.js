// The Funnel panel's saved funnels (/api/v1/sites/funnels): a select of the site's saved funnels
// (choosing one puts its steps and window in the page URL, as the editor does); for an Admin, "Save as…"
// (the funnel shown, under a name) and "Delete" (after a confirmation in place). Listing is a read
// route: a shared link and a read-only key see the list. Errors of the API are shown here.
import { html, useState } from './html.js';
import { request } from './api.js';
import { FormError } from './widgets.js';
import { useList, act, del } from './admin.js';
import { DEFAULT_WINDOW } from './steps.js';

const stepsOf = (f) => f.steps.join(',');
// The saved funnel drawn now: `chosen` while it still matches the URL's steps and window, else the
// first that does (a reload, or steps typed by hand that equal a saved funnel), else none.
const shownOf = (list, chosen, steps, win) => {
  const same = (f) => stepsOf(f) === steps && f.window === win;
  return list.find((f) => f.id === chosen && same(f)) || list.find(same) || null;
};

// `on`: ask for the list (the panel is shown).
export function SavedFunnels({ on, site, steps, win, admin, update }) {
  const [state, reload] = useList(on ? 'api/v1/sites/funnels' : null, { site_id: site, limit: 100 });
  const [chosen, setChosen] = useState('');
  const [mode, setMode] = useState(''); // '', 'save' or 'delete'
  const [name, setName] = useState('');
  const [err, setErr] = useState('');
  const list = state.data && Array.isArray(state.data.funnels) ? state.data.funnels : [];
  const window_ = (win || DEFAULT_WINDOW).trim();
  const shown = shownOf(list, chosen, steps, window_);
  const pick = (id) => {
    const f = list.find((x) => x.id === id);
    setMode('');
    setErr('');
    setChosen(id);
    if (f) update({ steps: stepsOf(f), window: f.window === DEFAULT_WINDOW ? '' : f.window });
  };
  const save = act(setErr, () => request('api/v1/sites/funnels', {
    method: 'POST', body: { site_id: site, name: name.trim(), steps: steps.split(','), window: window_ },
  }), (f) => { setChosen(f.id); setName(''); setMode(''); reload(); });
  const remove = act(setErr, () => del(`api/v1/sites/funnels/${encodeURIComponent(shown.id)}`, { site_id: site }),
    () => { setChosen(''); setMode(''); reload(); });
  const toggle = (m) => { setErr(''); setMode(mode === m ? '' : m); };
  return html`<div class="saved-funnels">
    <div class="saved-row">
      <label class="saved-pick">Saved funnel
        <select value=${shown ? shown.id : ''} disabled=${!list.length} onChange=${(e) => pick(e.currentTarget.value)}>
          <option value="">${state.loading && !state.data ? 'Loading…' : list.length ? 'Unsaved funnel' : 'None saved yet'}</option>
          ${list.map((f) => html`<option key=${f.id} value=${f.id}>${f.name}</option>`)}
        </select></label>
      ${admin && html`<button type="button" class="ghost" aria-expanded=${mode === 'save' ? 'true' : 'false'}
        onClick=${() => toggle('save')}>Save as…</button>`}
      ${admin && shown && html`<button type="button" class="ghost" aria-expanded=${mode === 'delete' ? 'true' : 'false'}
        onClick=${() => toggle('delete')}>Delete</button>`}
    </div>
    ${mode === 'save' && html`<form class="saved-row" onSubmit=${save} aria-label="Save the funnel shown">
      <input aria-label="Funnel name" placeholder="Name" required maxlength="120" value=${name}
        onInput=${(e) => setName(e.currentTarget.value)} />
      <button type="submit" disabled=${!name.trim()}>Save</button>
      <button type="button" class="ghost" onClick=${() => setMode('')}>Cancel</button>
    </form>`}
    ${mode === 'delete' && shown && html`<div class="saved-row" role="group" aria-label="Confirm the deletion">
      <span>Delete the saved funnel “${shown.name}”?</span>
      <button type="button" onClick=${remove}>Yes, delete it</button>
      <button type="button" class="ghost" onClick=${() => setMode('')}>Cancel</button>
    </div>`}
    ${state.error && html`<p class="error" role="alert">Saved funnels: ${state.error.message}</p>`}
    <${FormError} text=${err} />
  </div>`;
}
