import { describe, expect, it } from 'vitest';
import { clock, downloadUrl, playUrl, shareIdOf, type SharedTrack } from './ShareApi';

const t: SharedTrack = { id: 'AbCdEfGhIjKlMn-_', title: 'x', artist: '', album: '', version: null, duration_ms: 61000 };

describe('the share page helpers', () => {
  it('reads the share id of /s/ID only', () => {
    expect(shareIdOf('/s/AbCdEfGhIjKlMn-_')).toBe('AbCdEfGhIjKlMn-_');
    expect(shareIdOf('/s/AbCdEfGhIjKlMn-_/')).toBe('AbCdEfGhIjKlMn-_');
    expect(shareIdOf('/s/short')).toBeNull();
    expect(shareIdOf('/api/tracks')).toBeNull();
  });
  it('plays a transcode when streaming is granted, else the original', () => {
    expect(playUrl(t, 'T.k', ['stream'])).toBe('stream/AbCdEfGhIjKlMn-_?format=mp3&token=T.k');
    expect(playUrl(t, 'T.k', ['download'])).toBe('stream/AbCdEfGhIjKlMn-_?token=T.k');
    expect(downloadUrl(t, 'T.k')).toBe('stream/AbCdEfGhIjKlMn-_?token=T.k');
  });
  it('formats times', () => {
    expect(clock(61000)).toBe('1:01');
    expect(clock(-5)).toBe('0:00');
  });
});
