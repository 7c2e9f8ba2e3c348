// Number, rate, duration and date formatting.

export const intFmt = new Intl.NumberFormat();
export const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
export const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
export const num = (n) => (isNum(n) ? (Math.abs(n) >= 100000 ? compactFmt : intFmt).format(n) : '—');
export const pct = (r) => (isNum(r) ? `${(r * 100).toFixed(1)}%` : '—');
export const pct0 = (r) => (isNum(r) ? `${Math.round(r * 100)}%` : '—');
export const dec = (x, d = 2) => (isNum(x) ? x.toFixed(d) : '—');
export const dur = (s) => {
  if (!isNum(s)) return '—';
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
};
export const range = (n) => Array.from({ length: n }, (_, i) => i);
export const isoDay = (offsetDays) => new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);

export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export function dateLabel(d, n, interval) {
  const s = String(d);
  if (interval === 'month') return `${MONTHS[+s.slice(5, 7) - 1] || s} ${s.slice(2, 4)}`; // "Mar 24"
  if (s.length > 10) return s.slice(11, 16); // "2024-03-01 13:00" -> "13:00"
  const [y, m, day] = s.split('-');
  if (!day) return `${MONTHS[+m - 1] || m} ${y.slice(2)}`; // "2024-03"
  return n > 400 ? `${MONTHS[+m - 1] || m} ${y.slice(2)}` : `${MONTHS[+m - 1] || m} ${+day}`;
}

// A change against the comparison period: "↑ 12%", "↓ 3%", "0%"; in points (bounce rate) "↑ 4.5 pts".
export function changeText(c, points) {
  if (!isNum(c)) return '—';
  const size = points ? `${Math.abs(c).toFixed(1)} pts` : `${Math.abs(c)}%`;
  return `${c > 0 ? '↑ ' : c < 0 ? '↓ ' : ''}${size}`;
}
