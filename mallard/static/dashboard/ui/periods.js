// The chart's comparison and interval as the URL states them (`comparison=`, `interval=`); their
// switchers: compare.js, interval.js.
export const COMPARISONS = [['previous_period', 'Previous period'], ['year_over_year', 'Year over year']];
export const comparisonOf = (st) => (COMPARISONS.some(([v]) => v === st.comparison) ? st.comparison : COMPARISONS[0][0]);
// The chart legend's name for the compared series.
export const comparedLabel = (mode) => (mode === 'year_over_year' ? 'A year before' : 'Previous period');

export const INTERVALS = [['hour', 'Hours'], ['day', 'Days'], ['week', 'Weeks'], ['month', 'Months']];

// Days a custom range covers (both ends inclusive).
const spanDays = (from, to) => Math.round((Date.parse(to) - Date.parse(from)) / 86400000) + 1;

// The intervals that give a readable chart for the URL state's range, finest first.
export function intervalsFor(st) {
  const days = {
    day: 1, '7d': 8, '30d': 31, month: 31, '90d': 91, '12mo': 366, year: 366, all: 1000,
  }[st.period] ?? (st.period === 'custom' && st.from && st.to ? spanDays(st.from, st.to) : 31);
  const ok = [];
  if (days <= 8) ok.push('hour');
  if (days >= 2) ok.push('day');
  if (days >= 14) ok.push('week');
  if (days >= 60) ok.push('month');
  return ok;
}

// The interval in use: the URL's when the range allows it, else hours for one day and days otherwise.
export function intervalOf(st) {
  const ok = intervalsFor(st);
  if (ok.includes(st.interval)) return st.interval;
  return ok.includes('day') ? 'day' : ok[0];
}
