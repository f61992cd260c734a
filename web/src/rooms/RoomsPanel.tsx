// The Rooms panel: create a listening room (name, mode) or join one from
// its invite link, then the room: its invite link to copy, its members
// (in sync, behind, buffering), the controls (play/pause, seek, skip;
// disabled for the other members of a host room), the shared queue (add
// the playing track, an artist, a playlist; remove, move up or down, play
// an entry), and leave. Names and user ids are rendered as text by React,
// never as HTML.
import { useEffect, useState, type FormEvent } from 'react';
import { formatTime, type Track } from '../api';
import type { Room } from './useRoom';
import { inviteLink, inviteOf, memberSync, roomNow } from './sync';

function CreateOrJoin({ room }: { room: Room }) {
  const [name, setName] = useState('');
  const [mode, setMode] = useState<'open' | 'host'>('open');
  const [link, setLink] = useState('');
  const [linkError, setLinkError] = useState<string | null>(null);
  const create = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim() !== '') void room.create(name, mode);
  };
  const join = (e: FormEvent) => {
    e.preventDefault();
    let inv: ReturnType<typeof inviteOf>;
    try {
      inv = inviteOf(new URL(link.trim(), location.href).search);
    } catch {
      inv = null;
    }
    if (!inv) {
      setLinkError('Not an invite link: it looks like …/?room=…&invite=…');
      return;
    }
    setLinkError(null);
    void room.join(inv.room, inv.invite);
  };
  return (
    <>
      <form className="room-form" onSubmit={create} data-testid="room-create-form">
        <h3>New room</h3>
        <label>
          Name
          <input value={name} maxLength={100} required onChange={(e) => setName(e.target.value)} data-testid="room-name-input" />
        </label>
        <label>
          Mode
          <select value={mode} onChange={(e) => setMode(e.target.value === 'host' ? 'host' : 'open')} data-testid="room-mode">
            <option value="open">Open: everyone controls</option>
            <option value="host">Host: the host controls</option>
          </select>
        </label>
        <button type="submit" disabled={name.trim() === ''} data-testid="room-create">Create room</button>
      </form>
      <form className="room-form" onSubmit={join}>
        <h3>Join with an invite</h3>
        <label>
          Invite link
          <input value={link} onChange={(e) => setLink(e.target.value)} placeholder="https://…/?room=…&invite=…" data-testid="room-invite-input" />
        </label>
        <button type="submit" disabled={link.trim() === ''} data-testid="room-join">Join</button>
        {linkError && <p className="error" role="alert">{linkError}</p>}
      </form>
    </>
  );
}

function InRoom({ room, current, entryTitle }: { room: Room; current: Track | null; entryTitle: (id: string | null) => string }) {
  const r = room.room!;
  const [artist, setArtist] = useState('');
  const [playlist, setPlaylist] = useState('');
  const [copied, setCopied] = useState<string | null>(null);
  // the position shown moves on between the room's events
  const [clockNow, setClockNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setClockNow(Date.now()), 500);
    return () => clearInterval(t);
  }, []);
  const link = room.invite?.url ?? r.invite_url ?? null;
  const abs = link ? inviteLink(link, location.href) : null;
  const now = roomNow(r.playback, r.queue, clockNow + (room.clock?.offset ?? 0));
  const off = !room.control;
  const copy = () => {
    if (!abs) return;
    navigator.clipboard.writeText(abs).then(() => setCopied('Copied'), () => setCopied('Copy it from the field'));
  };
  return (
    <>
      <div className="room-head">
        <p className="room-name" data-testid="room-name">{r.name}</p>
        <p className="muted">
          {r.mode === 'host' ? 'Host mode' : 'Open mode'} · host <span data-testid="room-host">{r.host === room.me ? 'you' : r.host}</span>
        </p>
      </div>
      {abs && (
        <div className="room-invite">
          <label>
            Invite link
            <input readOnly value={abs} onFocus={(e) => e.currentTarget.select()} data-testid="room-invite-link" />
          </label>
          <button type="button" onClick={copy} data-testid="room-copy">Copy invite link</button>
          {copied && <span className="muted" role="status">{copied}</span>}
        </div>
      )}
      <section aria-label="Room playback">
        <h3>Playing</h3>
        <p data-testid="room-now" data-track-id={now.track_id ?? ''} data-playing={now.playing ? 'true' : 'false'}>
          {now.track_id ? `${entryTitle(now.entry_id)} · ${formatTime(now.position_ms / 1000)}${now.playing ? '' : ' (paused)'}` : 'Nothing yet'}
        </p>
        <div className="room-controls" role="group" aria-label="Room controls">
          <button type="button" onClick={() => void room.toggle()} disabled={off || (now.track_id === null && r.queue.length === 0)} data-testid="room-toggle">
            {r.playback.playing ? 'Pause' : 'Play'}
          </button>
          <button type="button" onClick={() => void room.seekBy(-10)} disabled={off || now.track_id === null} data-testid="room-back">−10 s</button>
          <button type="button" onClick={() => void room.seekBy(10)} disabled={off || now.track_id === null} data-testid="room-forward">+10 s</button>
          <button type="button" onClick={() => void room.skip()} disabled={off || now.track_id === null} data-testid="room-skip">Skip</button>
        </div>
        {off && <p className="muted" data-testid="room-host-only">Only the host controls playback in this room.</p>}
      </section>
      <section aria-label="Members">
        <h3>Members ({r.members.length})</h3>
        <ul className="room-members" data-testid="room-members">
          {r.members.map((m) => {
            const s = memberSync(m);
            return (
              <li key={m.user_id} data-user={m.user_id} data-sync={s}>
                <span className={`dot sync-${s.replace(' ', '-')}`} aria-hidden="true" />
                <span className="m-user">{m.user_id === room.me ? 'You' : m.user_id}</span>
                {m.user_id === r.host && <span className="m-host">host</span>}
                <span className="m-sync">
                  {s}{s === 'behind' || s === 'ahead' ? ` ${(Math.abs(m.behind_ms ?? 0) / 1000).toFixed(1)} s` : ''}
                </span>
              </li>
            );
          })}
        </ul>
      </section>
      <section aria-label="Queue">
        <h3>Queue ({r.queue.length})</h3>
        <ol className="room-queue" data-testid="room-queue">
          {r.queue.length === 0 && <li className="muted">Empty</li>}
          {r.queue.map((e, i) => (
            <li key={e.entry_id} data-entry-id={e.entry_id} data-track-id={e.track_id} className={e.entry_id === now.entry_id ? 'current' : undefined}>
              <span className="q-title">{e.title || e.track_id}<span className="muted"> · {e.artist || 'Unknown artist'}</span></span>
              <span className="q-actions">
                <button type="button" onClick={() => void room.playEntry(e.entry_id)} disabled={off} aria-label={`Play ${e.title || e.track_id}`}>▶</button>
                <button type="button" onClick={() => void room.queueMove(e.entry_id, i - 1)} disabled={off || i === 0} aria-label={`Move ${e.title || e.track_id} up`}>↑</button>
                <button type="button" onClick={() => void room.queueMove(e.entry_id, i + 1)} disabled={off || i === r.queue.length - 1} aria-label={`Move ${e.title || e.track_id} down`}>↓</button>
                <button type="button" onClick={() => void room.queueRemove(e.entry_id)} disabled={off} aria-label={`Remove ${e.title || e.track_id}`}>✕</button>
              </span>
            </li>
          ))}
        </ol>
        <div className="room-add">
          <button type="button" disabled={!current} onClick={() => current && void room.queueAdd({ track_id: current.id })} data-testid="room-add-current">
            Add the playing track
          </button>
          <form onSubmit={(ev) => { ev.preventDefault(); if (artist.trim()) void room.queueAdd({ artist: artist.trim() }); }}>
            <label>
              Artist
              <input value={artist} onChange={(ev) => setArtist(ev.target.value)} data-testid="room-add-artist-input" />
            </label>
            <button type="submit" disabled={!artist.trim()} data-testid="room-add-artist">Add artist</button>
          </form>
          <form onSubmit={(ev) => { ev.preventDefault(); if (playlist.trim()) void room.queueAdd({ playlist_id: playlist.trim() }); }}>
            <label>
              Playlist id
              <input value={playlist} onChange={(ev) => setPlaylist(ev.target.value)} data-testid="room-add-playlist-input" />
            </label>
            <button type="submit" disabled={!playlist.trim()} data-testid="room-add-playlist">Add playlist</button>
          </form>
        </div>
      </section>
      <button type="button" className="room-leave" onClick={() => void room.leave()} data-testid="room-leave">Leave the room</button>
    </>
  );
}

export function RoomsPanel({ room, current, known }: { room: Room; current: Track | null; known: ReadonlyMap<string, Track> }) {
  const r = room.room;
  const entryTitle = (id: string | null) => {
    const e = r?.queue.find((q) => q.entry_id === id);
    if (e) return `“${e.title || e.track_id}”`;
    const t = r?.playback.track_id ? known.get(r.playback.track_id) : undefined;
    return t ? `“${t.title || t.id}”` : (r?.playback.track_id ?? '');
  };
  return (
    <aside
      className="rooms"
      aria-label="Listening room"
      data-testid="rooms"
      data-room-id={r?.id ?? ''}
      data-clock-offset={room.clock ? String(room.clock.offset) : ''}
      data-clock-rtt={room.clock ? String(room.clock.rtt) : ''}
      data-lead={String(room.lead_ms)}
    >
      <h2>Listening room</h2>
      {room.notice && <p className="muted" role="status">{room.notice}</p>}
      {room.error && <p className="error" role="alert" data-testid="room-error">{room.error}</p>}
      {r ? <InRoom room={room} current={current} entryTitle={entryTitle} /> : <CreateOrJoin room={room} />}
    </aside>
  );
}
