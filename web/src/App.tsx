// The Talas web player: the track list (search, 30 s previews), the player
// bar, and the live panel.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { formatTime, listTracks, type Track } from './api';
import { Engine, QUALITIES, type Quality, type SourceInfo } from './engine';
import { LivePanel } from './LivePanel';
import { PlayerBar } from './PlayerBar';
import { listenerId, useRealtime } from './realtime';

const PAGE = 100;
const SEEK_STEP = 5;

function savedQuality(): Quality {
  try {
    const q = localStorage.getItem('talas.quality');
    if (QUALITIES.some((x) => x.value === q)) return q as Quality;
  } catch {
    /* storage disabled */
  }
  return 'original';
}

function rangesOf(b: TimeRanges): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < b.length; i++) out.push([b.start(i), b.end(i)]);
  return out;
}

export function App() {
  // ---- the track list
  const [query, setQuery] = useState('');
  const [tracks, setTracks] = useState<Track[]>([]);
  const [total, setTotal] = useState(0);
  const [listError, setListError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const known = useRef(new Map<string, Track>());

  const load = useCallback(async (q: string, offset: number, signal?: AbortSignal) => {
    setLoading(true);
    try {
      const page = await listTracks(q, offset, PAGE, signal);
      page.tracks.forEach((t) => known.current.set(t.id, t));
      setTracks((prev) => (offset === 0 ? page.tracks : [...prev, ...page.tracks]));
      setTotal(page.total);
      setListError(null);
    } catch (e) {
      if ((e as Error).name !== 'AbortError') setListError(`Could not load the tracks: ${(e as Error).message}`);
    } finally {
      if (!signal?.aborted) setLoading(false);
    }
  }, []);

  useEffect(() => {
    const ctl = new AbortController();
    const timer = window.setTimeout(() => load(query.trim(), 0, ctl.signal), query ? 200 : 0);
    return () => {
      window.clearTimeout(timer);
      ctl.abort();
    };
  }, [query, load]);

  // ---- playback
  const audioRef = useRef<HTMLAudioElement>(null);
  const engine = useRef<Engine | null>(null);
  const [queue, setQueue] = useState<Track[]>([]);
  const [index, setIndex] = useState(-1);
  const [preview, setPreview] = useState(false);
  const [quality, setQuality] = useState<Quality>(savedQuality);
  const [playing, setPlaying] = useState(false);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [buffered, setBuffered] = useState<[number, number][]>([]);
  const [source, setSource] = useState<SourceInfo | null>(null);
  const [mediaError, setMediaError] = useState<string | null>(null);
  const track = index >= 0 ? queue[index] ?? null : null;

  // What the realtime channel is told; kept in refs for the media events.
  const me = useMemo(listenerId, []);
  const current = useRef<{ track: Track | null; preview: boolean; quality: Quality; announced: boolean }>({
    track: null, preview: false, quality: 'original', announced: false,
  });
  // The quality a Play command names must be a transcode profile of the
  // server: the profile, or the HLS rung playing; none for the original.
  const sourceRef = useRef<SourceInfo | null>(null);
  sourceRef.current = source;
  const commandQuality = (): { quality?: string } => {
    const c = current.current;
    if (c.preview || c.quality === 'original') return {};
    if (c.quality !== 'adaptive') return { quality: c.quality };
    const rung = sourceRef.current?.kind === 'hls' ? sourceRef.current.rung?.split(' ')[0] : undefined;
    return rung ? { quality: rung } : {};
  };
  const playCommand = (t: Track, a: HTMLAudioElement) => ({
    track_id: t.id, start_position_ms: Math.floor(a.currentTime * 1000), platform: 'Web', ...commandQuality(),
  });
  const rt = useRealtime(me, () => {
    // a new connection (a worker restarted): tell it what plays
    const a = audioRef.current;
    const c = current.current;
    if (a && c.track && !a.paused) {
      rt.send('Play', playCommand(c.track, a));
      c.announced = true;
    }
  });
  const send = rt.send;

  const start = useCallback((list: Track[], i: number, asPreview: boolean, at = 0, autoplay = true) => {
    const t = list[i];
    const a = audioRef.current;
    if (!t || !a) return;
    engine.current ??= new Engine(a, setSource);
    setQueue(list);
    setIndex(i);
    setPreview(asPreview);
    setMediaError(null);
    setTime(at);
    setDuration(t.duration_ms / 1000);
    setBuffered([]);
    current.current = { track: t, preview: asPreview, quality, announced: false };
    if (!autoplay) setPlaying(false);
    void engine.current.load(t, quality, asPreview, at, autoplay);
  }, [quality]);

  const toggle = useCallback(() => {
    const a = audioRef.current;
    if (!a || !current.current.track) return;
    if (a.paused) a.play().catch((e) => setMediaError(String(e.message ?? e)));
    else a.pause();
  }, []);

  const seek = useCallback((t: number) => {
    const a = audioRef.current;
    if (!a || !current.current.track) return;
    const d = Number.isFinite(a.duration) ? a.duration : duration;
    a.currentTime = Math.max(0, Math.min(t, d > 0 ? d - 0.05 : t));
    setTime(a.currentTime);
  }, [duration]);

  const next = useCallback(() => {
    if (index + 1 < queue.length) start(queue, index + 1, preview);
  }, [index, queue, preview, start]);
  const prev = useCallback(() => {
    const a = audioRef.current;
    if (a && a.currentTime > 3) seek(0);
    else if (index > 0) start(queue, index - 1, preview);
  }, [index, queue, preview, start, seek]);

  const changeQuality = (q: Quality) => {
    setQuality(q);
    try {
      localStorage.setItem('talas.quality', q);
    } catch {
      /* not remembered */
    }
  };
  // A new quality applies at once, from where the track is.
  const firstQuality = useRef(true);
  useEffect(() => {
    if (firstQuality.current) {
      firstQuality.current = false;
      return;
    }
    const a = audioRef.current;
    if (track && !preview && a) start(queue, index, false, a.currentTime, !a.paused);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [quality]);

  // Media events: the UI state, the realtime commands, continuous play.
  const onEnded = useRef(() => {});
  onEnded.current = () => {
    const c = current.current;
    if (c.track) send('Stop', { track_id: c.track.id });
    c.announced = false;
    if (!preview && index + 1 < queue.length) start(queue, index + 1, false);
    else setPlaying(false);
  };
  useEffect(() => {
    const a = audioRef.current!;
    const c = () => current.current;
    const h: Record<string, () => void> = {
      playing: () => {
        setPlaying(true);
        const t = c().track;
        if (t && !c().announced) {
          send('Play', playCommand(t, a));
          c().announced = true;
        }
      },
      play: () => setPlaying(true),
      pause: () => {
        setPlaying(false);
        const t = c().track;
        if (t && c().announced && !a.ended) {
          send('Pause', { track_id: t.id });
          c().announced = false;
        }
      },
      seeked: () => {
        const t = c().track;
        if (t) send('Seek', { track_id: t.id, position_ms: Math.floor(a.currentTime * 1000) });
      },
      timeupdate: () => setTime(a.currentTime),
      durationchange: () => {
        if (Number.isFinite(a.duration) && a.duration > 0) setDuration(a.duration);
      },
      progress: () => setBuffered(rangesOf(a.buffered)),
      ended: () => onEnded.current(),
      error: () => {
        const e = a.error;
        if (e) setMediaError(`Playback error ${e.code}${e.message ? ': ' + e.message : ''}`);
      },
      loadstart: () => setMediaError(null),
    };
    for (const [k, f] of Object.entries(h)) a.addEventListener(k, f);
    const poll = window.setInterval(() => setBuffered(rangesOf(a.buffered)), 1000);
    return () => {
      for (const [k, f] of Object.entries(h)) a.removeEventListener(k, f);
      window.clearInterval(poll);
    };
  }, [send]);

  useEffect(() => () => engine.current?.destroy(), []);

  // Keyboard: space toggles, arrows seek by 5 s (not while typing).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const el = e.target as HTMLElement | null;
      const tag = el?.tagName;
      if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el?.isContentEditable) return;
      const a = audioRef.current;
      if (!a || !current.current.track) return;
      if (e.key === ' ' || e.code === 'Space') {
        e.preventDefault();
        toggle();
      } else if (e.key === 'ArrowRight') {
        e.preventDefault();
        seek(a.currentTime + SEEK_STEP);
      } else if (e.key === 'ArrowLeft') {
        e.preventDefault();
        seek(a.currentTime - SEEK_STEP);
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [toggle, seek]);

  // The tab's title and the lock screen's controls follow the track.
  useEffect(() => {
    document.title = track ? `${playing ? '▶ ' : ''}${track.title || track.id} · Talas` : 'Talas';
    if ('mediaSession' in navigator && track) {
      navigator.mediaSession.metadata = new MediaMetadata({ title: track.title, artist: track.artist, album: track.album });
      navigator.mediaSession.setActionHandler('previoustrack', prev);
      navigator.mediaSession.setActionHandler('nexttrack', next);
    }
  }, [track, playing, prev, next]);

  return (
    <div className="app">
      <header className="top-bar">
        <h1>Talas</h1>
        <input
          type="search"
          placeholder="Search title, artist, album"
          aria-label="Search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          data-testid="search"
        />
      </header>
      <div className="main">
        <main className="library" aria-label="Tracks" aria-busy={loading}>
          {listError && <p className="error" role="alert">{listError}</p>}
          <p className="count" data-testid="track-count">
            {loading && tracks.length === 0 ? 'Loading…' : `${total} track${total === 1 ? '' : 's'}${query ? ` matching “${query.trim()}”` : ''}`}
          </p>
          <ol className="tracks" data-testid="tracks">
            {tracks.map((t, i) => {
              const isCurrent = track?.id === t.id;
              return (
                <li key={t.id} data-track-id={t.id} className={isCurrent ? (preview ? 'current preview' : 'current') : undefined}>
                  <button
                    type="button"
                    className="track-play"
                    aria-label={`Play ${t.title || t.id}${t.artist ? ' by ' + t.artist : ''}`}
                    aria-current={isCurrent && !preview ? 'true' : undefined}
                    onClick={() => start(tracks, i, false)}
                  >
                    <span className="t-title">{t.title || t.id}</span>
                    <span className="t-meta">{[t.artist, t.album].filter(Boolean).join(' — ')}</span>
                  </button>
                  <span className="t-dur">{formatTime(t.duration_ms / 1000)}</span>
                  <button
                    type="button"
                    className="track-preview"
                    aria-label={`Preview 30 seconds of ${t.title || t.id}`}
                    title="30 s preview"
                    onClick={() => start(tracks, i, true)}
                  >
                    30 s
                  </button>
                </li>
              );
            })}
          </ol>
          {tracks.length < total && (
            <button type="button" className="more" onClick={() => load(query.trim(), tracks.length)} disabled={loading}>
              Load more ({total - tracks.length})
            </button>
          )}
          {mediaError && <p className="error" role="alert" data-testid="media-error">{mediaError}</p>}
        </main>
        <LivePanel state={rt.state} retryIn={rt.retryIn} events={rt.events} listeners={rt.listeners} stats={rt.stats} me={me} known={known.current} />
      </div>
      <audio ref={audioRef} id="audio" preload="auto" />
      <PlayerBar
        track={track}
        preview={preview}
        playing={playing}
        time={time}
        duration={duration}
        buffered={buffered}
        quality={quality}
        source={source}
        hasPrev={index > 0 || time > 3}
        hasNext={index + 1 < queue.length}
        onToggle={toggle}
        onPrev={prev}
        onNext={next}
        onSeek={seek}
        onQuality={changeQuality}
      />
    </div>
  );
}
