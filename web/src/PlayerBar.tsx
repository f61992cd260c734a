// The player bar: title and artist, previous / play-pause / next, the seek
// bar (with what is buffered), elapsed and total time, the quality. The seek
// bar draws the track's waveform (GET /api/tracks/ID/peaks) when the server
// has it, and is a plain bar otherwise; timed comments are markers on it.
import { useEffect, useMemo, useRef, useState } from 'react';
import { fetchPeaks, formatTime, isQueueTrack, normalizable, type Comment, type LoudnessMatch, type Peaks, type Track } from './api';
import type { Quality, SourceInfo } from './engine';
import type { QualityOption } from './quality';

export interface PlayerBarProps {
  track: Track | null;
  preview: boolean;
  playing: boolean;
  time: number;
  duration: number;
  buffered: [number, number][];
  quality: Quality;
  /** the quality menu: Adaptive, Original, the server's profiles */
  qualities: readonly QualityOption[];
  source: SourceInfo | null;
  hasPrev: boolean;
  hasNext: boolean;
  onToggle: () => void;
  onPrev: () => void;
  onNext: () => void;
  onSeek: (t: number) => void;
  onQuality: (q: Quality) => void;
  /** Loudness match: null (off), or a target in LUFS */
  match: LoudnessMatch;
  onMatch: (m: LoudnessMatch) => void;
  /** timed comments, drawn as markers on the seek bar; a click seeks there */
  markers?: readonly Comment[];
  /** play/pause and the seek bar are not this listener's (a listening
   * room whose host alone controls playback) */
  locked?: boolean;
}

/** The Loudness match menu: ?normalize= targets. */
const MATCHES: readonly { value: string; label: string }[] = [
  { value: 'off', label: 'Match: off' },
  { value: '-14', label: '−14 LUFS' },
  { value: '-23', label: '−23 LUFS' },
];

const num = (v: number | null | undefined, digits: number) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : null);

/** "−9.8 LUFS · TP −0.4 dBTP · 120 BPM": what the scan measured, the parts
 * it knows. */
export function analysisText(t: Pick<Track, 'loudness' | 'tempo'>): string {
  const lufs = num(t.loudness?.integrated_lufs, 1);
  const tp = num(t.loudness?.true_peak_dbtp, 1);
  const bpm = t.tempo && t.tempo.bpm > 0 ? num(t.tempo.bpm, 0) : null;
  return [lufs && `${lufs} LUFS`, tp && `TP ${tp} dBTP`, bpm && `${bpm} BPM`].filter(Boolean).join(' · ').replace(/-/g, '−');
}

const POINTS = 600;

/** An SVG path of the waveform in a viewBox of POINTS x 2 (y 0 is +1): the
 * upper edge through the maxima, back along the minima; scaled so that the
 * loudest peak fills the height, and never thinner than a line. */
function wavePath(p: Peaks): string {
  const n = p.min.length;
  let peak = 0.05;
  for (let i = 0; i < n; i++) peak = Math.max(peak, p.max[i], -p.min[i]);
  const y = (v: number) => (1 - v / peak).toFixed(3);
  let d = `M0,${y(Math.max(p.max[0], 0.02 * peak))}`;
  for (let i = 0; i < n; i++) d += `L${i},${y(Math.max(p.max[i], 0.02 * peak))}H${i + 1}`;
  for (let i = n - 1; i >= 0; i--) d += `L${i + 1},${y(Math.min(p.min[i], -0.02 * peak))}H${i}`;
  return d + 'Z';
}

function usePeaks(track: Track | null): Peaks | null {
  // the peaks are those of the track they were fetched for: none while
  // another track's are on their way
  const [got, setGot] = useState<{ id: string; url: string | undefined; peaks: Peaks } | null>(null);
  // a continuous queue has no peaks of its own
  const id = track && !isQueueTrack(track) ? track.id : undefined;
  const url = track?.stream_url;
  useEffect(() => {
    if (id === undefined) return;
    const ac = new AbortController();
    // a failure (an old server, an undecodable file) leaves the plain bar
    fetchPeaks({ id, stream_url: url }, POINTS, ac.signal).then((p) => {
      if (p.min.length > 0) setGot({ id, url, peaks: p });
    }, () => {});
    return () => ac.abort();
  }, [id, url]);
  return got && got.id === id && got.url === url ? got.peaks : null;
}

function SeekBar({ track, time, duration, buffered, onSeek, disabled, markers }: {
  track: Track | null; time: number; duration: number; buffered: [number, number][]; onSeek: (t: number) => void; disabled: boolean;
  markers: readonly Comment[];
}) {
  const ref = useRef<HTMLDivElement>(null);
  const peaks = usePeaks(track);
  const wave = useMemo(() => (peaks ? wavePath(peaks) : null), [peaks]);
  const dragging = useRef(false);
  const pct = (t: number) => (duration > 0 ? Math.min(100, Math.max(0, (t / duration) * 100)) : 0);
  const at = (clientX: number) => {
    const r = ref.current!.getBoundingClientRect();
    return Math.min(1, Math.max(0, (clientX - r.left) / r.width)) * duration;
  };
  return (
    <div
      ref={ref}
      className="seek"
      role="slider"
      tabIndex={disabled ? -1 : 0}
      aria-label="Seek"
      aria-valuemin={0}
      aria-valuemax={Math.round(duration) || 0}
      aria-valuenow={Math.round(time)}
      aria-valuetext={`${formatTime(time)} of ${formatTime(duration)}`}
      aria-disabled={disabled}
      data-testid="seek"
      onPointerDown={(e) => {
        if (disabled || !(duration > 0)) return;
        dragging.current = true;
        e.currentTarget.setPointerCapture(e.pointerId);
        onSeek(at(e.clientX));
      }}
      onPointerMove={(e) => {
        if (dragging.current) onSeek(at(e.clientX));
      }}
      onPointerUp={() => {
        dragging.current = false;
      }}
      onPointerCancel={() => {
        dragging.current = false;
      }}
    >
      {wave && peaks ? (
        <div className="seek-wave">
          <svg viewBox={`0 0 ${peaks.min.length} 2`} preserveAspectRatio="none" aria-hidden="true" data-testid="waveform" data-points={peaks.min.length}>
            <defs>
              <clipPath id="wave-buffered">
                {buffered.map(([s, e], i) => (
                  <rect key={i} data-testid="buffered" x={(pct(s) * peaks.min.length) / 100} y="0" width={((pct(e) - pct(s)) * peaks.min.length) / 100} height="2" />
                ))}
              </clipPath>
              <clipPath id="wave-played">
                <rect x="0" y="0" width={(pct(time) * peaks.min.length) / 100} height="2" />
              </clipPath>
            </defs>
            <path className="wave-rest" d={wave} />
            <path className="wave-buffered" d={wave} clipPath="url(#wave-buffered)" />
            <path className="wave-played" d={wave} clipPath="url(#wave-played)" />
          </svg>
          <div className="seek-head" style={{ left: `${pct(time)}%` }} />
        </div>
      ) : (
        <div className="seek-track">
          {buffered.map(([s, e], i) => (
            <div key={i} className="seek-buffered" data-testid="buffered" style={{ left: `${pct(s)}%`, width: `${pct(e) - pct(s)}%` }} />
          ))}
          <div className="seek-played" style={{ width: `${pct(time)}%` }} />
          <div className="seek-thumb" style={{ left: `${pct(time)}%` }} />
        </div>
      )}
      {duration > 0 && markers.map((m) => (
        <button
          key={m.comment_id}
          type="button"
          className="marker"
          style={{ left: `${pct(m.at_ms / 1000)}%` }}
          title={`${formatTime(m.at_ms / 1000)} ${m.user_id}: ${m.body}`}
          aria-label={`Comment at ${formatTime(m.at_ms / 1000)} by ${m.user_id}`}
          data-testid="marker"
          data-at-ms={m.at_ms}
          onPointerDown={(e) => e.stopPropagation()}
          onClick={(e) => {
            e.stopPropagation();
            onSeek(m.at_ms / 1000);
          }}
        />
      ))}
    </div>
  );
}

export function PlayerBar(p: PlayerBarProps) {
  const none = p.track === null;
  return (
    <footer className="player" aria-label="Player">
      <div className="player-row">
        <div className="now" data-testid="now-playing">
          {p.track ? (
            <>
              <span className="now-title">{p.track.title || p.track.id}</span>
              <span className="now-artist">{p.track.artist || 'Unknown artist'}</span>
            </>
          ) : (
            <span className="now-artist">Pick a track</span>
          )}
        </div>
        <div className="controls">
          <button type="button" className="icon" aria-label="Previous track" onClick={p.onPrev} disabled={!p.hasPrev}>
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 5h2v14H6zM20 5v14L9 12z" /></svg>
          </button>
          <button type="button" className="icon play" aria-label={p.playing ? 'Pause' : 'Play'} onClick={p.onToggle} disabled={none || p.locked}
            title={p.locked ? 'The room’s host controls playback' : undefined} data-testid="toggle">
            {p.playing ? (
              <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 5h4v14H6zM14 5h4v14h-4z" /></svg>
            ) : (
              <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M7 4v16l13-8z" /></svg>
            )}
          </button>
          <button type="button" className="icon" aria-label="Next track" onClick={p.onNext} disabled={!p.hasNext}>
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16 5h2v14h-2zM4 5v14l11-7z" /></svg>
          </button>
        </div>
        <label className="quality">
          <span className="visually-hidden">Loudness match</span>
          <select
            aria-label="Loudness match"
            value={p.match === null ? 'off' : String(p.match)}
            onChange={(e) => p.onMatch(e.target.value === 'off' ? null : Number(e.target.value))}
            title={p.track && !normalizable(p.track) ? 'this track’s loudness is not measured: it plays as it is' : undefined}
            data-testid="match-select"
          >
            {MATCHES.map((m) => (
              <option key={m.value} value={m.value}>{m.label}</option>
            ))}
          </select>
        </label>
        <label className="quality">
          <span className="visually-hidden">Quality</span>
          <select aria-label="Quality" value={p.quality} onChange={(e) => p.onQuality(e.target.value)} data-testid="quality-select">
            {p.qualities.map((q) => (
              <option key={q.value} value={q.value}>{q.label}</option>
            ))}
          </select>
        </label>
      </div>
      <div className="player-row progress">
        <span className="time" data-testid="elapsed">{formatTime(p.time)}</span>
        <SeekBar track={p.track} time={p.time} duration={p.duration} buffered={p.buffered} onSeek={p.onSeek} disabled={none || !!p.locked} markers={p.markers ?? []} />
        <span className="time" data-testid="total">{formatTime(p.duration)}</span>
      </div>
      <div className="player-row status" aria-live="polite">
        <span data-testid="source">{p.source ? (p.preview ? 'Preview' : p.source.label) : ''}</span>
        {p.track && analysisText(p.track) && <span className="analysis" data-testid="analysis">{analysisText(p.track)}</span>}
        {p.source?.rung && <span className="rung" data-testid="rung">Rung: {p.source.rung}</span>}
        {p.source?.fallback && <span className="notice" data-testid="fallback">{p.source.fallback}</span>}
      </div>
    </footer>
  );
}
