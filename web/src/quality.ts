// The quality menu: Adaptive (the HLS ladder) and Original (the file as it
// is), then the server's own transcode profiles (GET /api/profiles) in its
// ladder's order; and the choice, remembered from one visit to the next.
import type { TranscodeProfile } from './api';
import type { Quality } from './engine';

export interface QualityOption {
  /** what the engine is given, and what ?profile= takes for a profile */
  value: Quality;
  label: string;
}

/** Always there: the profiles' menu entries are added once they have come. */
export const FIXED_QUALITIES: readonly QualityOption[] = [
  { value: 'adaptive', label: 'Adaptive' },
  { value: 'original', label: 'Original' },
];

const KEY = 'talas.quality';

/** "High · AAC 256k": the profile's name, then what it encodes to. */
export function profileLabel(p: TranscodeProfile): string {
  const name = p.quality_id.charAt(0).toUpperCase() + p.quality_id.slice(1);
  const codec = typeof p.codec === 'string' ? p.codec.toUpperCase() : '';
  const rate = typeof p.bitrate_kbps === 'number' && p.bitrate_kbps > 0 ? `${p.bitrate_kbps}k` : '';
  const what = [codec, rate].filter(Boolean).join(' ');
  return what ? `${name} · ${what}` : name;
}

/** The menu: Adaptive and Original alone while the profiles have not come
 * (null), or when asking for them failed (an empty list). */
export function qualityOptions(profiles: readonly TranscodeProfile[] | null): QualityOption[] {
  return [...FIXED_QUALITIES, ...(profiles ?? []).map((p) => ({ value: p.quality_id, label: profileLabel(p) }))];
}

/** The quality chosen on an earlier visit, or 'original'. A profile's name
 * counts only once the server has said it has that profile. */
export function savedQuality(): Quality {
  try {
    const q = localStorage.getItem(KEY);
    if (q && /^[A-Za-z0-9_.-]{1,64}$/.test(q)) return q;
  } catch {
    /* storage disabled */
  }
  return 'original';
}

export function saveQuality(q: Quality): void {
  try {
    localStorage.setItem(KEY, q);
  } catch {
    /* not remembered */
  }
}
