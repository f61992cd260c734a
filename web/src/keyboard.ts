// The keyboard shortcuts: space plays or pauses, the arrows seek by 5 s.
// Not while typing in a field, and not with a modifier (the browser's own
// shortcuts); and only once a track is loaded, so that space still scrolls
// the page before.
import { useEffect, useEffectEvent } from 'react';

export type Shortcut = 'toggle' | 'forward' | 'back';

export const SEEK_STEP = 5;

/** The shortcut a key press stands for, or null. */
export function shortcutOf(e: Pick<KeyboardEvent, 'key' | 'code' | 'ctrlKey' | 'metaKey' | 'altKey' | 'target'>): Shortcut | null {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  const el = e.target as HTMLElement | null;
  const tag = el?.tagName;
  if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el?.isContentEditable) return null;
  if (e.key === ' ' || e.code === 'Space') return 'toggle';
  if (e.key === 'ArrowRight') return 'forward';
  if (e.key === 'ArrowLeft') return 'back';
  return null;
}

export function useKeyboard(enabled: boolean, toggle: () => void, seekBy: (seconds: number) => void) {
  const onKey = useEffectEvent((e: KeyboardEvent) => {
    const s = shortcutOf(e);
    if (!s || !enabled) return;
    e.preventDefault();
    if (s === 'toggle') toggle();
    else seekBy(s === 'forward' ? SEEK_STEP : -SEEK_STEP);
  });
  useEffect(() => {
    const listener = (e: KeyboardEvent) => onKey(e);
    document.addEventListener('keydown', listener);
    return () => document.removeEventListener('keydown', listener);
  }, []);
}
