// What feeds the <audio> element: a progressive URL (the original file or
// a transcode, seeked with Range requests), a 30 s preview, or the track's
// HLS ladder through hls.js (Media Source Extensions), or the browser's own
// HLS where it has no MSE (iPhone Safari). HLS that fails falls back to the
// progressive original at the same position.
import type HlsType from 'hls.js';
import type { Level } from 'hls.js';
import { endSession, masterPlaylistUrl, normalizable, openSession, previewUrl, reportMetrics, streamUrl, type LoudnessMatch, type Track } from './api';

/** 'adaptive' (the HLS ladder), 'original' (the file as it is), or the name
 * of one of the server's transcode profiles (GET /api/profiles). */
export type Quality = string;

export interface SourceInfo {
  /** what plays: "HLS · medium · 160 kbit/s", "Original · FLAC", "Preview" */
  label: string;
  kind: 'progressive' | 'preview' | 'hls' | 'native-hls';
  rung: string | null;
  fallback: string | null;
}

type Listener = (info: SourceInfo) => void;

let hlsModule: Promise<typeof HlsType> | null = null;
function loadHls(): Promise<typeof HlsType> {
  hlsModule ??= import('hls.js/light').then((m) => m.default);
  return hlsModule;
}

function rungName(level: Level | undefined): string {
  if (!level) return '?';
  const url = (level as Level & { uri?: string }).uri ?? (Array.isArray(level.url) ? level.url[0] : String(level.url));
  const m = /\/([^/?]+)\/playlist\.m3u8/.exec(url ?? '');
  const name = level.name || (m ? decodeURIComponent(m[1]) : '?');
  return level.bitrate ? `${name} · ${Math.round(level.bitrate / 1000)} kbit/s` : name;
}

function originalLabel(t: Track): string {
  const codec = (t.codec || t.container || '').toUpperCase();
  const rate = t.sample_rate ? ` ${(t.sample_rate / 1000).toFixed(1).replace(/\.0$/, '')} kHz` : '';
  return `Original · ${codec}${rate}`;
}

export class Engine {
  private hls: HlsType | null = null;
  private generation = 0;
  private track: Track | null = null;
  private autoplay = true;
  private errorHandler: (() => void) | null = null;
  private session: string | null = null;
  private reportTimer: number | undefined;
  private stopWatch: (() => void) | null = null;

  constructor(private audio: HTMLAudioElement, private onInfo: Listener) {}

  private reset() {
    this.generation++;
    clearTimeout(this.reportTimer);
    this.stopWatch?.();
    this.stopWatch = null;
    if (this.session) endSession(this.session);
    this.session = null;
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    if (this.errorHandler) {
      this.audio.removeEventListener('error', this.errorHandler);
      this.errorHandler = null;
    }
  }

  /** Loads TRACK at START seconds, and plays it when AUTOPLAY; with MATCH,
   * at that loudness (?normalize=), when the server measured the track's:
   * the original file, which is never normalized, becomes the mp3
   * transcode. */
  async load(track: Track, quality: Quality, preview: boolean, start = 0, autoplay = true, match: LoudnessMatch = null): Promise<void> {
    this.reset();
    const gen = this.generation;
    this.track = track;
    this.autoplay = autoplay;
    const a = this.audio;
    const target = match !== null && normalizable(track) ? match : null;
    const matched = target !== null ? ` · ${target} LUFS` : '';
    if (preview) {
      this.progressive(previewUrl(track, target), start, { label: `Preview · MP3 30 s${matched}`, kind: 'preview', rung: null, fallback: null });
      return;
    }
    if (quality !== 'adaptive') {
      const profile = quality === 'original' ? (target !== null ? 'mp3' : null) : quality;
      const label = (profile ? `Transcode · ${profile}` : originalLabel(track)) + matched;
      this.progressive(streamUrl(track, profile, target), start, { label, kind: 'progressive', rung: null, fallback: null });
      if (profile) this.fallbackOnError(gen, `the ${profile} transcode failed`);
      return;
    }

    // Adaptive: the streaming session picks the first rung from what the
    // browser says of its connection; the ladder works without one too.
    let master = masterPlaylistUrl(track, target);
    let first: string | null = null;
    try {
      const s = await openSession(track);
      first = s.initial_profile?.quality_id ?? null;
      if (gen === this.generation) this.session = s.session_id;
      else endSession(s.session_id);
      const token = new URL(s.master_playlist, location.href).searchParams.get('token');
      if (token && !master.includes('token=')) master += `${master.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
    } catch {
      /* no session: hls.js starts from the master playlist's first rung */
    }
    if (gen !== this.generation) return;

    let Hls: typeof HlsType | null;
    try {
      Hls = await loadHls();
    } catch {
      Hls = null;
    }
    if (gen !== this.generation) return;
    if (Hls && Hls.isSupported()) {
      const hls = new Hls({ startPosition: start, maxBufferLength: 30, backBufferLength: 30 });
      this.hls = hls;
      const info: SourceInfo = { label: `HLS (hls.js)${matched}`, kind: 'hls', rung: first ? `${first} (starting)` : null, fallback: null };
      this.onInfo(info);
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
        const i = first ? d.levels.findIndex((l) => rungName(l).startsWith(first + ' ')) : -1;
        if (i >= 0) hls.startLevel = i;
        if (this.autoplay) a.play().catch(() => {});
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        if (gen !== this.generation) return;
        this.onInfo({ ...info, rung: rungName(hls.levels[d.level]) });
      });
      hls.on(Hls.Events.ERROR, (_e, d) => {
        if (!d.fatal || gen !== this.generation) return;
        this.fallback(`HLS failed (${d.details})`);
      });
      hls.loadSource(master);
      hls.attachMedia(a);
      this.watch(gen, hls);
      return;
    }
    if (a.canPlayType('application/vnd.apple.mpegurl')) {
      this.progressive(master, start, { label: 'HLS (native)', kind: 'native-hls', rung: 'chosen by the browser', fallback: null });
      this.fallbackOnError(gen, 'native HLS failed');
      return;
    }
    this.fallback('this browser plays no HLS');
  }

  /** Loads the continuous queue at MASTER (queueMasterUrl) through hls.js
   * (or the browser's own HLS), from the start, playing when AUTOPLAY.
   * There is no progressive stream of a queue to fall back to: a failure
   * is the element's error. */
  async loadQueue(master: string, label: string, autoplay = true): Promise<void> {
    this.reset();
    const gen = this.generation;
    this.track = null;
    this.autoplay = autoplay;
    const a = this.audio;
    let Hls: typeof HlsType | null;
    try {
      Hls = await loadHls();
    } catch {
      Hls = null;
    }
    if (gen !== this.generation) return;
    const info: SourceInfo = { label: `Continuous · ${label}`, kind: 'hls', rung: null, fallback: null };
    if (Hls && Hls.isSupported()) {
      const hls = new Hls({ maxBufferLength: 30, backBufferLength: 30 });
      this.hls = hls;
      this.onInfo(info);
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        if (this.autoplay) a.play().catch(() => {});
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        if (gen === this.generation) this.onInfo({ ...info, rung: rungName(hls.levels[d.level]) });
      });
      hls.on(Hls.Events.ERROR, (_e, d) => {
        if (!d.fatal || gen !== this.generation) return;
        this.onInfo({ ...info, fallback: `the continuous stream failed (${d.details})` });
        hls.destroy();
        if (this.hls === hls) this.hls = null;
      });
      hls.loadSource(master);
      hls.attachMedia(a);
      return;
    }
    if (a.canPlayType('application/vnd.apple.mpegurl')) {
      this.progressive(master, 0, { ...info, kind: 'native-hls', rung: 'chosen by the browser' });
      return;
    }
    this.onInfo({ ...info, fallback: 'this browser plays no HLS: no continuous mode' });
  }

  /** Reports to the streaming session 2 s after the start, then every 10 s:
   * the buffer ahead (against hls.js's 30 s goal), the bandwidth hls.js
   * measures, and the stalls ("waiting" while playing) with their length. */
  private watch(gen: number, hls: HlsType) {
    const a = this.audio;
    let rebuffers = 0;
    let stalledMs = 0;
    let stallStart = 0;
    let started = false;
    const waiting = () => {
      if (started && !stallStart) {
        rebuffers++;
        stallStart = performance.now();
      }
    };
    const playing = () => {
      started = true;
      if (stallStart) stalledMs += performance.now() - stallStart;
      stallStart = 0;
    };
    a.addEventListener('waiting', waiting);
    a.addEventListener('playing', playing);
    this.stopWatch = () => {
      a.removeEventListener('waiting', waiting);
      a.removeEventListener('playing', playing);
    };
    const report = (delay: number) => {
      this.reportTimer = setTimeout(() => {
        if (gen !== this.generation || !this.session) return;
        if (!a.paused) {
          let ahead = 0;
          for (let i = 0; i < a.buffered.length; i++)
            if (a.buffered.start(i) <= a.currentTime + 0.1 && a.buffered.end(i) > a.currentTime) ahead = a.buffered.end(i) - a.currentTime;
          const est = Number.isFinite(hls.bandwidthEstimate) ? hls.bandwidthEstimate : 0;
          reportMetrics(this.session, {
            buffer_health_percentage: Math.min(100, Math.round((ahead / 30) * 100)),
            download_speed_kbps: Math.round(est / 1000),
            rebuffer_count: rebuffers,
            rebuffer_duration_ms: Math.round(stalledMs + (stallStart ? performance.now() - stallStart : 0)),
          }).catch(() => {});
        }
        report(10000);
      }, delay);
    };
    report(2000);
  }

  private progressive(url: string, start: number, info: SourceInfo) {
    const a = this.audio;
    a.src = url;
    if (start > 0) {
      const seek = () => {
        a.currentTime = start;
      };
      a.addEventListener('loadedmetadata', seek, { once: true });
    }
    this.onInfo(info);
    if (this.autoplay) a.play().catch(() => {});
  }

  private fallbackOnError(gen: number, why: string) {
    this.errorHandler = () => {
      if (gen === this.generation) this.fallback(why);
    };
    this.audio.addEventListener('error', this.errorHandler, { once: true });
  }

  /** Plays the progressive original from where playback was. */
  private fallback(why: string) {
    const t = this.track;
    if (!t) return;
    const at = this.audio.currentTime || 0;
    this.autoplay = this.autoplay || !this.audio.paused;
    this.reset();
    this.progressive(streamUrl(t, null), at, {
      label: originalLabel(t),
      kind: 'progressive',
      rung: null,
      fallback: `${why}: playing the original stream`,
    });
  }

  destroy() {
    this.reset();
  }
}
