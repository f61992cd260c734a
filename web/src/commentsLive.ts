// Live timed comments: the TrackCommented events of /api/ws merged into the
// threads the comment panel and the seek bar's markers show. Pure functions
// (realtime.ts carries the events, Feedback.tsx holds the state): a comment
// is known by its id, so one that arrives twice (our own post, answered by
// POST and announced by the event) is listed once, and the events that came
// while a listing was being fetched apply to it again when it lands.
import type { Comment } from './api';

/** TrackCommented as talas-master(8), REALTIME, gives it. */
export interface CommentEvent {
  event: 'TrackCommented';
  track_id: string;
  song_id?: string | null;
  comment_id: string;
  action: 'created' | 'edited' | 'deleted';
  user_id: string;
  at_ms: number;
  parent_id: string | null;
  /** absent when deleted */
  body?: string;
}

/** The event EV carries, or null when it is no well-formed TrackCommented. */
export function commentEvent(ev: { event: string; [k: string]: unknown }): CommentEvent | null {
  if (ev.event !== 'TrackCommented') return null;
  const e = ev as Record<string, unknown>;
  const okAction = e.action === 'created' || e.action === 'edited' || e.action === 'deleted';
  if (typeof e.track_id !== 'string' || typeof e.comment_id !== 'string' || typeof e.user_id !== 'string' ||
      typeof e.at_ms !== 'number' || !okAction || (e.parent_id !== null && typeof e.parent_id !== 'string'))
    return null;
  if (e.action !== 'deleted' && typeof e.body !== 'string') return null;
  return ev as unknown as CommentEvent;
}

/** The subscription filter that follows TRACK_ID and, when it is in a
 * song, every version of it (one filter matches one value). */
export function followFilter(trackId: string, songId: string | null | undefined): Record<string, string> {
  return songId ? { song_id: songId } : { track_id: trackId };
}

/** The server's order of threads: by at_ms, then creation, then id. */
function byTime(a: Comment, b: Comment): number {
  if (a.at_ms !== b.at_ms) return a.at_ms - b.at_ms;
  if (a.created_ms !== b.created_ms) return a.created_ms - b.created_ms;
  return a.comment_id < b.comment_id ? -1 : a.comment_id > b.comment_id ? 1 : 0;
}

function has(threads: readonly Comment[], id: string): boolean {
  return threads.some((t) => t.comment_id === id || (t.replies ?? []).some((r) => r.comment_id === id));
}

/** THREADS with C in its place: a first comment among the threads by
 * time, a reply at the end of its thread's replies. Unchanged when C is
 * listed already, or when its thread is not (a reply to what we never saw:
 * the next listing brings both). */
export function addComment(threads: readonly Comment[], c: Comment): Comment[] {
  if (has(threads, c.comment_id)) return threads as Comment[];
  if (!c.parent_id) return [...threads, { ...c, replies: c.replies ?? [] }].sort(byTime);
  if (!threads.some((t) => t.comment_id === c.parent_id)) return threads as Comment[];
  return threads.map((t) => (t.comment_id === c.parent_id ? { ...t, replies: [...(t.replies ?? []), { ...c }] } : t));
}

/** THREADS after EV, received at NOW (ms): created adds (once), edited
 * replaces the body, deleted removes the comment (a first comment with its
 * replies). VERSIONS labels a comment of another version of the song. */
export function applyCommentEvent(threads: readonly Comment[], ev: CommentEvent, now: number,
  versions: readonly { track_id: string; version: string | null }[] = []): Comment[] {
  const id = ev.comment_id;
  if (ev.action === 'created') {
    return addComment(threads, {
      comment_id: id,
      track_id: ev.track_id,
      version: versions.find((v) => v.track_id === ev.track_id)?.version ?? null,
      user_id: ev.user_id,
      parent_id: ev.parent_id,
      at_ms: ev.at_ms,
      body: ev.body ?? '',
      created_ms: now,
      edited_ms: null,
      replies: [],
    });
  }
  if (!has(threads, id)) return threads as Comment[];
  if (ev.action === 'deleted') {
    return threads.filter((t) => t.comment_id !== id)
      .map((t) => ((t.replies ?? []).some((r) => r.comment_id === id)
        ? { ...t, replies: (t.replies ?? []).filter((r) => r.comment_id !== id) } : t));
  }
  const edit = (c: Comment): Comment => (c.comment_id === id ? { ...c, body: ev.body ?? c.body, edited_ms: now } : c);
  return threads.map((t) => ({ ...edit(t), replies: (t.replies ?? []).map(edit) }));
}
