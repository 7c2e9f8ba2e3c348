// Saved segments (the Sites API, /api/v1/sites/segments, admin): list and apply one (`segment=<id>` in
// the URL, sent as ["is", "segment", [id]]), save the current filters as a named segment, delete one.
import { html, useState, useEffect } from './html.js';
import { request } from './api.js';
import { apiFilters } from './filters.js';
import { FormError } from './widgets.js';

// { list, error, reload } for `site`; asked with request() (not useApi) so that a 401 here, an API that
// needs an admin login, does not send the whole page back to the login form.
// Without `admin` (open mode: no password yet) the API would answer 401: it is not asked.
export function useSegments(site, admin) {
  const [state, setState] = useState({ list: null, error: null });
  const [n, setN] = useState(0);
  useEffect(() => {
    if (!site || !admin) {
      setState({ list: null, error: admin ? null : { status: 401, message: 'Admin login needed.' } });
      return undefined;
    }
    const ctl = new AbortController();
    request('api/v1/sites/segments', { params: { site_id: site, limit: 100 }, signal: ctl.signal }).then(
      (d) => setState({ list: d && Array.isArray(d.segments) ? d.segments : [], error: null }),
      (e) => { if (e.name !== 'AbortError') setState({ list: null, error: e }); },
    );
    return () => ctl.abort();
  }, [site, admin, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

export function SegmentMenu({ st, segments, onApply, onDeleted, onClose }) {
  const [name, setName] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const own = apiFilters({ filters: st.filters });
  const act = async (fn) => {
    setBusy(true);
    setErr('');
    try { await fn(); segments.reload(); } catch (x) { setErr(x.message); }
    setBusy(false);
  };
  const save = (e) => {
    e.preventDefault();
    act(async () => {
      const s = await request('api/v1/sites/segments', { method: 'PUT', body: {
        site_id: st.site, name: name.trim(), segment_data: { filters: own } } });
      setName('');
      if (s && s.id != null) onApply(String(s.id));
    });
  };
  const remove = (s) => act(async () => {
    await request(`api/v1/sites/segments/${s.id}`, { method: 'DELETE', body: { site_id: st.site } });
    onDeleted(String(s.id));
  });
  const denied = segments.error && [401, 403].includes(segments.error.status);
  const onKey = (e) => { if (e.key === 'Escape') { e.preventDefault(); onClose(); } };
  return html`<div class="menu segment-menu" role="dialog" aria-label="Segments" onKeyDown=${onKey}>
    ${denied ? html`<p class="muted">Saved segments need an admin login (set a password first).</p>`
      : segments.error ? html`<p class="error" role="alert">${segments.error.message}</p>`
        : !segments.list ? html`<p class="muted">Loading…</p>`
          : !segments.list.length ? html`<p class="muted">No saved segment yet.</p>`
            : html`<ul class="segments">${segments.list.map((s) => html`<li key=${s.id}>
              <button type="button" class=${String(s.id) === st.segment ? 'ghost seg on' : 'ghost seg'}
                aria-pressed=${String(s.id) === st.segment ? 'true' : 'false'}
                onClick=${() => onApply(String(s.id))}>${s.name}</button>
              <button type="button" class="chip-x ghost" aria-label=${`Delete segment ${s.name}`} disabled=${busy}
                onClick=${() => remove(s)}>×</button></li>`)}</ul>`}
    ${!denied && html`<form class="menu-row" onSubmit=${save}>
      <input aria-label="Segment name" placeholder="Name" required maxlength="255" value=${name}
        onInput=${(e) => setName(e.currentTarget.value)} />
      <button type="submit" disabled=${busy || !own.length || !name.trim()}
        title=${own.length ? '' : 'Add a filter first'}>Save filters as segment</button>
    </form>`}
    <${FormError} text=${err} />
  </div>`;
}
