// Feedback on work in progress: the versions of the playing track's song
// (a switcher that keeps the position) and its timed comments (threads, a
// comment box that pins the time it was opened at, replies). Bodies are
// rendered as text by React (text nodes, never innerHTML): a comment is
// shown exactly as typed, whatever markup it holds. Others' comments arrive
// live: the panel follows TrackCommented for the playing song (every
// version) or track, and merges the events (commentsLive.ts).
import { useCallback, useEffect, useRef, useState } from 'react';
import {
  fetchComments, fetchSong, fetchTrack, formatTime, postComment, userToken,
  type Comment, type SongVersion, type Track,
} from './api';
import { addComment, applyCommentEvent, commentEvent, followFilter, type CommentEvent } from './commentsLive';
import type { LiveEvent } from './realtime';

export interface Feedback {
  threads: Comment[];
  versions: SongVersion[];
  /** the comments again */
  reload: () => void;
  /** our own comment, as POST answered it (listed once, whatever comes first) */
  add: (c: Comment) => void;
}

/** What the panel needs of the realtime channel (useRealtime). */
export interface LiveComments {
  follow: (event: string, filters: Record<string, string> | null) => void;
  listen: (fn: (ev: LiveEvent) => void) => () => void;
  /** changes at each new connection: the events in between are lost */
  reconnects: number;
}

/** The comments and versions of TRACK, fetched when it changes (and after
 * a reconnection), kept current with LIVE's TrackCommented events. */
export function useFeedback(track: Track | null, live: LiveComments): Feedback {
  const [threads, setThreads] = useState<Comment[]>([]);
  const [versions, setVersions] = useState<SongVersion[]>([]);
  /** the song of a track (null: in none), as fetched */
  const [song, setSong] = useState<{ track: string; id: string | null } | null>(null);
  const [generation, setGeneration] = useState(0);
  const versionsRef = useRef<SongVersion[]>([]);
  /** the events that came while a listing was on its way (null: none is) */
  const pending = useRef<CommentEvent[] | null>(null);
  const id = track?.id;
  const { follow, listen, reconnects } = live;
  /** undefined while the track's song is not known */
  const songId = song && song.track === id ? song.id : undefined;

  useEffect(() => {
    versionsRef.current = versions;
  }, [versions]);

  useEffect(() => {
    if (id === undefined) return;
    const ac = new AbortController();
    fetchTrack(id, ac.signal).then(async (t) => {
      setSong({ track: id, id: t.song_id });
      const song = t.song_id ? await fetchSong(t.song_id, ac.signal) : null;
      setVersions(song ? song.versions : []);
    }).catch(() => {
      if (ac.signal.aborted) return;
      setVersions([]);
      setSong({ track: id, id: null });
    });
    return () => ac.abort();
  }, [id]);

  // follow the track at once, then its whole song once it is known
  useEffect(() => {
    follow('TrackCommented', id === undefined ? null : followFilter(id, songId));
  }, [follow, id, songId]);
  useEffect(() => () => follow('TrackCommented', null), [follow]);

  useEffect(() => {
    if (id === undefined) return;
    return listen((ev: LiveEvent) => {
      const ce = commentEvent(ev);
      if (!ce) return;
      const mine = ce.track_id === id || (!!songId && ce.song_id === songId) ||
        versionsRef.current.some((v) => v.track_id === ce.track_id);
      if (!mine) return;
      pending.current?.push(ce);
      const now = Date.now();
      setThreads((prev) => applyCommentEvent(prev, ce, now, versionsRef.current));
    });
  }, [listen, id, songId]);

  useEffect(() => {
    if (id === undefined) return;
    const ac = new AbortController();
    pending.current = [];
    fetchComments(id, ac.signal).then((c) => {
      const missed = pending.current ?? [];
      pending.current = null;
      const now = Date.now();
      setThreads(missed.reduce((t, ev) => applyCommentEvent(t, ev, now, versionsRef.current), c.threads));
    }, () => {
      if (ac.signal.aborted) return;
      pending.current = null;
      setThreads([]);
    });
    return () => ac.abort();
  }, [id, generation, reconnects]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const add = useCallback((c: Comment) => {
    pending.current?.push({
      event: 'TrackCommented', track_id: c.track_id, comment_id: c.comment_id, action: 'created',
      user_id: c.user_id, at_ms: c.at_ms, parent_id: c.parent_id, body: c.body,
    });
    setThreads((prev) => addComment(prev, c));
  }, []);
  return id === undefined ? { threads: [], versions: [], reload, add } : { threads, versions, reload, add };
}

function versionLabel(v: { version: string | null }): string {
  return v.version ?? 'original';
}

function CommentItem({ c, current, onSeek, onReply }: {
  c: Comment; current: string; onSeek: (t: number) => void; onReply?: (c: Comment) => void;
}) {
  return (
    <div className="comment" data-testid="comment" data-comment-id={c.comment_id} data-at-ms={c.at_ms}>
      <div className="c-head">
        <button type="button" className="c-time" onClick={() => onSeek(c.at_ms / 1000)} data-testid="comment-time">
          {formatTime(c.at_ms / 1000)}
        </button>
        <span className="c-user">{c.user_id}</span>
        {c.track_id !== current && <span className="c-version" data-testid="comment-version">{versionLabel(c)}</span>}
        {onReply && (
          <button type="button" className="c-reply" onClick={() => onReply(c)} data-testid="comment-reply">Reply</button>
        )}
      </div>
      <p className="c-body" data-testid="comment-text">{c.body}</p>
    </div>
  );
}

export function FeedbackPanel({ track, time, feedback, onSeek, onSwitch }: {
  track: Track; time: number; feedback: Feedback; onSeek: (t: number) => void; onSwitch: (id: string) => void;
}) {
  const [body, setBody] = useState('');
  const [pinned, setPinned] = useState<number | null>(null);
  const [parent, setParent] = useState<Comment | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const canPost = userToken() !== null;

  const submit = async () => {
    if (!body.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const at = parent ? parent.at_ms : (pinned ?? time) * 1000;
      const c = await postComment(track.id, at, body, parent?.comment_id ?? null);
      setBody('');
      setPinned(null);
      setParent(null);
      feedback.add({ ...c, version: feedback.versions.find((v) => v.track_id === c.track_id)?.version ?? null });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="feedback" aria-label="Feedback" data-testid="feedback">
      {feedback.versions.length > 1 && (
        <label className="versions">
          <span>Version</span>
          <select value={track.id} onChange={(e) => onSwitch(e.target.value)} data-testid="version-select" aria-label="Version">
            {feedback.versions.map((v) => (
              <option key={v.track_id} value={v.track_id}>
                {versionLabel(v)} · {new Date(v.date_ms).toLocaleDateString()}
              </option>
            ))}
          </select>
        </label>
      )}
      <h2>Comments</h2>
      {canPost ? (
        <form className="c-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
          <textarea
            value={body}
            placeholder={parent ? `Reply to ${parent.user_id}` : 'Comment at the current time'}
            aria-label="Comment"
            data-testid="comment-body"
            onFocus={() => { if (pinned === null) setPinned(time); }}
            onChange={(e) => setBody(e.target.value)}
          />
          <div className="c-actions">
            <span className="c-at" data-testid="comment-at">
              {parent ? `reply to ${parent.user_id}` : `at ${formatTime(pinned ?? time)}`}
            </span>
            {(parent || pinned !== null) && (
              <button type="button" onClick={() => { setParent(null); setPinned(null); }}>Cancel</button>
            )}
            <button type="submit" disabled={busy || !body.trim()} data-testid="comment-post">Comment</button>
          </div>
          {error && <p className="error" role="alert" data-testid="comment-error">{error}</p>}
        </form>
      ) : (
        <p className="c-note">Open the player with a user token to comment.</p>
      )}
      <ol className="threads" data-testid="comments">
        {feedback.threads.map((t) => (
          <li key={t.comment_id}>
            <CommentItem c={t} current={track.id} onSeek={onSeek} onReply={canPost ? setParent : undefined} />
            {t.replies && t.replies.length > 0 && (
              <ol className="replies">
                {t.replies.map((r) => (
                  <li key={r.comment_id}><CommentItem c={r} current={track.id} onSeek={onSeek} /></li>
                ))}
              </ol>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
