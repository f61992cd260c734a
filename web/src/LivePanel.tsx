// The live panel: who is listening (Playback* events and LiveStats), likes,
// server messages, and the state of the realtime connection.
import type { Track } from './api';
import type { Listener, LiveEvent, LiveStats, WsState } from './realtime';

/** An event's field as text: JSON for what is neither text nor a number. */
function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

function describe(ev: LiveEvent, title: (id: unknown) => string, me: string): string {
  const s = (k: string) => (ev[k] === me ? 'You' : text(ev[k]));
  switch (ev.event) {
    case 'PlaybackStarted': return `${s('user_id')} started ${title(ev.track_id)}`;
    case 'PlaybackResumed': return `${s('user_id')} resumed ${title(ev.track_id)}`;
    case 'PlaybackPaused': return `${s('user_id')} paused ${title(ev.track_id)}`;
    case 'PlaybackStopped': return `${s('user_id')} stopped ${title(ev.track_id)}`;
    case 'TrackLiked': return `${s('user_id')} liked ${title(ev.track_id)} (${s('total_likes')} likes)`;
    case 'TrackShared': return `${s('from_user')} shared ${title(ev.track_id)}${ev.message ? ': ' + s('message') : ''}`;
    case 'UserFollowed': return `${s('follower_id')} follows ${s('followed_id')}`;
    case 'ServerMessage': return s('message');
    case 'PlaylistUpdated': return `playlist ${s('playlist_id')}: ${s('action')} ${ev.track_id ? title(ev.track_id) : ''}`;
    case 'PlaylistShared': return `${s('from_user')} shared playlist ${s('playlist_id')}`;
    case 'RateLimitWarning': return `slow down: ${s('remaining_requests')} commands left for ${s('reset_time_seconds')} s`;
    default: return ev.event;
  }
}

export function LivePanel({ state, retryIn, events, listeners, stats, me, known }: {
  state: WsState; retryIn: number; events: LiveEvent[]; listeners: Record<string, Listener>;
  stats: LiveStats | null; me: string; known: ReadonlyMap<string, Track>;
}) {
  const title = (id: unknown) => {
    const t = known.get(text(id));
    return t ? `“${t.title || t.id}”` : text(id);
  };
  const list = Object.values(listeners).sort((a, b) => b.at - a.at);
  const stateText = state === 'connected' ? 'connected'
    : state === 'connecting' ? 'connecting…'
    : `reconnecting${retryIn ? ` in ${(retryIn / 1000).toFixed(1)} s` : '…'}`;
  return (
    <aside className="live" aria-label="Live">
      <h2>
        Live <span className={`ws ws-${state}`} data-testid="ws-state" data-state={state} role="status">{stateText}</span>
      </h2>
      <section>
        <h3>Listening now</h3>
        <ul className="listeners" data-testid="listeners">
          {list.length === 0 && <li className="muted">Nobody yet</li>}
          {list.map((l) => (
            <li key={l.user_id} data-user={l.user_id}>
              <span className={`dot ${l.state}`} aria-hidden="true" />
              {l.user_id === me ? 'You' : l.user_id} · {title(l.track_id)}{l.state === 'paused' ? ' (paused)' : ''}
            </li>
          ))}
        </ul>
        {stats && (
          <p className="muted" data-testid="live-stats">
            {stats.concurrent_listeners} stream{stats.concurrent_listeners === 1 ? '' : 's'} in progress on the server
          </p>
        )}
        {stats && stats.top_tracks?.length > 0 && (
          <ol className="top" data-testid="top-tracks">
            {stats.top_tracks.slice(0, 5).map((t) => (
              <li key={t.track_id}>{t.title ? `“${t.title}”` : title(t.track_id)}{t.artist ? ` · ${t.artist}` : ''} — {t.current_listeners}</li>
            ))}
          </ol>
        )}
      </section>
      <section>
        <h3>Events</h3>
        <ul className="events" data-testid="live-events">
          {events.length === 0 && <li className="muted">No events yet</li>}
          {events.map((ev, i) => (
            <li key={`${String(ev._at)}-${i}`} className={`ev ev-${ev.event}${ev.level ? ' lvl-' + text(ev.level).toLowerCase() : ''}`} data-event={ev.event}>
              <span className="ev-kind">{ev.event === 'ServerMessage' ? text(ev.level ?? 'Info') : ev.event.replace(/([a-z])([A-Z])/g, '$1 $2')}</span>
              <span className="ev-text">{describe(ev, title, me)}</span>
            </li>
          ))}
        </ul>
      </section>
    </aside>
  );
}
