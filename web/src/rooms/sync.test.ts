import { describe, expect, it } from 'vitest';
import {
  applyRoomEvent, clockOffset, driftAction, inviteLink, learnLead, inviteOf, isRoomState, mayControl, memberSync, positionAt, roomNow, syncStep,
  type RoomEntry, type RoomMember, type RoomPlayback, type RoomState,
} from './sync';

const q: RoomEntry[] = [
  { entry_id: 'e1', track_id: 't1', title: 'One', artist: 'A', duration_ms: 10000 },
  { entry_id: 'e2', track_id: 't2', title: 'Two', artist: 'A', duration_ms: 5000 },
  { entry_id: 'e3', track_id: 't3', title: 'Three', artist: 'B', duration_ms: 8000 },
];
const pb = (o: Partial<RoomPlayback>): RoomPlayback =>
  ({ track_id: 't1', entry_id: 'e1', position_ms: 0, at_server_ms: 1000, playing: true, ...o });

describe('clockOffset', () => {
  it('takes the sample of the shortest round trip', () => {
    const r = clockOffset([
      { t0: 0, t1: 100, server_ms: 10060 },   // rtt 100: offset 10010
      { t0: 200, t1: 210, server_ms: 10207 }, // rtt 10: offset 10002
      { t0: 300, t1: 340, server_ms: 10330 }, // rtt 40: offset 10010
    ]);
    expect(r).toEqual({ offset: 10002, rtt: 10 });
  });
  it('is negative when the page is ahead of the server', () => {
    expect(clockOffset([{ t0: 5000, t1: 5004, server_ms: 3002 }])?.offset).toBe(-2000);
  });
  it('ignores broken samples, and has no answer without a good one', () => {
    expect(clockOffset([])).toBeNull();
    expect(clockOffset([{ t0: 10, t1: 5, server_ms: 1 }, { t0: NaN, t1: 1, server_ms: 1 }])).toBeNull();
    expect(clockOffset([{ t0: 10, t1: 5, server_ms: 1 }, { t0: 0, t1: 2, server_ms: 11 }])).toEqual({ offset: 10, rtt: 2 });
  });
});

describe('the position rule', () => {
  it('moves on while playing and stays while paused', () => {
    expect(positionAt(pb({ position_ms: 2000, at_server_ms: 1000 }), 1500)).toBe(2500);
    expect(positionAt(pb({ position_ms: 2000, at_server_ms: 1000, playing: false }), 99999)).toBe(2000);
  });
  it('stays on the entry before its end', () => {
    expect(roomNow(pb({ position_ms: 9000 }), q, 1999)).toEqual({ track_id: 't1', entry_id: 'e1', index: 0, position_ms: 9999, playing: true });
  });
  it('passes to the next entries at the instants they start', () => {
    // e1 ends at 1000 + 10000; e2 runs 11000..16000; e3 16000..24000
    expect(roomNow(pb({}), q, 11000)).toMatchObject({ entry_id: 'e2', track_id: 't2', index: 1, position_ms: 0, playing: true });
    expect(roomNow(pb({}), q, 17500)).toMatchObject({ entry_id: 'e3', index: 2, position_ms: 1500, playing: true });
  });
  it('stops at the end of the last track', () => {
    expect(roomNow(pb({}), q, 30000)).toEqual({ track_id: 't3', entry_id: 'e3', index: 2, position_ms: 8000, playing: false });
    expect(roomNow(pb({ entry_id: 'e3', track_id: 't3', position_ms: 7000 }), q, 2000)).toMatchObject({ playing: false, position_ms: 8000 });
  });
  it('leaves a paused room, or an entry not in the queue, where it is', () => {
    expect(roomNow(pb({ playing: false, position_ms: 50000 }), q, 99999)).toMatchObject({ entry_id: 'e1', position_ms: 50000, playing: false });
    expect(roomNow(pb({ entry_id: 'gone', track_id: 'tx', position_ms: 100 }), q, 1100)).toMatchObject({ track_id: 'tx', index: -1, position_ms: 200, playing: true });
    expect(roomNow(pb({ entry_id: null, track_id: null, playing: false }), q, 5)).toMatchObject({ track_id: null, index: -1 });
  });
  it('never lets an entry of no known length end', () => {
    const q0 = [{ ...q[0], duration_ms: 0 }, q[1]];
    expect(roomNow(pb({}), q0, 1e9)).toMatchObject({ entry_id: 'e1', playing: true });
  });
});

describe('drift', () => {
  it('does nothing under 25 ms', () => {
    expect(driftAction(10000, 10024)).toEqual({ kind: 'none', rate: 1 });
    expect(driftAction(10024, 10000)).toEqual({ kind: 'none', rate: 1 });
  });
  it('nudges the rate in proportion up to 500 ms, within 0.95..1.05', () => {
    expect(driftAction(10000, 10040)).toEqual({ kind: 'rate', rate: 1.02 });   // behind: faster
    expect(driftAction(10040, 10000)).toEqual({ kind: 'rate', rate: 0.98 });   // ahead: slower
    expect(driftAction(10000, 10400)).toEqual({ kind: 'rate', rate: 1.05 });
    expect(driftAction(10400, 10000)).toEqual({ kind: 'rate', rate: 0.95 });
    expect(driftAction(10000, 10500)).toEqual({ kind: 'rate', rate: 1.05 });
  });
  it('once correcting, goes on down to 8 ms', () => {
    expect(driftAction(10000, 10020, true)).toEqual({ kind: 'rate', rate: 1.01 });
    expect(driftAction(10020, 10000, true)).toEqual({ kind: 'rate', rate: 0.99 });
    expect(driftAction(10000, 10007, true)).toEqual({ kind: 'none', rate: 1 });
    expect(driftAction(10000, 10020, false)).toEqual({ kind: 'none', rate: 1 });
  });
  it('seeks beyond 500 ms', () => {
    expect(driftAction(10000, 10501)).toEqual({ kind: 'seek', to_ms: 10501, rate: 1 });
    expect(driftAction(20000, 10000)).toEqual({ kind: 'seek', to_ms: 10000, rate: 1 });
    expect(driftAction(NaN, 10000)).toEqual({ kind: 'seek', to_ms: 10000, rate: 1 });
  });
});

describe('syncStep', () => {
  const now = { track_id: 't1', entry_id: 'e1', index: 0, position_ms: 5000, playing: true };
  const el = { track_id: 't1', position_ms: 5000, paused: false, buffering: false, ended: false };
  it('loads another track at the computed position (a late joiner)', () => {
    expect(syncStep(now, { ...el, track_id: null, paused: true })).toEqual({ kind: 'load', track_id: 't1', at_ms: 5000, playing: true });
    expect(syncStep({ ...now, playing: false }, { ...el, track_id: 't9' })).toEqual({ kind: 'load', track_id: 't1', at_ms: 5000, playing: false });
  });
  it('plays a paused element from the room position', () => {
    expect(syncStep(now, { ...el, paused: true, position_ms: 100 })).toEqual({ kind: 'play', at_ms: 5000 });
  });
  it('corrects the drift of a playing element', () => {
    expect(syncStep(now, el)).toEqual({ kind: 'drift', action: { kind: 'none', rate: 1 } });
    expect(syncStep(now, { ...el, position_ms: 4900 })).toEqual({ kind: 'drift', action: { kind: 'rate', rate: 1.05 } });
    expect(syncStep(now, { ...el, position_ms: 1000 })).toEqual({ kind: 'drift', action: { kind: 'seek', to_ms: 5000, rate: 1 } });
    expect(syncStep(now, { ...el, position_ms: 4985 })).toEqual({ kind: 'drift', action: { kind: 'none', rate: 1 } });
    expect(syncStep(now, { ...el, position_ms: 4985, correcting: true })).toEqual({ kind: 'drift', action: { kind: 'rate', rate: 1.008 } });
  });
  it('waits at the end of a track for the room to pass to the next entry', () => {
    expect(syncStep(now, { ...el, paused: true, ended: true })).toEqual({ kind: 'idle' });
  });
  it('leaves a buffering element to fill', () => {
    expect(syncStep(now, { ...el, position_ms: 1000, buffering: true })).toEqual({ kind: 'idle' });
  });
  it('pauses with the room, at its position', () => {
    const paused = { ...now, playing: false };
    expect(syncStep(paused, el)).toEqual({ kind: 'pause', at_ms: null });
    expect(syncStep(paused, { ...el, position_ms: 5300 })).toEqual({ kind: 'pause', at_ms: 5000 });
    expect(syncStep(paused, { ...el, paused: true })).toEqual({ kind: 'idle' });
    expect(syncStep(paused, { ...el, paused: true, position_ms: 5002 })).toEqual({ kind: 'idle' });
    expect(syncStep(paused, { ...el, paused: true, position_ms: 5010 })).toEqual({ kind: 'pause', at_ms: 5000 });
    expect(syncStep(paused, { ...el, paused: true, position_ms: 9000 })).toEqual({ kind: 'pause', at_ms: 5000 });
  });
  it('stops an element when the room has nothing to play', () => {
    const none = { track_id: null, entry_id: null, index: -1, position_ms: 0, playing: false };
    expect(syncStep(none, el)).toEqual({ kind: 'pause', at_ms: null });
    expect(syncStep(none, { ...el, paused: true })).toEqual({ kind: 'idle' });
  });
});

describe('learnLead', () => {
  it('adds the drift seen after a seek to the lead, within 0..1500 ms', () => {
    expect(learnLead(0, 120)).toBe(120);
    expect(learnLead(120, -30)).toBe(90);
    expect(learnLead(10, -50)).toBe(0);
    expect(learnLead(1400, 400)).toBe(1500);
    expect(learnLead(80, NaN)).toBe(80);
  });
});

describe('members and permissions', () => {
  const m = { user_id: 'u', joined_at_ms: 1, position_ms: 1000, reported_at_ms: 2, buffering: false, behind_ms: 10 };
  it('says who is in sync, behind, ahead, buffering or not yet reporting', () => {
    expect(memberSync(m)).toBe('in sync');
    expect(memberSync({ ...m, behind_ms: 900 })).toBe('behind');
    expect(memberSync({ ...m, behind_ms: -900 })).toBe('ahead');
    expect(memberSync({ ...m, behind_ms: 900, buffering: true })).toBe('buffering');
    expect(memberSync({ ...m, behind_ms: null, position_ms: null })).toBe('waiting');
  });
  it('lets every member of an open room command, the host alone of a host room', () => {
    expect(mayControl({ mode: 'open', host: 'a' }, 'b')).toBe(true);
    expect(mayControl({ mode: 'host', host: 'a' }, 'a')).toBe(true);
    expect(mayControl({ mode: 'host', host: 'a' }, 'b')).toBe(false);
  });
});

describe('invites', () => {
  it('reads the room and the token of an invite address', () => {
    expect(inviteOf('?room=0123456789abcdef01234567&invite=a.b.c')).toEqual({ room: '0123456789abcdef01234567', invite: 'a.b.c' });
    expect(inviteOf('?room=0123456789abcdef01234567')).toEqual({ room: '0123456789abcdef01234567', invite: null });
    expect(inviteOf('')).toBeNull();
    expect(inviteOf('?room=<script>&invite=x')).toBeNull();
    expect(inviteOf('?room=0123456789ABCDEF01234567')).toBeNull();
  });
  it('makes the link absolute, under the page prefix', () => {
    expect(inviteLink('/?room=ab&invite=t', 'https://h.example/player/index.html#token=x')).toBe('https://h.example/player/?room=ab&invite=t');
    expect(inviteLink('/?room=ab&invite=t', 'http://127.0.0.1:8/')).toBe('http://127.0.0.1:8/?room=ab&invite=t');
  });
});

describe('isRoomState', () => {
  const ok = {
    id: 'r', name: 'n', mode: 'open', host: 'h', members: [], queue: [], server_ms: 1,
    playback: { track_id: null, entry_id: null, position_ms: 0, at_server_ms: 0, playing: false },
  };
  it('accepts a state and refuses what is not one', () => {
    expect(isRoomState(ok)).toBe(true);
    expect(isRoomState(null)).toBe(false);
    expect(isRoomState({ ...ok, mode: 'party' })).toBe(false);
    expect(isRoomState({ ...ok, playback: null })).toBe(false);
    expect(isRoomState({ ...ok, members: {} })).toBe(false);
  });
});

describe('applyRoomEvent', () => {
  const mem = (user_id: string, o: Partial<RoomMember> = {}): RoomMember =>
    ({ user_id, joined_at_ms: 1, position_ms: null, reported_at_ms: null, buffering: false, behind_ms: null, ...o });
  const cur: RoomState = {
    id: 'r', name: 'n', mode: 'open', host: 'me', members: [mem('me'), mem('bo')], queue: q.slice(0, 2), server_ms: 100,
    playback: pb({ playing: false }),
  };
  const lean = (o: Record<string, unknown> = {}) =>
    ({ id: 'r', name: 'n', mode: 'open', host: 'me', member_count: 2, queue_length: 2, playback: pb({ position_ms: 5 }), server_ms: 200, ...o });
  const state = (r: ReturnType<typeof applyRoomEvent>) => {
    if (r.kind !== 'state') throw new Error(`not a state: ${r.kind}`);
    return r;
  };

  it('takes the playback, host and mode of a RoomState and keeps the members and queue', () => {
    const r = state(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r', room: lean({ host: 'bo', mode: 'host' }) }, 'me'));
    expect(r.room.playback.position_ms).toBe(5);
    expect(r.room.host).toBe('bo');
    expect(r.room.mode).toBe('host');
    expect(r.room.members).toBe(cur.members);
    expect(r.room.queue).toBe(cur.queue);
    expect(r.room.server_ms).toBe(200);
    expect(r.stale).toBe(false);
  });
  it('replaces the member whose report changed', () => {
    const r = state(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r', user_id: 'bo', member: mem('bo', { buffering: true }), room: lean() }, 'me'));
    expect(r.room.members.map((m) => [m.user_id, m.buffering])).toEqual([['me', false], ['bo', true]]);
  });
  it('adds a joined member, removes a left one, replaces the queue', () => {
    let r = state(applyRoomEvent(cur, { event: 'RoomMemberJoined', room_id: 'r', user_id: 'cy', member: mem('cy'), room: lean({ member_count: 3 }) }, 'me'));
    expect(r.room.members.map((m) => m.user_id)).toEqual(['me', 'bo', 'cy']);
    expect(r.stale).toBe(false);
    r = state(applyRoomEvent(r.room, { event: 'RoomMemberLeft', room_id: 'r', user_id: 'bo', host: 'me', room: lean({ member_count: 2, server_ms: 300 }) }, 'me'));
    expect(r.room.members.map((m) => m.user_id)).toEqual(['me', 'cy']);
    r = state(applyRoomEvent(r.room, { event: 'RoomQueueUpdated', room_id: 'r', queue: q, room: lean({ queue_length: 3, server_ms: 400 }) }, 'me'));
    expect(r.room.queue).toEqual(q);
    expect(r.stale).toBe(false);
  });
  it('says when ME left, and when an event was missed', () => {
    expect(applyRoomEvent(cur, { event: 'RoomMemberLeft', room_id: 'r', user_id: 'me', host: 'bo', room: lean({ member_count: 1 }) }, 'me').kind).toBe('left');
    expect(state(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r', room: lean({ member_count: 5 }) }, 'me')).stale).toBe(true);
    expect(state(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r', room: lean({ queue_length: 0 }) }, 'me')).stale).toBe(true);
  });
  it('ignores another room, an older state and a malformed event', () => {
    expect(applyRoomEvent(cur, { event: 'RoomState', room_id: 'x', room: lean({ id: 'x' }) }, 'me').kind).toBe('ignore');
    expect(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r', room: lean({ server_ms: 50 }) }, 'me').kind).toBe('ignore');
    expect(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r', room: { id: 'r' } }, 'me').kind).toBe('ignore');
    expect(applyRoomEvent(cur, { event: 'RoomState', room_id: 'r' }, 'me').kind).toBe('ignore');
  });
});
