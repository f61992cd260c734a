// commentsLive.ts: how TrackCommented events and our own posts merge into
// the threads of the comment panel (order, threads, each comment once,
// edits and deletions, events that came during a listing).
import { describe, expect, it } from 'vitest';
import type { Comment } from './api';
import { addComment, applyCommentEvent, commentEvent, followFilter, type CommentEvent } from './commentsLive';

function comment(id: string, at: number, more: Partial<Comment> = {}): Comment {
  return {
    comment_id: id, track_id: 'T1', version: 'v1', user_id: 'ann', parent_id: null, at_ms: at, body: `body ${id}`,
    created_ms: 1000, edited_ms: null, replies: [], ...more,
  };
}

function ev(action: CommentEvent['action'], id: string, more: Partial<CommentEvent> = {}): CommentEvent {
  return {
    event: 'TrackCommented', track_id: 'T1', song_id: 'S', comment_id: id, action, user_id: 'bob', at_ms: 5000,
    parent_id: null, ...(action === 'deleted' ? {} : { body: `live ${id}` }), ...more,
  };
}

const ids = (threads: Comment[]) => threads.map((t) => [t.comment_id, (t.replies ?? []).map((r) => r.comment_id)]);

describe('applyCommentEvent', () => {
  const base = [comment('A', 1000, { replies: [comment('A1', 1000, { parent_id: 'A' })] }), comment('B', 9000)];
  const versions = [{ track_id: 'T1', version: 'v1' }, { track_id: 'T2', version: 'v2' }];

  it('puts a new first comment among the threads by time, with its version', () => {
    const out = applyCommentEvent(base, ev('created', 'N', { track_id: 'T2' }), 2000, versions);
    expect(ids(out)).toEqual([['A', ['A1']], ['N', []], ['B', []]]);
    expect(out[1]).toMatchObject({ body: 'live N', user_id: 'bob', at_ms: 5000, version: 'v2', created_ms: 2000, edited_ms: null });
    expect(ids(base)).toEqual([['A', ['A1']], ['B', []]]); // not changed in place
  });

  it('puts a reply at the end of its thread', () => {
    const out = applyCommentEvent(base, ev('created', 'R', { parent_id: 'A' }), 2000, versions);
    expect(ids(out)).toEqual([['A', ['A1', 'R']], ['B', []]]);
  });

  it('lists a comment once, whether the event or our POST comes first', () => {
    const own = comment('O', 3000, { user_id: 'me', body: 'mine' });
    const viaPost = addComment(base, own);
    const both = applyCommentEvent(viaPost, ev('created', 'O', { at_ms: 3000, user_id: 'me', body: 'mine' }), 2000);
    expect(ids(both)).toEqual([['A', ['A1']], ['O', []], ['B', []]]);
    const viaEvent = applyCommentEvent(base, ev('created', 'O', { at_ms: 3000, user_id: 'me', body: 'mine' }), 2000);
    expect(ids(addComment(viaEvent, own))).toEqual(ids(both));
    // a reply too
    const r = ev('created', 'R', { parent_id: 'A' });
    expect(ids(applyCommentEvent(applyCommentEvent(base, r, 1), r, 2))).toEqual([['A', ['A1', 'R']], ['B', []]]);
  });

  it('leaves out a reply whose thread it does not know', () => {
    expect(applyCommentEvent(base, ev('created', 'R', { parent_id: 'ZZ' }), 1)).toBe(base);
  });

  it('edits a first comment or a reply, keeping the rest', () => {
    const out = applyCommentEvent(base, ev('edited', 'A1', { body: '<b>new</b>' }), 7000);
    expect(out[0].replies?.[0]).toMatchObject({ body: '<b>new</b>', edited_ms: 7000 });
    expect(out[0].body).toBe('body A');
    expect(applyCommentEvent(base, ev('edited', 'B', { body: 'b2' }), 7000)[1].body).toBe('b2');
    expect(applyCommentEvent(base, ev('edited', 'ZZ'), 7000)).toBe(base);
  });

  it('deletes a reply, or a first comment with its replies', () => {
    expect(ids(applyCommentEvent(base, ev('deleted', 'A1'), 1))).toEqual([['A', []], ['B', []]]);
    expect(ids(applyCommentEvent(base, ev('deleted', 'A'), 1))).toEqual([['B', []]]);
    expect(applyCommentEvent(base, ev('deleted', 'ZZ'), 1)).toBe(base);
  });

  it('replays the events that came during a listing onto it', () => {
    // created before the listing read it, deleted after: gone either way
    const listing = [comment('A', 1000), comment('N', 5000)];
    const missed = [ev('created', 'N'), ev('created', 'M', { at_ms: 100 }), ev('deleted', 'N')];
    const out = missed.reduce((t, e) => applyCommentEvent(t, e, 1), listing);
    expect(ids(out)).toEqual([['M', []], ['A', []]]);
  });
});

describe('commentEvent', () => {
  it('takes well-formed TrackCommented events only', () => {
    const good = { ...ev('created', 'A') } as unknown as { event: string; [k: string]: unknown };
    expect(commentEvent(good)).toBe(good);
    expect(commentEvent({ ...good, event: 'TrackLiked' })).toBeNull();
    expect(commentEvent({ ...good, action: 'exploded' })).toBeNull();
    expect(commentEvent({ ...good, body: undefined })).toBeNull();
    expect(commentEvent({ ...good, at_ms: '5' })).toBeNull();
    expect(commentEvent({ ...(ev('deleted', 'A') as unknown as { event: string }) })).not.toBeNull();
  });
});

describe('followFilter', () => {
  it('follows the song when there is one, the track otherwise', () => {
    expect(followFilter('T1', 'S')).toEqual({ song_id: 'S' });
    expect(followFilter('T1', null)).toEqual({ track_id: 'T1' });
    expect(followFilter('T1', undefined)).toEqual({ track_id: 'T1' });
  });
});
