// api.ts against a fake fetch: the URLs and bodies it sends, what it makes
// of the answers, and the errors it raises.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError, endSession, fetchPeaks, fetchProfiles, formatTime, isQueueTrack, listTracks, masterPlaylistUrl, normalizable, openSession,
  previewUrl, queueMasterUrl, queueTrack, reportMetrics, streamUrl, tokenOf, type TranscodeProfile, type Track,
} from './api';

type Route = (url: string, init?: RequestInit) => Response | Promise<Response>;

// api.ts names its URLs as strings
function fakeFetch(route: Route) {
  const f = vi.fn((input: string, init?: RequestInit) => Promise.resolve(route(input, init)));
  vi.stubGlobal('fetch', f);
  return f;
}

/** The JSON body a request sent. */
function sent(init: RequestInit | undefined): unknown {
  if (typeof init?.body !== 'string') throw new Error('no JSON body');
  return JSON.parse(init.body);
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

function track(over: Partial<Track> = {}): Track {
  return {
    id: 'a b/c', title: 'Song', artist: 'Band', album: 'Record', duration_ms: 180000, codec: 'flac', container: 'flac',
    sample_rate: 44100, channels: 2, bit_rate: 900000, size: 1, mime: 'audio/flac', ...over,
  };
}

const profile = (quality_id: string, over: Partial<TranscodeProfile> = {}): TranscodeProfile => ({
  quality_id, bitrate_kbps: 256, sample_rate: 48000, channels: 2, codec: 'aac', file_extension: 'aac',
  bandwidth_estimate_kbps: 320, hls: true, ...over,
});

beforeEach(() => {
  vi.stubGlobal('location', new URL('http://talas.test/player/'));
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe('listTracks', () => {
  it('asks for a page of the search', async () => {
    const page = { tracks: [track()], total: 301, offset: 200, limit: 100 };
    const f = fakeFetch(() => json(page));
    const ac = new AbortController();
    await expect(listTracks('night shift', 200, 100, ac.signal)).resolves.toEqual(page);
    expect(f).toHaveBeenCalledTimes(1);
    expect(f.mock.calls[0][0]).toBe('api/tracks?limit=100&offset=200&q=night+shift');
    expect(f.mock.calls[0][1]?.signal).toBe(ac.signal);
  });

  it('leaves the search out when there is none', async () => {
    const f = fakeFetch(() => json({ tracks: [], total: 0, offset: 0, limit: 50 }));
    await listTracks('', 0, 50);
    expect(f.mock.calls[0][0]).toBe('api/tracks?limit=50&offset=0');
  });

  it('sends the tempo and duration filters that are set', async () => {
    const f = fakeFetch(() => json({ tracks: [], total: 0, offset: 0, limit: 50 }));
    await listTracks('', 0, 50, undefined, { bpmMin: 100, bpmMax: 130.5, maxDuration: null });
    expect(f.mock.calls[0][0]).toBe('api/tracks?limit=50&offset=0&bpm_min=100&bpm_max=130.5');
    await listTracks('x', 0, 50, undefined, { bpmMin: null, bpmMax: null, maxDuration: 240 });
    expect(f.mock.calls[1][0]).toBe('api/tracks?limit=50&offset=0&q=x&max_duration=240');
  });
});

describe('errors', () => {
  it("carry the server's message and the status", async () => {
    fakeFetch(() => json({ error: { code: 'bad_request', message: 'limit must be 1..1000' } }, 400));
    const e = await listTracks('', 0, 5000).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).status).toBe(400);
    expect((e as ApiError).message).toBe('limit must be 1..1000');
  });

  it('fall back to the status line when the body is not JSON', async () => {
    fakeFetch(() => new Response('<html>upstream down</html>', { status: 502, statusText: 'Bad Gateway' }));
    await expect(listTracks('', 0, 10)).rejects.toMatchObject({ status: 502, message: '502 Bad Gateway' });
  });

  it('fall back to the status line when the JSON has no message', async () => {
    fakeFetch(() => new Response(JSON.stringify({ error: {} }), { status: 503, statusText: 'Service Unavailable' }));
    await expect(listTracks('', 0, 10)).rejects.toMatchObject({ status: 503, message: '503 Service Unavailable' });
  });

  it('let a network failure through as it is', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.reject(new TypeError('Failed to fetch'))));
    await expect(listTracks('', 0, 10)).rejects.toThrow(TypeError);
  });
});

describe('media URLs', () => {
  const signed = track({ id: 't1', stream_url: 'https://cdn.test/stream/t1?token=s%2Fk&expires=9' });

  it('take the token of a signed stream URL', () => {
    expect(tokenOf(signed)).toBe('s/k');
    expect(tokenOf(track())).toBeNull();
    expect(tokenOf(track({ stream_url: 'http://[broken' }))).toBeNull();
  });

  it('encode the track id', () => {
    expect(streamUrl(track(), null)).toBe('stream/a%20b%2Fc');
    expect(previewUrl(track())).toBe('preview/a%20b%2Fc');
    expect(masterPlaylistUrl(track())).toBe('hls/a%20b%2Fc/master.m3u8');
  });

  it('use the signed URL itself for the original', () => {
    expect(streamUrl(signed, null)).toBe(signed.stream_url);
  });

  it('carry the token to a transcode, a preview and the HLS ladder', () => {
    expect(streamUrl(signed, 'medium')).toBe('stream/t1?profile=medium&token=s%2Fk');
    expect(streamUrl(track({ id: 't1' }), 'low & co')).toBe('stream/t1?profile=low%20%26%20co');
    expect(previewUrl(signed)).toBe('preview/t1?token=s%2Fk');
    expect(masterPlaylistUrl(signed)).toBe('hls/t1/master.m3u8?token=s%2Fk');
  });

  it('carry a loudness target to transcodes, previews and HLS, never to the original', () => {
    expect(streamUrl(signed, 'mp3', -14)).toBe('stream/t1?profile=mp3&normalize=-14&token=s%2Fk');
    expect(streamUrl(track({ id: 't1' }), null, -14)).toBe('stream/t1');
    expect(previewUrl(track({ id: 't1' }), -23)).toBe('preview/t1?normalize=-23');
    expect(masterPlaylistUrl(signed, -23)).toBe('hls/t1/master.m3u8?normalize=-23&token=s%2Fk');
  });

  it('know which tracks can be normalized', () => {
    expect(normalizable(track())).toBe(false);
    expect(normalizable(track({ loudness: null }))).toBe(false);
    const silent = { integrated_lufs: null, range_lu: null, true_peak_dbtp: null, sample_peak_dbfs: null };
    expect(normalizable(track({ loudness: silent }))).toBe(false);
    expect(normalizable(track({ loudness: { ...silent, integrated_lufs: -20.1 } }))).toBe(true);
  });
});

describe('openSession', () => {
  const answer = {
    session_id: 's1', master_playlist: 'hls/t1/master.m3u8?token=x', stream_url: 'stream/t1',
    initial_profile: { quality_id: 'medium', bitrate_kbps: 160, codec: 'aac', hls: true },
  };

  function device(connection: object | undefined, coarse: boolean, width: number, height: number) {
    vi.stubGlobal('navigator', { connection });
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: coarse && q === '(pointer: coarse)' }));
    vi.stubGlobal('screen', { width, height });
  }

  it("posts the track and what the browser says of its connection", async () => {
    device({ type: 'wifi', downlink: 12.5 }, false, 1920, 1080);
    const f = fakeFetch(() => json(answer));
    await expect(openSession(track({ id: 't1' }))).resolves.toEqual(answer);
    const [url, init] = f.mock.calls[0];
    expect(url).toBe('api/streaming/session');
    expect(init?.method).toBe('POST');
    expect(new Headers(init?.headers).get('Content-Type')).toBe('application/json');
    expect(sent(init)).toEqual({
      track_id: 't1',
      client_capabilities: {
        estimated_bandwidth_kbps: 12500, buffer_duration_ms: 5000, connection_type: 'Wifi',
        device_type: 'Desktop', adaptive_enabled: true,
      },
    });
  });

  it('tells a phone on 4G from a desktop, and signs with the track token', async () => {
    device({ effectiveType: '4g' }, true, 390, 844);
    const f = fakeFetch(() => json(answer));
    await openSession(track({ id: 't1', stream_url: 'stream/t1?token=abc' }));
    expect(f.mock.calls[0][0]).toBe('api/streaming/session?token=abc');
    const caps = (sent(f.mock.calls[0][1]) as { client_capabilities: Record<string, unknown> }).client_capabilities;
    expect(caps).toMatchObject({ connection_type: 'Cellular4G', device_type: 'Mobile', estimated_bandwidth_kbps: 0 });
  });

  it('says Unknown without the Network Information API', async () => {
    device(undefined, false, 1280, 800);
    const f = fakeFetch(() => json(answer));
    await openSession(track());
    const caps = (sent(f.mock.calls[0][1]) as { client_capabilities: Record<string, unknown> }).client_capabilities;
    expect(caps).toMatchObject({ connection_type: 'Unknown', device_type: 'Desktop' });
  });

  it('rejects with the refusal of the server', async () => {
    device(undefined, false, 1280, 800);
    fakeFetch(() => json({ error: { message: 'adaptive streaming is disabled' } }, 403));
    await expect(openSession(track())).rejects.toMatchObject({ status: 403, message: 'adaptive streaming is disabled' });
  });
});

describe('fetchProfiles', () => {
  it('lists the profiles in the order of the server', async () => {
    const list = [profile('high'), profile('medium', { bitrate_kbps: 160 }), profile('low', { codec: 'mp3', hls: false })];
    const f = fakeFetch(() => json({ profiles: list }));
    const ac = new AbortController();
    await expect(fetchProfiles(ac.signal)).resolves.toEqual(list);
    expect(f.mock.calls[0][0]).toBe('api/profiles');
    expect(f.mock.calls[0][1]?.signal).toBe(ac.signal);
  });

  it('leaves out entries without a name, repeated names, and the names of the fixed entries', async () => {
    fakeFetch(() => json({
      profiles: [profile('high'), { bitrate_kbps: 1 }, null, profile(''), profile('adaptive'), profile('original'),
        profile('high', { bitrate_kbps: 1 }), profile('mobile')],
    }));
    expect((await fetchProfiles()).map((p) => [p.quality_id, p.bitrate_kbps])).toEqual([['high', 256], ['mobile', 256]]);
  });

  it('rejects an answer without a list', async () => {
    fakeFetch(() => json({ tracks: [] }));
    await expect(fetchProfiles()).rejects.toBeInstanceOf(ApiError);
  });

  it('rejects what the server refuses (an older server: 404)', async () => {
    fakeFetch(() => json({ error: { message: 'no such route' } }, 404));
    await expect(fetchProfiles()).rejects.toMatchObject({ status: 404 });
  });
});

describe('the other calls', () => {
  it('fetchPeaks asks for POINTS with the track token', async () => {
    const peaks = { points: 3, min: [-0.1, -0.2, -0.3], max: [0.1, 0.2, 0.3] };
    const f = fakeFetch(() => json(peaks));
    await expect(fetchPeaks({ id: 'x/y', stream_url: 'stream/x?token=t' }, 600)).resolves.toEqual(peaks);
    expect(f.mock.calls[0][0]).toBe('api/tracks/x%2Fy/peaks?points=600&token=t');
  });

  it('reportMetrics posts the figures to the session', async () => {
    const f = fakeFetch(() => new Response(null, { status: 204 }));
    const m = { buffer_health_percentage: 80, download_speed_kbps: 900, rebuffer_count: 1, rebuffer_duration_ms: 350 };
    await reportMetrics('s/1', m);
    expect(f.mock.calls[0][0]).toBe('api/streaming/session/s%2F1/metrics');
    expect(f.mock.calls[0][1]?.method).toBe('POST');
    expect(sent(f.mock.calls[0][1])).toEqual(m);
  });

  // A rejection left unhandled fails the whole run: Vitest reports it. (Not
  // a vi.fn: it handles the promises its function returns, to record them.)
  it('endSession deletes the session, outliving the page, and swallows a failure', async () => {
    const calls: unknown[][] = [];
    vi.stubGlobal('fetch', (...args: unknown[]) => {
      calls.push(args);
      return Promise.reject(new TypeError('offline'));
    });
    endSession('s1');
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([['api/streaming/session/s1', { method: 'DELETE', keepalive: true }]]);
  });
});

describe('formatTime', () => {
  it('writes m:ss, and h:mm:ss from an hour', () => {
    expect(formatTime(0)).toBe('0:00');
    expect(formatTime(59.9)).toBe('0:59');
    expect(formatTime(480)).toBe('8:00');
    expect(formatTime(3600 + 62)).toBe('1:01:02');
  });

  it('shows 0:00 for what is not a time yet', () => {
    expect(formatTime(NaN)).toBe('0:00');
    expect(formatTime(Infinity)).toBe('0:00');
    expect(formatTime(-3)).toBe('0:00');
  });
});

describe('continuous queues', () => {
  it('name the master playlist of an artist or a playlist, the name encoded', () => {
    expect(queueMasterUrl({ kind: 'artist', id: 'AC/DC & Co' })).toBe('hls/queue/artist/AC%2FDC%20%26%20Co/master.m3u8');
    expect(queueMasterUrl({ kind: 'playlist', id: 'p1' }, 't.k')).toBe('hls/queue/playlist/p1/master.m3u8?token=t.k');
  });
  it('show as a track that is no library track', () => {
    const t = queueTrack({ kind: 'artist', id: 'Short Band' });
    expect(t.title).toBe('Short Band (continuous)');
    expect(isQueueTrack(t)).toBe(true);
    expect(isQueueTrack({ id: 'Zvct-r0cvsuLP-26' })).toBe(false);
    expect(isQueueTrack(null)).toBe(false);
  });
});
