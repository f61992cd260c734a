// The realtime channel: GET /api/ws (talas-master(8), REALTIME), with
// automatic reconnection. One connection per page; the player sends its
// Play/Pause/Seek/Stop commands on it and the live panel shows its events.
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

export function useRealtime(userId: string, onReconnect: () => void) {
  const [state, setState] = useState<WsState>('connecting');
  const [retryIn, setRetryIn] = useState(0);
  const [events, setEvents] = useState<LiveEvent[]>([]);
  const [listeners, setListeners] = useState<Record<string, Listener>>({});
  const [stats, setStats] = useState<LiveStats | null>(null);
  const ws = useRef<WebSocket | null>(null);
  const reconnectHook = useRef(onReconnect);
  reconnectHook.current = onReconnect;

  useEffect(() => {
    let closed = false;
    let attempt = 0;
    let timer: number | undefined;
    let everConnected = false;

    const onEvent = (ev: LiveEvent) => {
      if (ev.event === 'CommandResponse') {
        if (ev.success === false) console.warn(`talas: command ${String(ev.command_id)} refused: ${String(ev.error)}`);
        return;
      }
      if (ev.event === 'LiveStats') {
        setStats(ev as unknown as LiveStats);
        return;
      }
      const uid = typeof ev.user_id === 'string' ? ev.user_id : null;
      const tid = typeof ev.track_id === 'string' ? ev.track_id : '';
      if (uid && ev.event.startsWith('Playback') && ev.event !== 'PlaybackProgress') {
        setListeners((prev) => {
          const next = { ...prev };
          if (ev.event === 'PlaybackStopped') delete next[uid];
          else next[uid] = { user_id: uid, track_id: tid, state: ev.event === 'PlaybackPaused' ? 'paused' : 'playing', at: Date.now() };
          return next;
        });
      }
      setEvents((prev) => [{ ...ev, _at: Date.now() }, ...prev].slice(0, MAX_EVENTS));
    };

    const connect = () => {
      if (closed) return;
      setState(attempt === 0 && !everConnected ? 'connecting' : 'reconnecting');
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const base = new URL('.', location.href);
      const url = `${proto}//${base.host}${base.pathname}api/ws?user_id=${encodeURIComponent(userId)}`;
      let sock: WebSocket;
      try {
        sock = new WebSocket(url);
      } catch {
        schedule();
        return;
      }
      ws.current = sock;
      sock.onopen = () => {
        attempt = 0;
        setRetryIn(0);
        setState('connected');
        sock.send(JSON.stringify({ command: 'Subscribe', command_id: `sub_${++commandSeq}`, events: SUBSCRIBED }));
        if (everConnected) reconnectHook.current();
        everConnected = true;
      };
      sock.onmessage = (m) => {
        if (typeof m.data !== 'string') return;
        try {
          const ev = JSON.parse(m.data);
          if (ev && typeof ev.event === 'string') onEvent(ev);
        } catch {
          /* not JSON: ignored */
        }
      };
      sock.onclose = () => {
        if (ws.current === sock) ws.current = null;
        schedule();
      };
    };

    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... 30 s.
    const schedule = () => {
      if (closed) return;
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
      const delay = Math.round(base / 2 + Math.random() * (base / 2));
      attempt++;
      setState('reconnecting');
      setRetryIn(delay);
      timer = window.setTimeout(connect, delay);
    };

    // A page coming back to the foreground, or the network coming back,
    // retries at once instead of waiting for the backoff.
    const now = () => {
      if (closed || ws.current) return;
      window.clearTimeout(timer);
      attempt = 0;
      connect();
    };
    const visible = () => {
      if (document.visibilityState === 'visible') now();
    };
    window.addEventListener('online', now);
    document.addEventListener('visibilitychange', visible);

    connect();
    return () => {
      closed = true;
      window.clearTimeout(timer);
      window.removeEventListener('online', now);
      document.removeEventListener('visibilitychange', visible);
      ws.current?.close(1000);
      ws.current = null;
    };
  }, [userId]);

  const send = useCallback((command: string, fields: Record<string, unknown>) => {
    const sock = ws.current;
    if (!sock || sock.readyState !== WebSocket.OPEN) return false;
    sock.send(JSON.stringify({ command, command_id: `${command.toLowerCase()}_${++commandSeq}`, ...fields }));
    return true;
  }, []);

  return { state, retryIn, events, listeners, stats, send };
}
