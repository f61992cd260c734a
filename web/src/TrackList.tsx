// The track list: the library page by page from GET /api/tracks, searched
// as one types and filtered by tempo and duration (bpm_min, bpm_max,
// max_duration), each track with its play and its 30 s preview buttons.
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { formatTime, listTracks, NO_FILTERS, type Track, type TrackFilters } from './api';

const PAGE = 100;

export interface TrackListState {
  query: string;
  setQuery: (q: string) => void;
  filters: TrackFilters;
  setFilters: (f: TrackFilters) => void;
  tracks: Track[];
  total: number;
  error: string | null;
  loading: boolean;
  /** every track listed so far, by id: the live panel names tracks with it */
  known: ReadonlyMap<string, Track>;
  more: () => void;
}

export function useTrackList(): TrackListState {
  const [query, setQuery] = useState('');
  const [filters, setFilters] = useState<TrackFilters>(NO_FILTERS);
  const [tracks, setTracks] = useState<Track[]>([]);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [known, setKnown] = useState<ReadonlyMap<string, Track>>(() => new Map());

  const load = useCallback(async (q: string, f: TrackFilters, offset: number, signal?: AbortSignal) => {
    setLoading(true);
    try {
      const page = await listTracks(q, offset, PAGE, signal, f);
      setKnown((prev) => {
        const m = new Map(prev);
        page.tracks.forEach((t) => m.set(t.id, t));
        return m;
      });
      setTracks((prev) => (offset === 0 ? page.tracks : [...prev, ...page.tracks]));
      setTotal(page.total);
      setError(null);
    } catch (e) {
      if ((e as Error).name !== 'AbortError') setError(`Could not load the tracks: ${(e as Error).message}`);
    } finally {
      if (!signal?.aborted) setLoading(false);
    }
  }, []);

  // A search waits for a pause in the typing; the one it replaces is aborted.
  useEffect(() => {
    const ctl = new AbortController();
    const typing = query || filters !== NO_FILTERS;
    const timer = setTimeout(() => void load(query.trim(), filters, 0, ctl.signal), typing ? 200 : 0);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [query, filters, load]);

  return {
    query, setQuery, filters, setFilters, tracks, total, error, loading, known,
    more: () => void load(query.trim(), filters, tracks.length),
  };
}

/** A number field's value: null when empty or not a number (the server
 * would answer 400). */
function fieldValue(s: string): number | null {
  const v = s.trim() === '' ? NaN : Number(s);
  return Number.isFinite(v) && v >= 0 ? v : null;
}

function Filters({ filters, onChange }: { filters: TrackFilters; onChange: (f: TrackFilters) => void }) {
  const field = (key: keyof TrackFilters, label: string, testid: string, placeholder: string) => (
    <label className="filter">
      <span>{label}</span>
      <input
        type="number"
        inputMode="numeric"
        min={0}
        placeholder={placeholder}
        aria-label={label}
        defaultValue={filters[key] ?? ''}
        onChange={(e) => onChange({ ...filters, [key]: fieldValue(e.target.value) })}
        data-testid={testid}
      />
    </label>
  );
  return (
    <div className="filters" role="group" aria-label="Filters">
      {field('bpmMin', 'BPM from', 'bpm-min', 'any')}
      {field('bpmMax', 'BPM to', 'bpm-max', 'any')}
      {field('maxDuration', 'Max seconds', 'max-duration', 'any')}
    </div>
  );
}

export function TrackList({ list, current, preview, onPlay, children }: {
  list: TrackListState;
  /** the track loaded in the player */
  current: Track | null;
  preview: boolean;
  onPlay: (tracks: Track[], index: number, preview: boolean) => void;
  /** shown under the list */
  children?: ReactNode;
}) {
  const { query, tracks, total, error, loading } = list;
  const filtered = list.filters.bpmMin !== null || list.filters.bpmMax !== null || list.filters.maxDuration !== null;
  return (
    <main className="library" aria-label="Tracks" aria-busy={loading}>
      <Filters filters={list.filters} onChange={list.setFilters} />
      {error && <p className="error" role="alert">{error}</p>}
      <p className="count" data-testid="track-count">
        {loading && tracks.length === 0 ? 'Loading…' : `${total} track${total === 1 ? '' : 's'}${query ? ` matching “${query.trim()}”` : ''}${filtered ? ' (filtered)' : ''}`}
      </p>
      <ol className="tracks" data-testid="tracks">
        {tracks.map((t, i) => {
          const isCurrent = current?.id === t.id;
          return (
            <li key={t.id} data-track-id={t.id} className={isCurrent ? (preview ? 'current preview' : 'current') : undefined}>
              <button
                type="button"
                className="track-play"
                aria-label={`Play ${t.title || t.id}${t.artist ? ' by ' + t.artist : ''}`}
                aria-current={isCurrent && !preview ? 'true' : undefined}
                onClick={() => onPlay(tracks, i, false)}
              >
                <span className="t-title">{t.title || t.id}</span>
                <span className="t-meta">{[t.artist, t.album].filter(Boolean).join(' — ')}</span>
              </button>
              <span className="t-dur">
                {t.tempo && t.tempo.bpm > 0 && <span className="t-bpm" data-testid="bpm">{Math.round(t.tempo.bpm)} BPM</span>}
                {formatTime(t.duration_ms / 1000)}
              </span>
              <button
                type="button"
                className="track-preview"
                aria-label={`Preview 30 seconds of ${t.title || t.id}`}
                title="30 s preview"
                onClick={() => onPlay(tracks, i, true)}
              >
                30 s
              </button>
            </li>
          );
        })}
      </ol>
      {tracks.length < total && (
        <button type="button" className="more" onClick={list.more} disabled={loading}>
          Load more ({total - tracks.length})
        </button>
      )}
      {children}
    </main>
  );
}
