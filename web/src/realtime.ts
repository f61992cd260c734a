// The realtime channel: GET /api/ws (talas-master(8), REALTIME), with
// automatic reconnection. One connection per page; the player sends its
// Play/Pause/Seek/Stop commands on it and the live panel shows its events.
// Other parts follow an event with a filter (the comment panel:
// TrackCommented of the playing song) and listen for it; a follow is sent
// again on every new connection.
import { useCallback, useEffect, useRef, useState } from 'react';

export type WsState = 'connecting' | 'connected' | 'reconnecting';

export interface LiveEvent {
  event: string;
  [k: string]: unknown;
}

export interface Listener {
  user_id: string;
  track_id: string;
  state: 'playing' | 'paused';
  at: number;
}

export interface LiveStats {
  concurrent_listeners: number;
  top_tracks: { track_id: string; title?: string; artist?: string; current_listeners: number }[];
  server_load?: number;
}

/** The events the live panel subscribes to; ServerMessage comes unasked. */
const SUBSCRIBED = [
  'PlaybackStarted', 'PlaybackPaused', 'PlaybackResumed', 'PlaybackStopped',
  'TrackLiked', 'TrackShared', 'UserFollowed', 'PlaylistUpdated', 'PlaylistShared', 'LiveStats',
];
const MAX_EVENTS = 50;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;

export function listenerId(): string {
  const k = 'talas.listener';
  let id: string | null = null;
  try {
    id = localStorage.getItem(k);
  } catch {
    /* storage disabled */
  }
  if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    const r = new Uint8Array(4);
    crypto.getRandomValues(r);
    id = 'listener-' + Array.from(r, (b) => b.toString(16).padStart(2, '0')).join('');
    try {
      localStorage.setItem(k, id);
    } catch {
      /* a new id every visit then */
    }
  }
  return id;
}

let commandSeq = 0;

/** ws: or wss: (as the page), to api/ws beside the page (the player may be
 * served under a prefix by a proxy). */
export function wsUrl(userId: string, loc: Pick<Location, 'protocol' | 'href'> = location, token: string | null = null): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const base = new URL('.', loc.href);
  // with ws.auth_required the server takes the user from the token's sub
  const auth = token ? `&token=${encodeURIComponent(token)}` : '';
  return `${proto}//${base.host}${base.pathname}api/ws?user_id=${encodeURIComponent(userId)}${auth}`;
}

/** The user a JWT names (its "sub"), read without checking it (the server
 * does): who the page is when opened with a user's token; null otherwise. */
export function tokenSub(token: string | null): string | null {
  const part = token?.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { sub?: unknown } | null;
    return typeof claims?.sub === 'string' && claims.sub !== '' ? claims.sub : null;
  } catch {
    return null;
  }
}

/** The event a text frame carries, or null: binary frames, what is not
 * JSON and JSON without an "event" name are not events. */
export function parseEvent(data: unknown): LiveEvent | null {
  if (typeof data !== 'string') return null;
  try {
    const ev = JSON.parse(data) as { event?: unknown } | null;
    return ev && typeof ev === 'object' && typeof ev.event === 'string' ? (ev as LiveEvent) : null;
  } catch {
    return null;
  }
}

/** What the live panel shows, made from the events. */
export interface Live {
  events: LiveEvent[];
  listeners: Record<string, Listener>;
  stats: LiveStats | null;
}

export const NO_LIVE: Live = { events: [], listeners: {}, stats: null };

/** LIVE after EV, received at NOW (ms): LiveStats replaces the figures,
 * Playback* events move a listener, and every other event goes on top of
 * the list (the last MAX_EVENTS kept). Answers to our commands are not
 * events. */
export function applyEvent(live: Live, ev: LiveEvent, now: number): Live {
  // comments belong to the comment panel (commentsLive.ts)
  if (ev.event === 'CommandResponse' || ev.event === 'TrackCommented') return live;
  // a listening room's events belong to the Rooms panel (rooms/useRoom.ts)
  if (ev.event.startsWith('Room')) return live;
  if (ev.event === 'LiveStats') return { ...live, stats: ev as unknown as LiveStats };
  let listeners = live.listeners;
  const uid = typeof ev.user_id === 'string' ? ev.user_id : null;
  const tid = typeof ev.track_id === 'string' ? ev.track_id : '';
  if (uid && ev.event.startsWith('Playback') && ev.event !== 'PlaybackProgress') {
    listeners = { ...listeners };
    if (ev.event === 'PlaybackStopped') delete listeners[uid];
    else listeners[uid] = { user_id: uid, track_id: tid, state: ev.event === 'PlaybackPaused' ? 'paused' : 'playing', at: now };
  }
  return { ...live, listeners, events: [{ ...ev, _at: now }, ...live.events].slice(0, MAX_EVENTS) };
}

/** The delay before reconnection attempt ATTEMPT (0 for the first):
 * exponential backoff with jitter, 0.5 s, 1 s, 2 s ... 30 s, each between
 * half and all of it (RANDOM in [0, 1)). */
export function backoffDelay(attempt: number, random: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.round(base / 2 + random * (base / 2));
}

export interface ChannelHooks {
  /** the connection's state, and the delay before the next attempt (ms) */
  status(state: WsState, retryIn: number): void;
  event(ev: LiveEvent): void;
  /** a connection opened after an earlier one closed (a worker restarted) */
  reconnected(): void;
}

/** One realtime connection, opened again after every close. */
export class RealtimeChannel {
  private sock: WebSocket | null = null;
  private closed = false;
  private attempt = 0;
  private retryIn = 0;
  private everConnected = false;
  private timer: number | undefined;
  private follows = new Map<string, Record<string, string>>();

  constructor(private url: string, private hooks: ChannelHooks) {}

  /** Follows EVENT with FILTERS (one filter set per event: a new one
   * replaces the last), or stops following it (null); kept for the
   * connections to come. */
  follow(event: string, filters: Record<string, string> | null) {
    const before = this.follows.get(event);
    if (filters) this.follows.set(event, filters);
    else this.follows.delete(event);
    if (!filters && !before) return;
    const sock = this.sock;
    if (sock && sock.readyState === WebSocket.OPEN) this.sendFollow(sock, event, filters);
  }

  private sendFollow(sock: WebSocket, event: string, filters: Record<string, string> | null) {
    const id = `${filters ? 'sub' : 'unsub'}_${++commandSeq}`;
    sock.send(JSON.stringify(filters
      ? { command: 'Subscribe', command_id: id, events: [event], filters }
      : { command: 'Unsubscribe', command_id: id, events: [event] }));
  }

  open() {
    this.connect();
  }

  private connect() {
    if (this.closed) return;
    this.hooks.status(this.attempt === 0 && !this.everConnected ? 'connecting' : 'reconnecting', this.retryIn);
    let sock: WebSocket;
    try {
      sock = new WebSocket(this.url);
    } catch {
      this.schedule();
      return;
    }
    this.sock = sock;
    sock.onopen = () => {
      this.attempt = 0;
      this.retryIn = 0;
      this.hooks.status('connected', 0);
      sock.send(JSON.stringify({ command: 'Subscribe', command_id: `sub_${++commandSeq}`, events: SUBSCRIBED }));
      for (const [event, filters] of this.follows) this.sendFollow(sock, event, filters);
      if (this.everConnected) this.hooks.reconnected();
      this.everConnected = true;
    };
    sock.onmessage = (m: MessageEvent) => {
      const ev = parseEvent(m.data);
      if (ev) this.hooks.event(ev);
    };
    sock.onclose = () => {
      if (this.sock === sock) this.sock = null;
      this.schedule();
    };
  }

  private schedule() {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt, Math.random());
    this.attempt++;
    this.retryIn = delay;
    this.hooks.status('reconnecting', delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Tries at once, without waiting for the backoff, when not connected:
   * the page came back to the foreground, or the network came back. */
  retryNow() {
    if (this.closed || this.sock) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  /** Sends a command; false when there is no open connection to send on. */
  send(command: string, fields: Record<string, unknown>): boolean {
    return this.sendWithId(command, fields) !== null;
  }

  /** Sends a command; its command_id, or null when there is no open
   * connection to send on. */
  sendWithId(command: string, fields: Record<string, unknown>): string | null {
    const sock = this.sock;
    if (!sock || sock.readyState !== WebSocket.OPEN) return null;
    const id = `${command.toLowerCase()}_${++commandSeq}`;
    sock.send(JSON.stringify({ command, command_id: id, ...fields }));
    return id;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.sock?.close(1000);
    this.sock = null;
  }
}

/** The page's connection, for as long as the component lives: its state,
 * the live panel's events, a count of the reconnections (each one a new
 * connection that does not know what plays), send() for commands, and
 * follow() and listen() for the parts that want other events. */
export function useRealtime(userId: string, token: string | null = null) {
  const [state, setState] = useState<WsState>('connecting');
  const [retryIn, setRetryIn] = useState(0);
  const [live, setLive] = useState<Live>(NO_LIVE);
  const [reconnects, setReconnects] = useState(0);
  const channel = useRef<RealtimeChannel | null>(null);
  const listeners = useRef(new Set<(ev: LiveEvent) => void>());
  const follows = useRef(new Map<string, Record<string, string>>());

  useEffect(() => {
    const ch = new RealtimeChannel(wsUrl(userId, location, token), {
      status: (s, ms) => {
        setState(s);
        setRetryIn(ms);
      },
      event: (ev) => {
        if (ev.event === 'CommandResponse' && ev.success === false)
          console.warn(`talas: command ${String(ev.command_id)} refused: ${String(ev.error)}`);
        const now = Date.now();
        setLive((prev) => applyEvent(prev, ev, now));
        for (const fn of listeners.current) fn(ev);
      },
      reconnected: () => setReconnects((n) => n + 1),
    });
    channel.current = ch;
    for (const [event, filters] of follows.current) ch.follow(event, filters);
    const now = () => ch.retryNow();
    const visible = () => {
      if (document.visibilityState === 'visible') now();
    };
    window.addEventListener('online', now);
    document.addEventListener('visibilitychange', visible);
    ch.open();
    return () => {
      window.removeEventListener('online', now);
      document.removeEventListener('visibilitychange', visible);
      ch.close();
      if (channel.current === ch) channel.current = null;
    };
  }, [userId, token]);

  const send = useCallback((command: string, fields: Record<string, unknown>) => channel.current?.send(command, fields) ?? false, []);
  const follow = useCallback((event: string, filters: Record<string, string> | null) => {
    if (filters) follows.current.set(event, filters);
    else follows.current.delete(event);
    channel.current?.follow(event, filters);
  }, []);
  /** Calls FN with every event until the function it returns is called. */
  const listen = useCallback((fn: (ev: LiveEvent) => void) => {
    listeners.current.add(fn);
    return () => { listeners.current.delete(fn); };
  }, []);

  /** Sends a command and waits for its CommandResponse: its data, or an
   * Error with the server's words ("forbidden: ..."); an Error too when
   * not connected, or without an answer in TIMEOUT ms. */
  const request = useCallback((command: string, fields: Record<string, unknown>, timeout = 10000) =>
    new Promise<unknown>((resolve, reject) => {
      const id = channel.current?.sendWithId(command, fields) ?? null;
      if (id === null) {
        reject(new Error('not connected'));
        return;
      }
      const done = () => {
        clearTimeout(timer);
        listeners.current.delete(fn);
      };
      const fn = (ev: LiveEvent) => {
        if (ev.event !== 'CommandResponse' || ev.command_id !== id) return;
        done();
        if (ev.success === true) resolve(ev.data);
        else reject(new Error(typeof ev.error === 'string' && ev.error ? ev.error : `${command} failed`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${command}: no answer`));
      }, timeout);
      listeners.current.add(fn);
    }), []);

  return { state, retryIn, ...live, reconnects, send, follow, listen, request };
}
