// The chart's interval switcher (hour, day, week, month; which ones a range allows and the one in use:
// periods.js). Kept in the URL as `interval=`; one the range does not allow falls back to the default.
import { html } from './html.js';
import { Tabs } from './tabs.js';
import { INTERVALS, intervalsFor, intervalOf } from './periods.js';

export { INTERVALS, intervalsFor, intervalOf } from './periods.js';

export function IntervalPicker({ st, update }) {
  const ok = intervalsFor(st);
  if (ok.length < 2) return null;
  return html`<${Tabs} tabs=${INTERVALS.filter(([v]) => ok.includes(v))} value=${intervalOf(st)}
    onPick=${(interval) => update({ interval })} label="Chart interval" controls="chart-box" />`;
}
