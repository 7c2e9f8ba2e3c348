// What the cards and the chart compare with: the previous period (the default) or the same dates a
// year before. Kept in the URL as `comparison=year_over_year`.
import { html } from './html.js';
import { COMPARISONS, comparisonOf } from './periods.js';

export { COMPARISONS, comparisonOf, comparedLabel } from './periods.js';

export function CompareToggle({ st, update }) {
  const mode = comparisonOf(st);
  return html`<div class="compare" role="group" aria-label="Compare with">
    <span class="muted small">Compare with</span>
    ${COMPARISONS.map(([v, label]) => html`<button type="button" key=${v} aria-pressed=${v === mode ? 'true' : 'false'}
      class=${v === mode ? 'cmp on' : 'cmp'} onClick=${() => update({ comparison: v })}>${label}</button>`)}
  </div>`;
}
