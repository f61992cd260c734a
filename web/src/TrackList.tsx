// The track list: the library page by page from GET /api/tracks, searched
// as one types, each track with its play and its 30 s preview buttons.
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { formatTime, listTracks, type Track } from './api';

const PAGE = 100;

export interface TrackListState {
  query: string;
  setQuery: (q: string) => void;
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
  const [tracks, setTracks] = useState<Track[]>([]);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [known, setKnown] = useState<ReadonlyMap<string, Track>>(() => new Map());

  const load = useCallback(async (q: string, offset: number, signal?: AbortSignal) => {
    setLoading(true);
    try {
      const page = await listTracks(q, offset, PAGE, signal);
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
    const timer = setTimeout(() => void load(query.trim(), 0, ctl.signal), query ? 200 : 0);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [query, load]);

  return { query, setQuery, tracks, total, error, loading, known, more: () => void load(query.trim(), tracks.length) };
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
  return (
    <main className="library" aria-label="Tracks" aria-busy={loading}>
      {error && <p className="error" role="alert">{error}</p>}
      <p className="count" data-testid="track-count">
        {loading && tracks.length === 0 ? 'Loading…' : `${total} track${total === 1 ? '' : 's'}${query ? ` matching “${query.trim()}”` : ''}`}
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
              <span className="t-dur">{formatTime(t.duration_ms / 1000)}</span>
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
