// The Settings view for Admins (reached from the header, never shown to read-only or shared access):
// goals, API keys, shared links and sites, as tabs (arrow keys move between them).
import { html, useState, useRef } from './html.js';
import { Guard } from './widgets.js';
import { GoalsSettings } from './goalsettings.js';
import { KeysSettings } from './apikeys.js';
import { LinksSettings } from './links.js';
import { SitesSettings } from './sitesettings.js';

const TABS = [['goals', 'Goals'], ['keys', 'API keys'], ['links', 'Shared links'], ['sites', 'Sites']];

// `onSite(site)`: make `site` the page's site (Settings → Sites, "Manage").
export function SettingsView({ site, onClose, onSite }) {
  const [tab, setTab] = useState(TABS[0][0]);
  const list = useRef(null);
  const onKey = (e) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
    if (!step) return;
    e.preventDefault();
    const i = (TABS.findIndex(([t]) => t === tab) + step + TABS.length) % TABS.length;
    setTab(TABS[i][0]);
    const next = list.current && list.current.querySelectorAll('[role=tab]')[i];
    if (next) next.focus();
  };
  return html`<section class="settings" aria-label="Settings">
    <div class="settings-head"><h2>Settings${site ? html` · <span class="muted">${site}</span>` : ''}</h2>
      <button class="ghost" onClick=${onClose}>Back to the dashboard</button></div>
    <div class="tabs settings-tabs" role="tablist" aria-label="Settings sections" ref=${list} onKeyDown=${onKey}>
      ${TABS.map(([t, label]) => html`<button role="tab" id=${`tab-${t}`} aria-controls="settings-panel"
        aria-selected=${t === tab ? 'true' : 'false'} tabIndex=${t === tab ? 0 : -1}
        class=${t === tab ? 'tab on' : 'tab'} onClick=${() => setTab(t)}>${label}</button>`)}
    </div>
    <div id="settings-panel" role="tabpanel" aria-labelledby=${`tab-${tab}`}>
      <${Guard}>${tab === 'keys' ? html`<${KeysSettings} />`
        : tab === 'sites' ? html`<${SitesSettings} site=${site} onPick=${onSite} />`
        : !site ? html`<p class="notice">Choose a site above first.</p>`
          : tab === 'goals' ? html`<${GoalsSettings} site=${site} key=${site} />` : html`<${LinksSettings} site=${site} key=${site} />`}<//>
    </div>
  </section>`;
}
