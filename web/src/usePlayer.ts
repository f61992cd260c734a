// The player's state: what plays (the queue, the track, whole or a 30 s
// preview), how (the quality, and the source the engine chose for it),
// where it is (time, duration, what is buffered), and the <audio>
// element's events, which move it on and tell the realtime channel
// (Play/Pause/Seek/Stop) what the listener does.
import { useCallback, useEffect, useEffectEvent, useMemo, useRef, useState, type RefObject } from 'react';
import { fetchProfiles, isQueueTrack, queueMasterUrl, queueTrack, tokenOf, type LoudnessMatch, type QueueSource, type TranscodeProfile, type Track } from './api';
import { Engine, type Quality, type SourceInfo } from './engine';
import { FIXED_QUALITIES, qualityOptions, savedQuality, saveQuality } from './quality';

type Send = (command: string, fields: Record<string, unknown>) => boolean;

/** What the realtime channel has been told, for the media events. */
interface Announced {
  track: Track | null;
  preview: boolean;
  quality: Quality;
  announced: boolean;
}

function rangesOf(b: TimeRanges): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < b.length; i++) out.push([b.start(i), b.end(i)]);
  return out;
}

/** The quality a Play command names must be a transcode profile of the
 * server: the profile, or the HLS rung playing; none for the original. */
function commandQuality(c: Announced, source: SourceInfo | null): { quality?: string } {
  if (c.preview || c.quality === 'original') return {};
  if (c.quality !== 'adaptive') return { quality: c.quality };
  const rung = source?.kind === 'hls' ? source.rung?.split(' ')[0] : undefined;
  return rung ? { quality: rung } : {};
}

function playCommand(c: Announced & { track: Track }, a: HTMLAudioElement, source: SourceInfo | null) {
  return { track_id: c.track.id, start_position_ms: Math.floor(a.currentTime * 1000), platform: 'Web', ...commandQuality(c, source) };
}

/** A saved profile waits for the server's profiles: before them, or
 * without them, the quality is the original. */
function initialQuality(): Quality {
  const q = savedQuality();
  return FIXED_QUALITIES.some((x) => x.value === q) ? q : 'original';
}

/** AUDIO is the page's <audio> element; SEND sends a command on the
 * realtime channel, and RECONNECTS counts its reconnections, each of which
 * is told what plays. */
export function usePlayer(audioRef: RefObject<HTMLAudioElement | null>, send: Send, reconnects: number) {
  // a continuous queue is no track of the library: no commands about it
  const sendTrack = useCallback((command: string, fields: Record<string, unknown>) =>
    typeof fields.track_id === 'string' && isQueueTrack({ id: fields.track_id }) ? false : send(command, fields), [send]);
  const engine = useRef<Engine | null>(null);
  const [queue, setQueue] = useState<Track[]>([]);
  const [index, setIndex] = useState(-1);
  const [preview, setPreview] = useState(false);
  const [profiles, setProfiles] = useState<TranscodeProfile[] | null>(null);
  const [quality, setQuality] = useState<Quality>(initialQuality);
  const [match, setMatch] = useState<LoudnessMatch>(null);
  const [playing, setPlaying] = useState(false);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [buffered, setBuffered] = useState<[number, number][]>([]);
  const [source, setSource] = useState<SourceInfo | null>(null);
  const [mediaError, setMediaError] = useState<string | null>(null);
  const track = index >= 0 ? queue[index] ?? null : null;
  const qualities = useMemo(() => qualityOptions(profiles), [profiles]);

  // Read by the media events and the realtime commands, outside render.
  const current = useRef<Announced>({ track: null, preview: false, quality: 'original', announced: false });
  const sourceRef = useRef<SourceInfo | null>(null);

  /** Loads LIST[I] in quality Q at AT seconds, at loudness M, and plays it
   * when AUTOPLAY. */
  const load = useCallback((list: Track[], i: number, asPreview: boolean, at: number, autoplay: boolean, q: Quality,
    m: LoudnessMatch) => {
    const t = list[i];
    const a = audioRef.current;
    if (!t || !a) return;
    engine.current ??= new Engine(a, (info) => {
      sourceRef.current = info;
      setSource(info);
    });
    setQueue(list);
    setIndex(i);
    setPreview(asPreview);
    setMediaError(null);
    setTime(at);
    setDuration(t.duration_ms / 1000);
    setBuffered([]);
    current.current = { track: t, preview: asPreview, quality: q, announced: false };
    if (!autoplay) setPlaying(false);
    void engine.current.load(t, q, asPreview, at, autoplay, m);
  }, [audioRef]);

  const start = useCallback((list: Track[], i: number, asPreview: boolean) => load(list, i, asPreview, 0, true, quality, match),
    [load, quality, match]);

  /** TRACK alone, whole, at AT seconds, playing when AUTOPLAY: what a
   * listening room plays (rooms/useRoom.ts), in the quality chosen. */
  const playAt = useCallback((t: Track, at: number, autoplay: boolean) => load([t], 0, false, at, autoplay, quality, match),
    [load, quality, match]);

  /** Q, an artist's or a playlist's tracks, as one continuous stream
   * (GET /hls/queue/...), from its start; with the playing track's token
   * when it has one. */
  const playQueue = useCallback((q: QueueSource) => {
    const a = audioRef.current;
    if (!a) return;
    engine.current ??= new Engine(a, (info) => {
      sourceRef.current = info;
      setSource(info);
    });
    const t = queueTrack(q);
    const token = current.current.track && !isQueueTrack(current.current.track) ? tokenOf(current.current.track) : null;
    setQueue([t]);
    setIndex(0);
    setPreview(false);
    setMediaError(null);
    setTime(0);
    setDuration(0);
    setBuffered([]);
    current.current = { track: t, preview: false, quality: 'adaptive', announced: false };
    void engine.current.loadQueue(queueMasterUrl(q, token), q.kind === 'artist' ? q.id : `playlist ${q.id}`, true);
  }, [audioRef]);

  const toggle = useCallback(() => {
    const a = audioRef.current;
    if (!a || !current.current.track) return;
    if (a.paused) a.play().catch((e: unknown) => setMediaError(e instanceof Error ? e.message : String(e)));
    else a.pause();
  }, [audioRef]);

  const seek = useCallback((t: number) => {
    const a = audioRef.current;
    if (!a || !current.current.track) return;
    const d = Number.isFinite(a.duration) ? a.duration : duration;
    a.currentTime = Math.max(0, Math.min(t, d > 0 ? d - 0.05 : t));
    setTime(a.currentTime);
  }, [audioRef, duration]);

  const seekBy = useCallback((seconds: number) => {
    const a = audioRef.current;
    if (a) seek(a.currentTime + seconds);
  }, [audioRef, seek]);

  const next = useCallback(() => {
    if (index + 1 < queue.length) start(queue, index + 1, preview);
  }, [index, queue, preview, start]);
  const prev = useCallback(() => {
    const a = audioRef.current;
    if (a && a.currentTime > 3) seek(0);
    else if (index > 0) start(queue, index - 1, preview);
  }, [audioRef, index, queue, preview, start, seek]);

  // Another version of the song in place of the current track, from the
  // same position, playing or paused as it was.
  const switchTrack = useCallback((t: Track) => {
    const a = audioRef.current;
    const c = current.current;
    if (!a || !c.track) return;
    const list = queue.slice();
    list[index] = t;
    load(list, index, c.preview, a.currentTime, !a.paused, c.quality, match);
  }, [audioRef, queue, index, load, match]);

  // A new quality applies at once, from where the track is, playing or
  // paused as it was; a preview stays a preview.
  const changeQuality = (q: Quality, remember = true) => {
    setQuality(q);
    if (remember) saveQuality(q);
    const a = audioRef.current;
    const c = current.current;
    if (a && c.track && !c.preview && !isQueueTrack(c.track)) load(queue, index, false, a.currentTime, !a.paused, q, match);
  };

  // Loudness match: the same quality at the target (or plain), from where
  // the track is, playing or paused as it was; a preview too.
  const changeMatch = (m: LoudnessMatch) => {
    setMatch(m);
    const a = audioRef.current;
    const c = current.current;
    if (a && c.track && !isQueueTrack(c.track)) load(queue, index, c.preview, a.currentTime, !a.paused, quality, m);
  };

  // The menu gets the server's profiles, and the profile chosen on an
  // earlier visit comes back with them if the server still has it.
  const profilesCame = useEffectEvent((list: TranscodeProfile[]) => {
    setProfiles(list);
    const saved = savedQuality();
    if (saved !== quality && list.some((p) => p.quality_id === saved)) changeQuality(saved, false);
  });
  useEffect(() => {
    const ac = new AbortController();
    fetchProfiles(ac.signal).then(profilesCame, () => {
      if (!ac.signal.aborted) profilesCame([]);
    });
    return () => ac.abort();
  }, []);

  // A new connection (a worker restarted) is told what plays.
  const announce = useEffectEvent(() => {
    const a = audioRef.current;
    const c = current.current;
    if (a && c.track && !a.paused) {
      sendTrack('Play', playCommand({ ...c, track: c.track }, a, sourceRef.current));
      c.announced = true;
    }
  });
  useEffect(() => {
    if (reconnects > 0) announce();
  }, [reconnects]);

  // Continuous play: the next track of the list, not after a preview.
  const ended = useEffectEvent(() => {
    const c = current.current;
    if (c.track) sendTrack('Stop', { track_id: c.track.id });
    c.announced = false;
    if (!preview && index + 1 < queue.length) start(queue, index + 1, false);
    else setPlaying(false);
  });

  // Media events: the UI state, the realtime commands, continuous play.
  useEffect(() => {
    const a = audioRef.current!;
    const c = () => current.current;
    const h: Record<string, () => void> = {
      playing: () => {
        setPlaying(true);
        const cur = c();
        if (cur.track && !cur.announced) {
          sendTrack('Play', playCommand({ ...cur, track: cur.track }, a, sourceRef.current));
          cur.announced = true;
        }
      },
      play: () => setPlaying(true),
      pause: () => {
        setPlaying(false);
        const cur = c();
        if (cur.track && cur.announced && !a.ended) {
          sendTrack('Pause', { track_id: cur.track.id });
          cur.announced = false;
        }
      },
      seeked: () => {
        const t = c().track;
        if (t) sendTrack('Seek', { track_id: t.id, position_ms: Math.floor(a.currentTime * 1000) });
      },
      timeupdate: () => setTime(a.currentTime),
      durationchange: () => {
        if (Number.isFinite(a.duration) && a.duration > 0) setDuration(a.duration);
      },
      progress: () => setBuffered(rangesOf(a.buffered)),
      ended: () => ended(),
      error: () => {
        const e = a.error;
        if (e) setMediaError(`Playback error ${e.code}${e.message ? ': ' + e.message : ''}`);
      },
      loadstart: () => setMediaError(null),
    };
    for (const [k, f] of Object.entries(h)) a.addEventListener(k, f);
    const poll = setInterval(() => setBuffered(rangesOf(a.buffered)), 1000);
    return () => {
      for (const [k, f] of Object.entries(h)) a.removeEventListener(k, f);
      clearInterval(poll);
    };
  }, [audioRef, sendTrack]);

  useEffect(() => () => engine.current?.destroy(), []);

  return {
    track, preview, playing, time, duration, buffered, quality, qualities, source, mediaError, match,
    hasPrev: index > 0 || time > 3,
    hasNext: index + 1 < queue.length,
    start, playAt, playQueue, toggle, seek, seekBy, next, prev, switchTrack, changeQuality: (q: Quality) => changeQuality(q),
    changeMatch: (m: LoudnessMatch) => changeMatch(m),
  };
}
