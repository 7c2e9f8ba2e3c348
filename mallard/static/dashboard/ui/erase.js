// Settings → Sites: "Erase this site's data", every stored event of a site, after the site's domain is
// typed. The erase route takes at most MAX_DAYS + 1 days a call, so the span from the site's first
// stored day to tomorrow (UTC; a day of margin for clocks) is erased in consecutive ranges.
import { html, useState } from './html.js';
import { FormError } from './widgets.js';
import { act, del } from './admin.js';

const DAY = 86400000;
const MAX_DAYS = 366; // the erase route's longest range (end - start), as the stats routes' max_range_days
const iso = (ms) => new Date(ms).toISOString().slice(0, 10);

// [start, end] pairs (YYYY-MM-DD, inclusive) covering `first` (YYYY-MM-DD or null) .. tomorrow, UTC.
export function eraseRanges(first, now = Date.now()) {
  const today = Math.floor(now / DAY) * DAY;
  const from = first ? Math.min(Date.parse(`${first}T00:00:00Z`), today - DAY) : today - DAY;
  const out = [];
  for (let s = from; s <= today + DAY; s += (MAX_DAYS + 1) * DAY) {
    out.push([iso(s), iso(Math.min(s + MAX_DAYS * DAY, today + DAY))]);
  }
  return out;
}

// `first`: the site's first stored day; `onErased()` after the last range is erased.
export function EraseSite({ site, first, onErased }) {
  const [typed, setTyped] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  const erase = act(setErr, async () => {
    setBusy(true);
    setDone('');
    let partitions = 0;
    try {
      for (const [start_date, end_date] of eraseRanges(first)) {
        const r = await del('api/gdpr/erase', { site_id: site, start_date, end_date });
        partitions += (r && r.parquet_partitions_deleted) || 0;
      }
    } finally {
      setBusy(false);
    }
    return partitions;
  }, (partitions) => {
    setTyped('');
    setDone(`Erased every event of ${site} (${partitions} day${partitions === 1 ? '' : 's'} of stored data).`);
    onErased();
  });
  return html`<form class="inline erase" onSubmit=${erase} aria-label="Erase this site's data">
    <p class="small">Deletes every stored event of <strong>${site}</strong>, on every date, for every worker
      of this server. This cannot be undone. Type <code>${site}</code> to confirm.</p>
    <label class="grow">Site to erase<input value=${typed} autocomplete="off" spellcheck="false"
      onInput=${(e) => setTyped(e.currentTarget.value)} /></label>
    <button type="submit" class="danger" disabled=${busy || typed.trim() !== site}>${busy ? 'Erasing…' : "Erase this site's data"}</button>
    ${done && html`<p class="small" role="status">${done}</p>`}
    <${FormError} text=${err} />
  </form>`;
}
