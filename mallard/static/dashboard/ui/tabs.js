// A row of tabs as WAI-ARIA describes them: role=tablist/tab, one tab in the Tab order (the selected
// one), ArrowLeft/ArrowRight (wrapping), Home and End move between tabs and pick them. `controls`: the id
// of the element the tabs change (each tab's aria-controls); with `prefix`, tab `slug` has the id
// `${prefix}-${slug}` (a role=tabpanel names itself after the selected one: tabId(prefix, value)).
import { html, useRef } from './html.js';

export const tabId = (prefix, slug) => `${prefix}-${slug}`;

export function Tabs({ tabs, value, onPick, label, prefix, controls }) {
  const box = useRef(null);
  const move = (e) => {
    const i = tabs.findIndex(([slug]) => slug === value);
    const n = tabs.length;
    const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    onPick(tabs[to][0]);
    const el = box.current && box.current.querySelectorAll('[role=tab]')[to];
    if (el) el.focus();
  };
  return html`<div class="tabs" role="tablist" aria-label=${label} ref=${box} onKeyDown=${move}>
    ${tabs.map(([slug, text]) => html`<button type="button" role="tab" key=${slug}
      id=${prefix ? tabId(prefix, slug) : undefined} aria-controls=${controls}
      aria-selected=${slug === value ? 'true' : 'false'} tabindex=${slug === value ? 0 : -1}
      class=${slug === value ? 'tab on' : 'tab'} onClick=${() => onPick(slug)}>${text}</button>`)}
  </div>`;
}
