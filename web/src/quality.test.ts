// The quality menu built from the server's profiles, and the saved choice.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TranscodeProfile } from './api';
import { profileLabel, qualityOptions, savedQuality, saveQuality } from './quality';

const profile = (quality_id: string, codec: string, bitrate_kbps: number): TranscodeProfile => ({
  quality_id, codec, bitrate_kbps, sample_rate: 48000, channels: 2, file_extension: codec,
  bandwidth_estimate_kbps: bitrate_kbps, hls: codec === 'aac',
});

function fakeStorage(items: Record<string, string> = {}) {
  const m = new Map(Object.entries(items));
  vi.stubGlobal('localStorage', {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
  });
  return m;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the quality menu', () => {
  it('offers Adaptive and Original alone before the profiles, or without them', () => {
    const fixed = [{ value: 'adaptive', label: 'Adaptive' }, { value: 'original', label: 'Original' }];
    expect(qualityOptions(null)).toEqual(fixed);
    expect(qualityOptions([])).toEqual(fixed);
  });

  it("adds one entry per profile, in the server's order, its name as the value", () => {
    const menu = qualityOptions([profile('high', 'aac', 256), profile('medium', 'aac', 160), profile('low', 'mp3', 128)]);
    expect(menu.map((o) => o.value)).toEqual(['adaptive', 'original', 'high', 'medium', 'low']);
    expect(menu.map((o) => o.label)).toEqual(['Adaptive', 'Original', 'High · AAC 256k', 'Medium · AAC 160k', 'Low · MP3 128k']);
  });

  it('labels a profile by its name alone when the server says nothing else', () => {
    expect(profileLabel({ quality_id: 'studio' } as TranscodeProfile)).toBe('Studio');
    expect(profileLabel(profile('x', '', 0))).toBe('X');
  });
});

describe('the saved quality', () => {
  it('is original at first', () => {
    fakeStorage();
    expect(savedQuality()).toBe('original');
  });

  it('comes back from one visit to the next', () => {
    const m = fakeStorage();
    saveQuality('medium');
    expect(m.get('talas.quality')).toBe('medium');
    expect(savedQuality()).toBe('medium');
  });

  it('is original when what is stored is not a name, or when storage is disabled', () => {
    fakeStorage({ 'talas.quality': '<script>' });
    expect(savedQuality()).toBe('original');
    vi.stubGlobal('localStorage', {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('SecurityError');
      },
    });
    expect(savedQuality()).toBe('original');
    expect(() => saveQuality('high')).not.toThrow();
  });
});
