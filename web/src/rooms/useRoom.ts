// A listening room on the page: the commands of /api/ws (CreateRoom,
// JoinRoom, LeaveRoom, RoomPlay ... RoomQueueMove, RoomMemberStatus,
// TimeSync), the room's events, and the loop that keeps the page's <audio>
// element on the room's position: the clock offset to the server (8
// TimeSync round trips, the shortest kept, again every 30 s), then every
// 200 ms where the room is (sync.ts: roomNow) against where the element
// is (syncStep: load, play, pause, nudge the rate or seek). The member's
// position and buffering go to the server every 2 s (RoomMemberStatus),
// and at once when buffering starts or ends; a stalled member catches up
// when its data comes, while the others play on. The events carry what
// changed (sync.ts: applyRoomEvent); the members' positions are read
// again every 5 s (GET api/rooms/ID).
import { useCallback, useEffect, useEffectEvent, useRef, useState, type RefObject } from 'react';
import { authHeaders, fetchTrack, type Track } from '../api';
import type { LiveEvent, WsState } from '../realtime';
import {
  DRIFT_DEADBAND_MS, SETTLE_SEEK_MS, applyRoomEvent, clockOffset, driftAction, inviteOf, isRoomState, learnLead, mayControl, roomNow, syncStep,
  type ClockSample, type RoomState,
} from './sync';

/** What the room needs of the realtime channel (useRealtime). */
export interface RoomChannel {
  state: WsState;
  reconnects: number;
  request: (command: string, fields: Record<string, unknown>, timeout?: number) => Promise<unknown>;
  send: (command: string, fields: Record<string, unknown>) => boolean;
  listen: (fn: (ev: LiveEvent) => void) => () => void;
}

/** What the room needs of the player (usePlayer). */
export interface RoomPlayer {
  track: Track | null;
  playAt: (t: Track, at: number, autoplay: boolean) => void;
}

const TICK_MS = 200;
const REPORT_MS = 2000;
const CLOCK_SAMPLES = 8;
const CLOCK_REFRESH_MS = 30000;
const REFRESH_MS = 5000;
/** how long after a seek of ours the drift is first measured (ms) */
const SETTLE_MEASURE_MS = 400;
/** seeks again in one settling, at most */
const SETTLE_TRIES = 3;
/** while an element waits for data, a seek only when this far (ms) */
const WAITING_SEEK_MS = 1000;

const ROOM_EVENTS = new Set(['RoomState', 'RoomMemberJoined', 'RoomMemberLeft', 'RoomQueueUpdated']);

export type QueueItem = { track_id: string } | { artist: string } | { playlist_id: string };

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** GET api/rooms/ID: the room as the server has it now (the members'
 * positions, their behind_ms). */
async function fetchRoom(id: string, invite: string | null, signal?: AbortSignal): Promise<RoomState | null> {
  const q = invite ? `?invite=${encodeURIComponent(invite)}` : '';
  const r = await fetch(`api/rooms/${encodeURIComponent(id)}${q}`, { signal, headers: authHeaders() });
  if (!r.ok) return null;
  const doc: unknown = await r.json();
  return isRoomState(doc) ? doc : null;
}

export function useRoom(rt: RoomChannel, audioRef: RefObject<HTMLAudioElement | null>, player: RoomPlayer, me: string) {
  const [room, setRoomState] = useState<RoomState | null>(null);
  const [invite, setInvite] = useState<{ token: string | null; url: string | null } | null>(null);
  const [clock, setClock] = useState<{ offset: number; rtt: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  /** the invite of the page's address, joined once connected */
  const pending = useRef(inviteOf(location.search));
  const [open, setOpen] = useState(() => inviteOf(location.search) !== null);

  // read by the loop, outside render
  const roomRef = useRef<RoomState | null>(null);
  const clockRef = useRef<{ offset: number; rtt: number } | null>(null);
  const playerRef = useRef(player);
  const loading = useRef<{ track_id: string; since: number } | null>(null);
  const lead = useRef(0);
  const settle = useRef<{ at: number; tries: number } | null>(null);
  const lastBuffering = useRef<boolean | null>(null);
  const [lead_ms, setLeadMs] = useState(0);

  useEffect(() => {
    playerRef.current = player;
  }, [player]);

  const { request, send, listen, reconnects, state } = rt;
  const roomId = room?.id ?? null;

  /** A newer state of the room (an older one, come late, is dropped). */
  const setRoom = useCallback((r: RoomState | null) => {
    const cur = roomRef.current;
    if (r && cur && r.id === cur.id && r.server_ms < cur.server_ms) return;
    roomRef.current = r;
    setRoomState(r);
  }, []);

  // the room's events: what changed, applied to the full state; when an
  // event was missed (the counts disagree), the full state is read again
  const refetch = useEffectEvent((id: string) => {
    fetchRoom(id, invite?.token ?? null).then((r) => {
      if (r && roomRef.current?.id === r.id) setRoom(r);
    }, () => {});
  });
  useEffect(() => listen((ev) => {
    const cur = roomRef.current;
    if (!cur || !ROOM_EVENTS.has(ev.event)) return;
    const got = applyRoomEvent(cur, ev, me);
    if (got.kind === 'left') {
      setRoom(null);
      setNotice('You are no longer in the room');
      return;
    }
    if (got.kind === 'ignore') return;
    setRoom(got.room);
    if (got.stale) refetch(cur.id);
  }), [listen, me, setRoom]);

  // the clock: 8 round trips, the shortest kept; again every 30 s
  useEffect(() => {
    if (!roomId || state !== 'connected') return;
    let stop = false;
    const measure = async () => {
      const samples: ClockSample[] = [];
      for (let i = 0; i < CLOCK_SAMPLES && !stop; i++) {
        const t0 = Date.now();
        try {
          const d = (await request('TimeSync', { client_ms: t0 }, 5000)) as { server_ms?: unknown } | null;
          const t1 = Date.now();
          if (typeof d?.server_ms === 'number') samples.push({ t0, t1, server_ms: d.server_ms });
        } catch {
          /* a lost sample */
        }
      }
      const c = clockOffset(samples);
      if (c && !stop) {
        clockRef.current = c;
        setClock(c);
      }
    };
    void measure();
    const t = setInterval(() => void measure(), CLOCK_REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [roomId, state, request]);

  // the members' positions, as the server sees them, every 5 s
  useEffect(() => {
    if (!roomId) return;
    const ac = new AbortController();
    const t = setInterval(() => {
      fetchRoom(roomId, invite?.token ?? null, ac.signal).then((r) => {
        if (r && roomRef.current?.id === r.id) setRoom(r);
      }, () => {});
    }, REFRESH_MS);
    return () => {
      clearInterval(t);
      ac.abort();
    };
  }, [roomId, invite, setRoom]);

  /** Sends COMMAND about the room; its refusal shows in the panel. */
  const command = useCallback(async (name: string, fields: Record<string, unknown>) => {
    const r = roomRef.current;
    if (!r) return null;
    setError(null);
    try {
      const data = await request(name, { room_id: r.id, ...fields });
      if (isRoomState(data)) setRoom(data);
      return data;
    } catch (e) {
      setError(`${name}: ${message(e)}`);
      return null;
    }
  }, [request, setRoom]);

  const join = useCallback(async (id: string, token: string | null) => {
    setError(null);
    setNotice(null);
    try {
      const data = await request('JoinRoom', token ? { room_id: id, invite: token } : { room_id: id });
      if (!isRoomState(data)) throw new Error('the server answered no room');
      roomRef.current = null;
      setRoom(data);
      setInvite({ token, url: data.invite_url ?? null });
      lastBuffering.current = null;
    } catch (e) {
      setError(`Join: ${message(e)}`);
    }
  }, [request, setRoom]);

  const create = useCallback(async (name: string, mode: 'host' | 'open') => {
    setError(null);
    setNotice(null);
    try {
      const d = (await request('CreateRoom', { name, mode })) as { room?: unknown; invite_token?: unknown; invite_url?: unknown } | null;
      if (!isRoomState(d?.room)) throw new Error('the server answered no room');
      roomRef.current = null;
      setRoom(d.room);
      setInvite({ token: typeof d.invite_token === 'string' ? d.invite_token : null, url: typeof d.invite_url === 'string' ? d.invite_url : null });
      lastBuffering.current = null;
    } catch (e) {
      setError(`Create: ${message(e)}`);
    }
  }, [request, setRoom]);

  const leave = useCallback(async () => {
    const r = roomRef.current;
    if (!r) return;
    try {
      await request('LeaveRoom', { room_id: r.id });
    } catch (e) {
      setError(`Leave: ${message(e)}`);
    }
    setRoom(null);
    setInvite(null);
    audioRef.current?.pause();
    if (inviteOf(location.search)) history.replaceState(null, '', location.pathname + location.hash);
  }, [request, setRoom, audioRef]);

  // the invite of the address: joined once connected
  useEffect(() => {
    const p = pending.current;
    if (!p || state !== 'connected') return;
    pending.current = null;
    void join(p.room, p.invite);
  }, [state, join]);

  // after a reconnection the new connection joins again (it gets the
  // room's events only once joined)
  const rejoin = useEffectEvent(() => {
    const r = roomRef.current;
    if (r) void join(r.id, invite?.token ?? null);
  });
  useEffect(() => {
    if (reconnects > 0) rejoin();
  }, [reconnects]);

  // the loop: the element follows the room
  const tick = useEffectEvent(() => {
    const a = audioRef.current;
    const r = roomRef.current;
    const c = clockRef.current;
    if (!a || !r || !c) return;
    const serverNow = Date.now() + c.offset;
    const now = roomNow(r.playback, r.queue, serverNow);
    const held = playerRef.current.track?.id ?? null;
    const perf = performance.now();
    if (loading.current) {
      if (held === loading.current.track_id || perf - loading.current.since > 10000) loading.current = null;
      else return;
    }
    const ready = a.readyState >= 3 && !a.seeking;
    const step = syncStep(now, {
      track_id: held, position_ms: a.currentTime * 1000, paused: a.paused, ended: a.ended,
      buffering: !a.paused && !ready, correcting: a.playbackRate !== 1,
    });
    if (step.kind !== 'drift' && a.playbackRate !== 1) a.playbackRate = 1;
    switch (step.kind) {
      case 'idle':
        return;
      case 'load': {
        const id = step.track_id;
        loading.current = { track_id: id, since: perf };
        settle.current = null;
        fetchTrack(id).then((t) => {
          if (roomRef.current?.id !== r.id) return;
          playerRef.current.playAt(t, step.at_ms / 1000, false);
        }, (e: unknown) => {
          setError(`Track ${id}: ${message(e)}`);
        });
        return;
      }
      case 'pause':
        if (!a.paused) a.pause();
        if (step.at_ms !== null) a.currentTime = step.at_ms / 1000;
        settle.current = null;
        return;
      case 'play': {
        if (a.readyState < 1) return;
        const to = step.at_ms + lead.current;
        const off = Math.abs(a.currentTime * 1000 - to);
        if (!ready) {
          if (off > WAITING_SEEK_MS) a.currentTime = to / 1000;
          return;
        }
        if (off >= DRIFT_DEADBAND_MS) a.currentTime = to / 1000;
        a.play().catch((e: unknown) => setError(`Play: ${message(e)}`));
        settle.current = { at: perf, tries: 0 };
        return;
      }
      case 'drift': {
        const s = settle.current;
        const drift = now.position_ms - a.currentTime * 1000;
        if (s) {
          if (perf - s.at < SETTLE_MEASURE_MS) return;
          lead.current = learnLead(lead.current, drift);
          setLeadMs(lead.current);
          if (Math.abs(drift) > SETTLE_SEEK_MS && s.tries < SETTLE_TRIES) {
            a.currentTime = (now.position_ms + lead.current) / 1000;
            settle.current = { at: perf, tries: s.tries + 1 };
            return;
          }
          settle.current = null;
        }
        // the end of a settling: what is left is corrected down to the aim
        const act = s ? driftAction(a.currentTime * 1000, now.position_ms, true) : step.action;
        if (act.kind === 'seek') {
          a.playbackRate = 1;
          a.currentTime = (act.to_ms + lead.current) / 1000;
          settle.current = { at: perf, tries: 0 };
        } else if (a.playbackRate !== act.rate) {
          a.playbackRate = act.rate;
        }
        return;
      }
    }
  });

  /** What the member tells the server: its position, whether it waits. */
  const report = useEffectEvent((force: boolean) => {
    const a = audioRef.current;
    const r = roomRef.current;
    if (!a || !r) return;
    const now = clockRef.current ? roomNow(r.playback, r.queue, Date.now() + clockRef.current.offset) : null;
    const mine = now !== null && now.track_id !== null && playerRef.current.track?.id === now.track_id;
    const buffering = !!now?.playing && (!mine || a.readyState < 3 || a.seeking);
    if (!force && buffering === lastBuffering.current) return;
    lastBuffering.current = buffering;
    send('RoomMemberStatus', { room_id: r.id, position_ms: mine ? Math.max(0, Math.round(a.currentTime * 1000)) : 0, buffering });
  });

  useEffect(() => {
    const audio = audioRef.current;
    if (!roomId) return;
    const t = setInterval(() => {
      tick();
      report(false);
    }, TICK_MS);
    const s = setInterval(() => report(true), REPORT_MS);
    return () => {
      clearInterval(t);
      clearInterval(s);
      if (audio) audio.playbackRate = 1;
      loading.current = null;
      settle.current = null;
    };
  }, [roomId, audioRef]);

  const control = room !== null && mayControl(room, me);
  /** The room's position now, ms (for the seek buttons). */
  const positionNow = () => {
    const r = roomRef.current;
    const c = clockRef.current;
    return r ? roomNow(r.playback, r.queue, Date.now() + (c?.offset ?? 0)).position_ms : 0;
  };

  return {
    room, invite, clock, error, notice, open, setOpen, me, control, lead_ms,
    create, join, leave,
    play: () => command('RoomPlay', {}),
    pause: () => command('RoomPause', {}),
    toggle: () => (room?.playback.playing ? command('RoomPause', {}) : command('RoomPlay', {})),
    seekTo: (ms: number) => command('RoomSeek', { position_ms: Math.max(0, Math.round(ms)) }),
    seekBy: (seconds: number) => command('RoomSeek', { position_ms: Math.max(0, Math.round(positionNow() + seconds * 1000)) }),
    skip: () => command('RoomSkip', {}),
    playEntry: (entry_id: string) => command('RoomPlay', { entry_id }),
    playTrack: (track_id: string) => command('RoomPlay', { track_id }),
    queueAdd: (item: QueueItem) => command('RoomQueueAdd', item),
    queueRemove: (entry_id: string) => command('RoomQueueRemove', { entry_id }),
    queueMove: (entry_id: string, position: number) => command('RoomQueueMove', { entry_id, position }),
  };
}

export type Room = ReturnType<typeof useRoom>;
