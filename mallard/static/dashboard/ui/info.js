// What the server says about a site before it is drawn (api/stats/info): which location levels GeoIP
// fills, the longest custom range, the caller's access. Panels use it to say "GeoIP not configured"
// instead of a wall of "(unknown)", and the range picker to refuse a range the API would answer 400.
import { html } from './html.js';
import { useApi } from './api.js';

// Where the documentation of the GeoIP settings is read (no docs are served by mallard itself).
// Where the docs say how (the dashboard links nowhere outside the server: test_dashboard_files).
export const GEOIP_DOCS = 'docs/concepts.md#location';
const LEVEL_OF_TAB = { countries: 'country', regions: 'region', cities: 'city' };

export const useInfo = (site) => useApi(site ? 'api/stats/info' : null, { site_id: site });

// True when the caller may use the Admin routes (Settings): a login or an Admin key.
export const isAdmin = (info) => !!info.data && info.data.access === 'admin';

// For a breakdown tab: a note replacing its rows when its location level is not filled, else null.
export function geoHint(info) {
  const levels = info.data && info.data.geoip && Array.isArray(info.data.geoip.levels) ? info.data.geoip.levels : null;
  return (tab) => {
    const level = LEVEL_OF_TAB[tab];
    if (!levels || !level || levels.includes(level)) return null;
    return html`<div class="geo-hint" role="note"><p><strong>GeoIP not configured</strong> for ${level === 'city' ? 'cities' : 'regions'}.</p>
      <p class="small muted">Events get only ${levels.length ? levels.join(', ') : 'no location'} here. Set
        <code>geoip_db_path</code> (<code>MALLARD_GEOIP_DB_PATH</code>) to a MaxMind City database:
        see <code>${GEOIP_DOCS}</code> in mallard's docs.</p></div>`;
  };
}

// Days from `from` to `to` (YYYY-MM-DD, UTC calendar arithmetic).
export const spanDays = (from, to) => Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000);

// The error text for a custom range longer than the server allows, else ''.
export function rangeError(from, to, maxDays) {
  if (!maxDays || spanDays(from, to) <= maxDays) return '';
  return `A custom range may span at most ${maxDays} days (this one spans ${spanDays(from, to)}). Pick a shorter range.`;
}
