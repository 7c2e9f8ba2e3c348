// How a breakdown value reads: countries as a flag and a name (from the ISO code, in the browser: no
// image, no download), screen widths in px, a missing value as a muted "(unknown)".
import { html } from './html.js';

export const UNKNOWN = new Set(['(unknown)', '(none)', '(not set)', '']);
export const isUnknown = (v) => v == null || UNKNOWN.has(String(v));

// The emoji flag of a two-letter ISO 3166-1 code: its letters as regional-indicator symbols.
export function flag(code) {
  const c = String(code || '').toUpperCase();
  if (!/^[A-Z]{2}$/.test(c)) return '';
  return String.fromCodePoint(...[...c].map((ch) => 0x1f1e6 + ch.charCodeAt(0) - 65));
}

let regionNames = null;
export function countryName(code) {
  const c = String(code || '').toUpperCase();
  try {
    regionNames = regionNames || new Intl.DisplayNames(['en'], { type: 'region' });
    const name = /^[A-Z]{2}$/.test(c) ? regionNames.of(c) : '';
    return name && name !== c ? name : c;
  } catch {
    return c;
  }
}

// The text a value is shown with (also what the browser tests compare against the API).
export function valueText(dim, value) {
  if (isUnknown(value)) return '(unknown)';
  const v = String(value);
  if (dim === 'countries') return `${flag(v)} ${countryName(v)}`.trim();
  if (dim === 'screen-sizes' && /^\d+$/.test(v)) return `${v} px`;
  return v;
}

export function Value({ dim, value }) {
  if (isUnknown(value)) return html`<span class="unknown">(unknown)</span>`;
  if (dim === 'countries') {
    return html`<span title=${String(value)}><span class="flag" aria-hidden="true">${flag(value)}</span> ${countryName(value)}</span>`;
  }
  return valueText(dim, value);
}
