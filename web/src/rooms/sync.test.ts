import { describe, expect, it } from 'vitest';
import {
  clockOffset, driftAction, inviteLink, learnLead, inviteOf, isRoomState, mayControl, memberSync, positionAt, roomNow, syncStep,
  type RoomEntry, type RoomPlayback,
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
