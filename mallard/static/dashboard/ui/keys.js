// Keyboard shortcuts, as Plausible's: a period's letter (D today, W last 7 days, T last 30 days, ...,
// R realtime, C custom range) and Esc to clear the filters; ignored while typing (in a field, or
// composing with an IME) and with Ctrl, Alt or Meta held (Shift is allowed, as there). A focused
// <select> counts as typing here: its own letters pick an option.
import { useEffect, useRef } from './html.js';

const TYPING = new Set(['INPUT', 'TEXTAREA', 'SELECT']);

export const isTyping = (e) => {
  const t = e.target;
  return e.isComposing || e.keyCode === 229 || (!!t && (TYPING.has(t.tagName) || t.isContentEditable));
};

// `keys` maps a lower-case key ('d', 'Escape') to a handler; it may change on every render.
export function useShortcuts(keys) {
  const latest = useRef(keys);
  latest.current = keys;
  useEffect(() => {
    const onKey = (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || isTyping(e)) return;
      const fn = latest.current[e.key.length === 1 ? e.key.toLowerCase() : e.key];
      if (fn) { e.preventDefault(); fn(e); }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);
}
