// engine.ts with a fake <audio> element, a fake hls.js and a fake server
// (fetch): which source it picks for each quality, the HLS ladder and its
// fallback to the progressive original, and its reports to the session.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Track } from './api';
import { Engine, type SourceInfo } from './engine';

const { FakeHls } = vi.hoisted(() => {
  type Handler = (event: string, data: unknown) => void;
  class FakeHls {
    static supported = true;
    static isSupported() {
      return FakeHls.supported;
    }
    static Events = { MANIFEST_PARSED: 'hlsManifestParsed', LEVEL_SWITCHED: 'hlsLevelSwitched', ERROR: 'hlsError' };
    static all: FakeHls[] = [];

    handlers = new Map<string, Handler[]>();
    levels: { name: string; url: string[]; bitrate: number }[] = [];
    startLevel = -1;
    bandwidthEstimate = NaN;
    source: string | null = null;
    media: unknown = null;
    destroyed = false;

    constructor(public config: Record<string, unknown>) {
      FakeHls.all.push(this);
    }
    on(event: string, f: Handler) {
      this.handlers.set(event, [...(this.handlers.get(event) ?? []), f]);
    }
    emit(event: string, data: unknown) {
      for (const f of this.handlers.get(event) ?? []) f(event, data);
    }
    loadSource(url: string) {
      this.source = url;
    }
    attachMedia(m: unknown) {
      this.media = m;
    }
    destroy() {
      this.destroyed = true;
    }
  }
  return { FakeHls };
});

vi.mock('hls.js/light', () => ({ default: FakeHls }));

class FakeRanges {
  constructor(private r: [number, number][] = []) {}
  get length() {
    return this.r.length;
  }
  start(i: number) {
    return this.r[i][0];
  }
  end(i: number) {
    return this.r[i][1];
  }
}

/** What the engine uses of an HTMLAudioElement. */
class FakeAudio extends EventTarget {
  src = '';
  currentTime = 0;
  paused = true;
  buffered = new FakeRanges();
  plays = 0;
  nativeHls = false;
  play() {
    this.plays++;
    this.paused = false;
    return Promise.resolve();
  }
  pause() {
    this.paused = true;
  }
  canPlayType(type: string) {
    return this.nativeHls && type === 'application/vnd.apple.mpegurl' ? 'maybe' : '';
  }
  fire(type: string) {
    this.dispatchEvent(new Event(type));
  }
}

function track(over: Partial<Track> = {}): Track {
  return {
    id: 't1', title: 'Ladder Song', artist: 'HLS Band', album: 'Rungs', duration_ms: 40000, codec: 'flac', container: 'flac',
    sample_rate: 44100, channels: 2, bit_rate: 900000, size: 1, mime: 'audio/flac', ...over,
  };
}

const SESSION = {
  session_id: 'sess-1', master_playlist: 'hls/t1/master.m3u8?token=tok', stream_url: 'stream/t1',
  initial_profile: { quality_id: 'medium', bitrate_kbps: 160, codec: 'aac', hls: true },
};

let requests: { url: string; method: string; body: unknown }[];
let sessionAnswer: () => Response | Promise<Response>;

function setup() {
  const audio = new FakeAudio();
  const infos: SourceInfo[] = [];
  const engine = new Engine(audio as unknown as HTMLAudioElement, (i) => infos.push(i));
  return { audio, infos, engine, info: () => infos[infos.length - 1] };
}

beforeEach(() => {
  FakeHls.supported = true;
  FakeHls.all = [];
  requests = [];
  sessionAnswer = () => new Response(JSON.stringify(SESSION), { status: 200 });
  vi.stubGlobal('location', new URL('http://talas.test/'));
  vi.stubGlobal('navigator', {});
  vi.stubGlobal('matchMedia', () => ({ matches: false }));
  vi.stubGlobal('screen', { width: 1280, height: 800 });
  // api.ts names its URLs as strings
  vi.stubGlobal('fetch', vi.fn((url: string, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    requests.push({ url, method, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined });
    if (method === 'POST' && url.startsWith('api/streaming/session') && !url.includes('/metrics')) return Promise.resolve(sessionAnswer());
    return Promise.resolve(new Response(null, { status: 204 }));
  }));
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('progressive sources', () => {
  it('plays the original file for the original quality', async () => {
    const { audio, engine, info } = setup();
    await engine.load(track(), 'original', false);
    expect(audio.src).toBe('stream/t1');
    expect(info()).toEqual({ label: 'Original · FLAC 44.1 kHz', kind: 'progressive', rung: null, fallback: null });
    expect(audio.plays).toBe(1);
    expect(requests).toEqual([]);
  });

  it('plays the signed URL of a track that has one', async () => {
    const { audio, engine, info } = setup();
    await engine.load(track({ stream_url: 'stream/t1?token=abc&expires=9', codec: '', container: 'mp3', sample_rate: 48000 }), 'original', false);
    expect(audio.src).toBe('stream/t1?token=abc&expires=9');
    expect(info().label).toBe('Original · MP3 48 kHz');
  });

  it('asks for the transcode of a profile', async () => {
    const { audio, engine, info } = setup();
    await engine.load(track(), 'medium', false);
    expect(audio.src).toBe('stream/t1?profile=medium');
    expect(info()).toEqual({ label: 'Transcode · medium', kind: 'progressive', rung: null, fallback: null });
    await engine.load(track({ stream_url: 'stream/t1?token=abc' }), 'low', false);
    expect(audio.src).toBe('stream/t1?profile=low&token=abc');
  });

  it('plays a preview as a preview whatever the quality', async () => {
    for (const q of ['adaptive', 'original', 'high']) {
      const { audio, engine, info } = setup();
      await engine.load(track(), q, true);
      expect(audio.src).toBe('preview/t1');
      expect(info()).toEqual({ label: 'Preview · MP3 30 s', kind: 'preview', rung: null, fallback: null });
    }
    expect(requests).toEqual([]);
    expect(FakeHls.all).toEqual([]);
  });

  it('starts at the position asked for once the metadata is there, and plays only when asked', async () => {
    const { audio, engine } = setup();
    await engine.load(track(), 'original', false, 42.5, false);
    expect(audio.currentTime).toBe(0);
    audio.fire('loadedmetadata');
    expect(audio.currentTime).toBe(42.5);
    expect(audio.plays).toBe(0);
  });

  it('falls back to the original, where it was, when a transcode fails', async () => {
    const { audio, engine, info } = setup();
    await engine.load(track(), 'high', false);
    audio.currentTime = 12;
    audio.fire('error');
    expect(audio.src).toBe('stream/t1');
    expect(info()).toEqual({
      label: 'Original · FLAC 44.1 kHz', kind: 'progressive', rung: null,
      fallback: 'the high transcode failed: playing the original stream',
    });
    audio.currentTime = 0;
    audio.fire('loadedmetadata');
    expect(audio.currentTime).toBe(12);
    expect(audio.plays).toBe(2);
  });

  it('leaves an error of the original to the player', async () => {
    const { audio, engine, infos } = setup();
    await engine.load(track(), 'original', false);
    audio.fire('error');
    expect(infos).toHaveLength(1);
  });

  it('does not fall back for a track it has since left', async () => {
    const { audio, engine, infos } = setup();
    await engine.load(track(), 'high', false);
    await engine.load(track({ id: 't2' }), 'original', false);
    audio.fire('error');
    expect(audio.src).toBe('stream/t2');
    expect(infos.map((i) => i.fallback)).toEqual([null, null]);
  });
});

describe('adaptive: the HLS ladder', () => {
  it('opens a streaming session and plays its master playlist with hls.js', async () => {
    const { audio, engine, info } = setup();
    await engine.load(track(), 'adaptive', false, 7);
    expect(requests[0]).toMatchObject({ url: 'api/streaming/session', method: 'POST', body: { track_id: 't1' } });
    expect(FakeHls.all).toHaveLength(1);
    const hls = FakeHls.all[0];
    expect(hls.source).toBe('hls/t1/master.m3u8?token=tok');
    expect(hls.media).toBe(audio);
    expect(hls.config).toMatchObject({ startPosition: 7 });
    expect(info()).toEqual({ label: 'HLS (hls.js)', kind: 'hls', rung: 'medium (starting)', fallback: null });
    expect(audio.plays).toBe(0);

    // the session's first rung is where hls.js starts
    const levels = ['high', 'medium', 'mobile'].map((n, i) => ({ name: '', url: [`hls/t1/${n}/playlist.m3u8`], bitrate: [256000, 160000, 64000][i] }));
    hls.levels = levels;
    hls.emit(FakeHls.Events.MANIFEST_PARSED, { levels });
    expect(hls.startLevel).toBe(1);
    expect(audio.plays).toBe(1);

    hls.emit(FakeHls.Events.LEVEL_SWITCHED, { level: 0 });
    expect(info()).toEqual({ label: 'HLS (hls.js)', kind: 'hls', rung: 'high · 256 kbit/s', fallback: null });
  });

  it('plays the ladder without a session when the server gives none', async () => {
    sessionAnswer = () => new Response('{"error":{"message":"busy"}}', { status: 503 });
    const { engine, info } = setup();
    await engine.load(track(), 'adaptive', false);
    expect(FakeHls.all[0].source).toBe('hls/t1/master.m3u8');
    expect(info()).toMatchObject({ kind: 'hls', rung: null });
  });

  it('falls back to the progressive original when hls.js fails for good', async () => {
    const { audio, engine, info } = setup();
    await engine.load(track(), 'adaptive', false);
    const hls = FakeHls.all[0];
    hls.emit(FakeHls.Events.ERROR, { fatal: false, details: 'fragLoadTimeOut' });
    expect(info().kind).toBe('hls');
    audio.currentTime = 20;
    audio.paused = false;
    hls.emit(FakeHls.Events.ERROR, { fatal: true, details: 'manifestLoadError' });
    expect(hls.destroyed).toBe(true);
    expect(audio.src).toBe('stream/t1');
    expect(info()).toEqual({
      label: 'Original · FLAC 44.1 kHz', kind: 'progressive', rung: null,
      fallback: 'HLS failed (manifestLoadError): playing the original stream',
    });
    audio.fire('loadedmetadata');
    expect(audio.currentTime).toBe(20);
    // the session is over
    expect(requests).toContainEqual({ url: 'api/streaming/session/sess-1', method: 'DELETE', body: undefined });
  });

  it("uses the browser's own HLS without Media Source Extensions", async () => {
    FakeHls.supported = false;
    const { audio, engine, info } = setup();
    audio.nativeHls = true;
    await engine.load(track(), 'adaptive', false);
    expect(audio.src).toBe('hls/t1/master.m3u8?token=tok');
    expect(info()).toEqual({ label: 'HLS (native)', kind: 'native-hls', rung: 'chosen by the browser', fallback: null });
    audio.fire('error');
    expect(audio.src).toBe('stream/t1');
    expect(info().fallback).toBe('native HLS failed: playing the original stream');
  });

  it('plays the original in a browser with no HLS at all', async () => {
    FakeHls.supported = false;
    const { audio, engine, info } = setup();
    await engine.load(track(), 'adaptive', false);
    expect(audio.src).toBe('stream/t1');
    expect(info().fallback).toBe('this browser plays no HLS: playing the original stream');
  });

  it('gives up an adaptive load that another load overtook', async () => {
    let answer!: (r: Response) => void;
    sessionAnswer = () => new Promise<Response>((r) => (answer = r));
    const { audio, engine, info } = setup();
    const first = engine.load(track(), 'adaptive', false);
    await vi.waitFor(() => expect(requests).toHaveLength(1));
    await engine.load(track({ id: 't2' }), 'original', false);
    answer(new Response(JSON.stringify(SESSION), { status: 200 }));
    await first;
    expect(FakeHls.all).toEqual([]);
    expect(audio.src).toBe('stream/t2');
    expect(info().kind).toBe('progressive');
    // the session it opened too late is ended at once
    expect(requests).toContainEqual({ url: 'api/streaming/session/sess-1', method: 'DELETE', body: undefined });
  });

  it('reports the buffer, the bandwidth and the stalls to the session', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.stubGlobal('performance', { now: () => Date.now() });
    const { audio, engine } = setup();
    await engine.load(track(), 'adaptive', false);
    const hls = FakeHls.all[0];
    hls.bandwidthEstimate = 1_500_000;
    audio.paused = false;
    audio.currentTime = 10;
    audio.buffered = new FakeRanges([[0, 4], [9, 19]]);
    // the wait before the start is no stall
    audio.fire('waiting');
    vi.advanceTimersByTime(100);
    audio.fire('playing');
    audio.fire('waiting');
    vi.advanceTimersByTime(300);
    audio.fire('playing');
    vi.advanceTimersByTime(1600);
    const metrics = () => requests.filter((r) => r.url === 'api/streaming/session/sess-1/metrics');
    expect(metrics()).toHaveLength(1);
    expect(metrics()[0]).toMatchObject({ method: 'POST' });
    const m = metrics()[0].body as Record<string, number>;
    expect(m).toMatchObject({ buffer_health_percentage: 30, download_speed_kbps: 1500, rebuffer_count: 1 });
    expect(m.rebuffer_duration_ms).toBe(300);
    // then every 10 s, not while paused, and never after the track changed
    vi.advanceTimersByTime(10000);
    expect(metrics()).toHaveLength(2);
    audio.paused = true;
    vi.advanceTimersByTime(10000);
    expect(metrics()).toHaveLength(2);
    audio.paused = false;
    await engine.load(track({ id: 't2' }), 'original', false);
    vi.advanceTimersByTime(30000);
    expect(metrics()).toHaveLength(2);
  });
});
