// The filter bar (a row of the sticky header): the active filters and segment as removable chips, the
// Filter button opening the filter menu, and the segments menu.
import { html, useState, useEffect } from './html.js';
import { dimLabel, opLabel, isDid } from './filters.js';
import { FilterMenu } from './filtermenu.js';
import { SegmentMenu, useSegments } from './segments.js';

const chipText = (f) => `${dimLabel(f.dim)} ${opLabel(f.op)} ${f.values.join(' or ')}`;

// `admin`: the Sites API is open to this page (a password is set and we are logged in).
export function FilterBar({ st, update, range, admin }) {
  // open: null (closed), -1 (a new filter) or the index of the filter being edited
  const [open, setOpen] = useState(null);
  const [segOpen, setSegOpen] = useState(false);
  const segments = useSegments(st.site, admin);
  useEffect(() => { setOpen(null); setSegOpen(false); }, [st.site]);
  const filters = st.filters;
  const setFilters = (fs) => update({ filters: fs });
  const save = (f) => {
    setFilters(open >= 0 ? filters.map((g, j) => (j === open ? f : g))
      : [...filters.filter((g) => !(g.dim === f.dim && g.op === f.op)), f]);
    setOpen(null);
  };
  const seg = st.segment && (segments.list || []).find((s) => String(s.id) === st.segment);
  return html`<div class="filterbar" role="toolbar" aria-label="Filters">
    <button type="button" class="ghost filter-btn" aria-expanded=${open !== null ? 'true' : 'false'}
      aria-haspopup="dialog" onClick=${() => { setSegOpen(false); setOpen(open === null ? -1 : null); }}>+ Filter</button>
    <button type="button" class="ghost segment-btn" aria-expanded=${segOpen ? 'true' : 'false'}
      aria-haspopup="dialog" onClick=${() => { setOpen(null); setSegOpen(!segOpen); }}>Segments</button>
    ${st.segment && html`<span class="chip segment-chip">
      <span class="chip-main">Segment <b>${seg ? seg.name : `#${st.segment}`}</b></span>
      <button class="chip-x" aria-label="Remove the segment" onClick=${() => update({ segment: '' })}>×</button>
    </span>`}
    ${filters.map((f, i) => html`<span class="chip filter-chip" key=${f.dim + f.op + f.values.join('|')}>
      <button class="chip-main" aria-label=${`Edit filter: ${chipText(f)}`}
        title=${isDid(f.dim) ? 'Visits in which this happened (their pageviews, pages, sources…)' : 'Edit'}
        onClick=${() => { setSegOpen(false); setOpen(i); }}>${dimLabel(f.dim)} ${opLabel(f.op)} <b>${f.values.join(' or ')}</b></button>
      <button class="chip-x" aria-label=${`Remove filter: ${chipText(f)}`}
        onClick=${() => { setOpen(null); setFilters(filters.filter((_, j) => j !== i)); }}>×</button>
    </span>`)}
    ${(filters.length > 1 || (filters.length && st.segment)) && html`<button class="link"
      onClick=${() => update({ filters: [], segment: '' })}>Clear all</button>`}
    ${open !== null && html`<${FilterMenu} key=${open} site=${st.site} range=${range}
      initial=${open >= 0 ? filters[open] : null} onSave=${save} onClose=${() => setOpen(null)} />`}
    ${segOpen && html`<${SegmentMenu} st=${st} segments=${segments}
      onApply=${(id) => { update({ segment: id }); setSegOpen(false); }}
      onDeleted=${(id) => { if (id === st.segment) update({ segment: '' }); }}
      onClose=${() => setSegOpen(false)} />`}
  </div>`;
}
