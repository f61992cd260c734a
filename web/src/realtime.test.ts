// realtime.ts: the channel against a fake WebSocket and fake timers (the
// connection, its reconnection with backoff, the commands), the frames it
// takes for events, and what the live panel makes of them.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { applyEvent, backoffDelay, NO_LIVE, parseEvent, RealtimeChannel, tokenSub, wsUrl, type LiveEvent, type WsState } from './realtime';

class FakeWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 3;
  static all: FakeWebSocket[] = [];
  /** the next constructions that throw (a URL the browser refuses) */
  static refuse = 0;

  readyState = FakeWebSocket.CONNECTING;
  sent: string[] = [];
  closedWith: number | undefined;
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;

  constructor(public url: string) {
    if (FakeWebSocket.refuse > 0) {
      FakeWebSocket.refuse--;
      throw new SyntaxError('refused');
    }
    FakeWebSocket.all.push(this);
  }

  send(data: string) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }

  close(code?: number) {
    this.closedWith = code;
    this.readyState = FakeWebSocket.CLOSED;
  }

  // what the server (or the network) does
  accept() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.();
  }
  deliver(data: unknown) {
    this.onmessage?.({ data });
  }
  drop() {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.();
  }
  commands() {
    return this.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

const last = () => FakeWebSocket.all[FakeWebSocket.all.length - 1];

function channel() {
  const statuses: [WsState, number][] = [];
  const events: LiveEvent[] = [];
  let reconnections = 0;
  const ch = new RealtimeChannel('ws://talas.test/api/ws?user_id=me', {
    status: (s, ms) => statuses.push([s, ms]),
    event: (ev) => events.push(ev),
    reconnected: () => reconnections++,
  });
  return { ch, statuses, events, reconnections: () => reconnections };
}

beforeEach(() => {
  FakeWebSocket.all = [];
  FakeWebSocket.refuse = 0;
  vi.stubGlobal('WebSocket', FakeWebSocket);
  vi.useFakeTimers();
  // the jitter in the middle: each delay is 3/4 of its step
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('wsUrl', () => {
  it('is api/ws beside the page, ws: or wss: as the page', () => {
    expect(wsUrl('me', new URL('http://talas.test:8080/'))).toBe('ws://talas.test:8080/api/ws?user_id=me');
    expect(wsUrl('a b&c', new URL('https://example.test/music/index.html?x=1'))).toBe('wss://example.test/music/api/ws?user_id=a%20b%26c');
  });
  it('carries the user token when the page has one', () => {
    expect(wsUrl('u1', new URL('http://talas.test/'), 'a.b+c')).toBe('ws://talas.test/api/ws?user_id=u1&token=a.b%2Bc');
  });
});

describe('tokenSub', () => {
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  it('reads the sub of a JWT, UTF-8 included', () => {
    expect(tokenSub(`${b64({ alg: 'HS256' })}.${b64({ sub: 'alice' })}.sig`)).toBe('alice');
    const utf8 = btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify({ sub: 'zoë' }))));
    expect(tokenSub(`x.${utf8.replace(/=+$/, '')}.y`)).toBe('zoë');
  });
  it('is null without a token, a sub, or for garbage', () => {
    expect(tokenSub(null)).toBeNull();
    expect(tokenSub('nodots')).toBeNull();
    expect(tokenSub(`x.${b64({ iss: 'a' })}.y`)).toBeNull();
    expect(tokenSub('x.%%%.y')).toBeNull();
  });
});

describe('backoffDelay', () => {
  it('doubles from 0.5 s, with jitter between half and all of each step', () => {
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, 0))).toEqual([250, 500, 1000, 2000]);
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, 0.999999))).toEqual([500, 1000, 2000, 4000]);
  });

  it('stops growing at 30 s', () => {
    expect(backoffDelay(6, 0.999999)).toBe(30000);
    expect(backoffDelay(40, 0.999999)).toBe(30000);
    expect(backoffDelay(40, 0)).toBe(15000);
  });
});

describe('RealtimeChannel', () => {
  it('connects, subscribes to the live events and says so', () => {
    const { ch, statuses, reconnections } = channel();
    ch.open();
    expect(FakeWebSocket.all).toHaveLength(1);
    expect(last().url).toBe('ws://talas.test/api/ws?user_id=me');
    expect(statuses).toEqual([['connecting', 0]]);
    last().accept();
    expect(statuses[statuses.length - 1]).toEqual(['connected', 0]);
    const [sub] = last().commands();
    expect(sub.command).toBe('Subscribe');
    expect(sub.command_id).toMatch(/^sub_\d+$/);
    expect(sub.events).toEqual(expect.arrayContaining(['PlaybackStarted', 'PlaybackStopped', 'TrackLiked', 'LiveStats']));
    expect(reconnections()).toBe(0);
  });

  it('follows an event with a filter, replaces it, sends it again after a reconnection, and stops', () => {
    const { ch } = channel();
    ch.follow('TrackCommented', { track_id: 'T1' }); // before any connection: kept
    ch.open();
    last().accept();
    expect(last().commands()).toHaveLength(2);
    expect(last().commands()[1]).toMatchObject({ command: 'Subscribe', events: ['TrackCommented'], filters: { track_id: 'T1' } });
    expect(last().commands()[1].command_id).toMatch(/^sub_\d+$/);
    ch.follow('TrackCommented', { song_id: 'S1' });
    expect(last().commands()[2]).toMatchObject({ command: 'Subscribe', events: ['TrackCommented'], filters: { song_id: 'S1' } });
    last().drop();
    vi.advanceTimersByTime(30000);
    last().accept();
    // the new connection follows the last filter only
    expect(last().commands()).toHaveLength(2);
    expect(last().commands()[1]).toMatchObject({ command: 'Subscribe', events: ['TrackCommented'], filters: { song_id: 'S1' } });
    ch.follow('TrackCommented', null);
    expect(last().commands()[2]).toMatchObject({ command: 'Unsubscribe', events: ['TrackCommented'] });
    ch.follow('TrackCommented', null); // nothing more to say
    expect(last().commands()).toHaveLength(3);
  });

  it('reconnects after a drop, waiting longer after each failed attempt', () => {
    const { ch, statuses, reconnections } = channel();
    ch.open();
    last().accept();
    last().drop();
    // 0.5 s step, 3/4 of it
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 375]);
    vi.advanceTimersByTime(374);
    expect(FakeWebSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.all).toHaveLength(2);
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 375]);
    // the server is still down: 1 s, then 2 s
    last().drop();
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 750]);
    vi.advanceTimersByTime(750);
    expect(FakeWebSocket.all).toHaveLength(3);
    last().drop();
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 1500]);
    vi.advanceTimersByTime(1500);
    expect(FakeWebSocket.all).toHaveLength(4);
    // back: subscribed again, and the player is told to say what plays
    last().accept();
    expect(statuses[statuses.length - 1]).toEqual(['connected', 0]);
    expect(last().commands()[0].command).toBe('Subscribe');
    expect(reconnections()).toBe(1);
    // a success starts the backoff over
    last().drop();
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 375]);
  });

  it('waits 30 s at most between attempts', () => {
    const { ch, statuses } = channel();
    ch.open();
    for (let i = 0; i < 12; i++) {
      last().drop();
      vi.advanceTimersByTime(statuses[statuses.length - 1][1]);
    }
    const delays = statuses.filter(([s, ms]) => s === 'reconnecting' && ms > 0).map(([, ms]) => ms);
    expect(Math.max(...delays)).toBe(22500);
    expect(FakeWebSocket.all).toHaveLength(13);
  });

  it('retries later when the browser refuses to open a socket', () => {
    FakeWebSocket.refuse = 1;
    const { ch, statuses } = channel();
    ch.open();
    expect(FakeWebSocket.all).toHaveLength(0);
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 375]);
    vi.advanceTimersByTime(375);
    expect(FakeWebSocket.all).toHaveLength(1);
  });

  it('retries at once when asked (back online, page visible), not while connected', () => {
    const { ch, statuses } = channel();
    ch.open();
    last().drop();
    vi.advanceTimersByTime(375);
    last().drop();
    vi.advanceTimersByTime(750);
    last().drop();
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 1500]);
    ch.retryNow();
    expect(FakeWebSocket.all).toHaveLength(4);
    // the backoff's timer is gone: one socket, not two
    vi.advanceTimersByTime(60000);
    expect(FakeWebSocket.all).toHaveLength(4);
    // and it starts over from 0.5 s
    last().drop();
    expect(statuses[statuses.length - 1]).toEqual(['reconnecting', 375]);
    vi.advanceTimersByTime(375);
    last().accept();
    ch.retryNow();
    expect(FakeWebSocket.all).toHaveLength(5);
  });

  it('hands on the events of text frames and ignores the rest', () => {
    const { ch, events } = channel();
    ch.open();
    last().accept();
    last().deliver(JSON.stringify({ event: 'TrackLiked', track_id: 't1', user_id: 'fan', total_likes: 3 }));
    last().deliver('not json');
    last().deliver(JSON.stringify({ command: 'Play' }));
    last().deliver(new ArrayBuffer(4));
    last().deliver(JSON.stringify({ event: 'ServerMessage', message: 'hello', level: 'Info' }));
    expect(events).toEqual([
      { event: 'TrackLiked', track_id: 't1', user_id: 'fan', total_likes: 3 },
      { event: 'ServerMessage', message: 'hello', level: 'Info' },
    ]);
  });

  it('sends commands only on an open connection, each with its own id', () => {
    const { ch } = channel();
    ch.open();
    expect(ch.send('Play', { track_id: 't1' })).toBe(false);
    last().accept();
    expect(ch.send('Play', { track_id: 't1', start_position_ms: 0 })).toBe(true);
    expect(ch.send('Pause', { track_id: 't1' })).toBe(true);
    const [, play, pause] = last().commands();
    expect(play).toMatchObject({ command: 'Play', track_id: 't1', start_position_ms: 0 });
    expect(play.command_id).toMatch(/^play_\d+$/);
    expect(pause.command_id).toMatch(/^pause_\d+$/);
    expect(pause.command_id).not.toBe(play.command_id);
    last().drop();
    expect(ch.send('Stop', { track_id: 't1' })).toBe(false);
  });

  it('closes for good: no reconnection after close()', () => {
    const { ch } = channel();
    ch.open();
    last().accept();
    const sock = last();
    ch.close();
    expect(sock.closedWith).toBe(1000);
    sock.drop();
    vi.advanceTimersByTime(60000);
    ch.retryNow();
    expect(FakeWebSocket.all).toHaveLength(1);
    expect(ch.send('Play', { track_id: 't1' })).toBe(false);
  });

  it('cancels a pending attempt on close()', () => {
    const { ch } = channel();
    ch.open();
    last().drop();
    ch.close();
    vi.advanceTimersByTime(60000);
    expect(FakeWebSocket.all).toHaveLength(1);
  });
});

describe('parseEvent', () => {
  it('takes JSON objects with an event name', () => {
    expect(parseEvent('{"event":"LiveStats","concurrent_listeners":2}')).toEqual({ event: 'LiveStats', concurrent_listeners: 2 });
  });

  it('takes nothing else', () => {
    for (const data of ['', 'hello', 'null', '[]', '3', '{"event":3}', '{"type":"x"}', new Blob(['{"event":"X"}']), undefined])
      expect(parseEvent(data)).toBeNull();
  });
});

describe('applyEvent', () => {
  const ev = (event: string, fields: Record<string, unknown> = {}): LiveEvent => ({ event, ...fields });

  it('leaves a listening room\'s events to the Rooms panel', () => {
    for (const e of ['RoomState', 'RoomMemberJoined', 'RoomMemberLeft', 'RoomQueueUpdated'])
      expect(applyEvent(NO_LIVE, ev(e, { room_id: 'r' }), 1)).toBe(NO_LIVE);
  });

  it('follows who listens to what', () => {
    let live = applyEvent(NO_LIVE, ev('PlaybackStarted', { user_id: 'u1', track_id: 't1' }), 1000);
    live = applyEvent(live, ev('PlaybackStarted', { user_id: 'u2', track_id: 't2' }), 1001);
    expect(live.listeners).toEqual({
      u1: { user_id: 'u1', track_id: 't1', state: 'playing', at: 1000 },
      u2: { user_id: 'u2', track_id: 't2', state: 'playing', at: 1001 },
    });
    live = applyEvent(live, ev('PlaybackPaused', { user_id: 'u1', track_id: 't1' }), 2000);
    expect(live.listeners.u1).toEqual({ user_id: 'u1', track_id: 't1', state: 'paused', at: 2000 });
    live = applyEvent(live, ev('PlaybackResumed', { user_id: 'u1', track_id: 't1' }), 3000);
    expect(live.listeners.u1.state).toBe('playing');
    live = applyEvent(live, ev('PlaybackStopped', { user_id: 'u1', track_id: 't1' }), 4000);
    expect(Object.keys(live.listeners)).toEqual(['u2']);
    expect(live.events.map((e) => [e.event, e._at])).toEqual([
      ['PlaybackStopped', 4000], ['PlaybackResumed', 3000], ['PlaybackPaused', 2000], ['PlaybackStarted', 1001], ['PlaybackStarted', 1000],
    ]);
  });

  it('does not count progress reports or events without a user as listening', () => {
    let live = applyEvent(NO_LIVE, ev('PlaybackProgress', { user_id: 'u1', track_id: 't1' }), 1);
    live = applyEvent(live, ev('PlaybackStarted', { track_id: 't1' }), 2);
    expect(live.listeners).toEqual({});
    expect(live.events).toHaveLength(2);
  });

  it('keeps the figures of LiveStats apart from the events', () => {
    const stats = ev('LiveStats', { concurrent_listeners: 4, top_tracks: [] });
    const live = applyEvent(NO_LIVE, stats, 1);
    expect(live.stats).toEqual(stats);
    expect(live.events).toEqual([]);
  });

  it('leaves comments to the comment panel', () => {
    const ev = { event: 'TrackCommented', track_id: 'T', comment_id: 'C', action: 'created', user_id: 'u', at_ms: 1, parent_id: null, body: 'x' };
    expect(applyEvent(NO_LIVE, ev, 1)).toBe(NO_LIVE);
  });

  it('leaves out the answers to our commands', () => {
    const before = applyEvent(NO_LIVE, ev('TrackLiked', { user_id: 'u', track_id: 't' }), 1);
    expect(applyEvent(before, ev('CommandResponse', { success: true, command_id: 'play_1' }), 2)).toBe(before);
  });

  it('keeps the 50 latest events, newest first, without changing the old state', () => {
    let live = NO_LIVE;
    for (let i = 0; i < 60; i++) live = applyEvent(live, ev('ServerMessage', { message: `m${i}` }), i);
    expect(live.events).toHaveLength(50);
    expect(live.events[0].message).toBe('m59');
    expect(live.events[49].message).toBe('m10');
    expect(NO_LIVE.events).toEqual([]);
  });
});
