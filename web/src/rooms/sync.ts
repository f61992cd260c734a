// Listening rooms, the pure part: the room's state as the server sends it
// (talas-master(8), LISTENING ROOMS) and as its events change it, the page's offset to the server's
// clock (TimeSync, NTP-style), where the room is at a server instant (the
// server's own rule, lazy next entry included), and what to do with the
// <audio> element to stay on it (nothing, nudge its rate, or seek).
// No DOM, no React: every function here is unit-tested (sync.test.ts).

export interface RoomPlayback {
  track_id: string | null;
  entry_id: string | null;
  position_ms: number;
  at_server_ms: number;
  playing: boolean;
}

export interface RoomMember {
  user_id: string;
  joined_at_ms: number;
  position_ms: number | null;
  reported_at_ms: number | null;
  buffering: boolean;
  behind_ms: number | null;
}

export interface RoomEntry {
  entry_id: string;
  track_id: string;
  title: string;
  artist: string;
  duration_ms: number;
}

export interface RoomState {
  id: string;
  name: string;
  mode: 'host' | 'open';
  host: string;
  members: RoomMember[];
  queue: RoomEntry[];
  playback: RoomPlayback;
  server_ms: number;
  invite_url?: string;
}

// ------------------------------------------------------------ the clock

/** One TimeSync round trip: the page's clock when it sent (t0) and when
 * the answer came (t1), and the server's clock in between. */
export interface ClockSample {
  t0: number;
  t1: number;
  server_ms: number;
}

/** What the page adds to its own clock to read the server's, from the
 * sample with the shortest round trip (the one whose midpoint is the most
 * certain): server_ms - (t0 + t1) / 2. Null without a usable sample. */
export function clockOffset(samples: readonly ClockSample[]): { offset: number; rtt: number } | null {
  let best: ClockSample | null = null;
  for (const s of samples) {
    if (!Number.isFinite(s.t0) || !Number.isFinite(s.t1) || !Number.isFinite(s.server_ms) || s.t1 < s.t0) continue;
    if (!best || s.t1 - s.t0 < best.t1 - best.t0) best = s;
  }
  return best ? { offset: best.server_ms - (best.t0 + best.t1) / 2, rtt: best.t1 - best.t0 } : null;
}

// ------------------------------------------------- where the room is

/** Where the room is now, after the lazy next-entry rule. */
export interface RoomNow {
  track_id: string | null;
  entry_id: string | null;
  /** the index of the entry in the queue, -1 when the entry is not in it */
  index: number;
  position_ms: number;
  playing: boolean;
}

/** The server's position rule: playing, position_ms + (now - at_server_ms);
 * paused, position_ms. */
export function positionAt(p: RoomPlayback, serverNow: number): number {
  return p.playing ? p.position_ms + (serverNow - p.at_server_ms) : p.position_ms;
}

/** Where ROOM's playback is at SERVERNOW: the position rule, and, while
 * playing past the current entry's duration, the next entries (each one
 * starting the instant the previous one ends); past the last, stopped at
 * the end of the last track. An entry of no known length (0) never ends. */
export function roomNow(playback: RoomPlayback, queue: readonly RoomEntry[], serverNow: number): RoomNow {
  let index = playback.entry_id === null ? -1 : queue.findIndex((e) => e.entry_id === playback.entry_id);
  let pos = positionAt(playback, serverNow);
  if (!playback.playing || index < 0) {
    return { track_id: playback.track_id, entry_id: playback.entry_id, index, position_ms: Math.max(0, pos), playing: playback.playing };
  }
  for (;;) {
    const e = queue[index];
    if (!(e.duration_ms > 0) || pos < e.duration_ms) {
      return { track_id: e.track_id, entry_id: e.entry_id, index, position_ms: Math.max(0, pos), playing: true };
    }
    if (index + 1 >= queue.length) {
      return { track_id: e.track_id, entry_id: e.entry_id, index, position_ms: e.duration_ms, playing: false };
    }
    pos -= e.duration_ms;
    index++;
  }
}

// -------------------------------------------------------- drift

/** Under this (ms), the element is where it should be: nothing is done. */
export const DRIFT_DEADBAND_MS = 25;
/** Up to this (ms), the rate is nudged; beyond it, a seek. */
export const DRIFT_SEEK_MS = 500;
/** How far the rate may move from 1. */
export const RATE_SPAN = 0.05;
/** The rate's correction per ms of drift: 100 ms late plays at 1.05. */
export const RATE_GAIN = 0.0005;
/** Once the rate corrects a drift, it corrects it down to this (ms) before
 * going back to 1: a member left at the edge of the dead band would stay up
 * to 25 ms off, and two such members 50 ms apart. */
export const DRIFT_AIM_MS = 8;

export type DriftAction =
  | { kind: 'none'; rate: 1 }
  | { kind: 'rate'; rate: number }
  | { kind: 'seek'; to_ms: number; rate: 1 };

/** What to do with an element that plays at ACTUAL ms when the room is at
 * TARGET ms: within the dead band, nothing (rate 1); up to DRIFT_SEEK_MS,
 * a rate in proportion to the drift (faster when behind, slower when
 * ahead, within 1 ± RATE_SPAN); beyond, a seek to the target. CORRECTING
 * (the rate is not 1 yet) narrows the dead band to DRIFT_AIM_MS: a
 * correction, once started, ends close to the room. */
export function driftAction(actual: number, target: number, correcting = false): DriftAction {
  const drift = target - actual; // > 0: the element is behind
  const a = Math.abs(drift);
  if (!Number.isFinite(drift)) return { kind: 'seek', to_ms: target, rate: 1 };
  if (a < (correcting ? DRIFT_AIM_MS : DRIFT_DEADBAND_MS)) return { kind: 'none', rate: 1 };
  if (a > DRIFT_SEEK_MS) return { kind: 'seek', to_ms: target, rate: 1 };
  const rate = 1 + Math.max(-RATE_SPAN, Math.min(RATE_SPAN, drift * RATE_GAIN));
  return { kind: 'rate', rate: Math.round(rate * 1000) / 1000 };
}

/** A paused element is set to the room's position when further than this
 * (ms): a seek of a paused element costs nothing, and every member then
 * resumes from the same point. */
export const PAUSED_EXACT_MS = 3;

/** What the page should do with its element, given the room now (NOW) and
 * the element: which track it must hold (a load when it holds another),
 * whether it plays, and the drift correction when it does. */
export type SyncStep =
  | { kind: 'idle' }
  | { kind: 'load'; track_id: string; at_ms: number; playing: boolean }
  | { kind: 'pause'; at_ms: number | null }
  | { kind: 'play'; at_ms: number }
  | { kind: 'drift'; action: DriftAction };

export interface ElementState {
  /** the track the element holds (null: none) */
  track_id: string | null;
  /** its currentTime, ms */
  position_ms: number;
  paused: boolean;
  /** waiting for data (it cannot play on yet) */
  buffering: boolean;
  /** at the end of its track (the room passes to the next entry itself) */
  ended: boolean;
  /** its rate is being nudged (playbackRate is not 1) */
  correcting?: boolean;
}

/** The step that brings EL to NOW. A paused room holds every element
 * paused at its position (a seek when more than PAUSED_EXACT_MS away);
 * a playing room plays each element from the computed position, then
 * keeps it there by driftAction. A buffering element is left to fill: its
 * position is set again, to the room's, when it plays on. */
export function syncStep(now: RoomNow, el: ElementState): SyncStep {
  if (now.track_id === null) return el.paused ? { kind: 'idle' } : { kind: 'pause', at_ms: null };
  if (el.track_id !== now.track_id) return { kind: 'load', track_id: now.track_id, at_ms: now.position_ms, playing: now.playing };
  if (!now.playing) {
    const off = Math.abs(el.position_ms - now.position_ms) > PAUSED_EXACT_MS;
    if (!el.paused) return { kind: 'pause', at_ms: off ? now.position_ms : null };
    return off ? { kind: 'pause', at_ms: now.position_ms } : { kind: 'idle' };
  }
  if (el.ended) return { kind: 'idle' };
  if (el.paused) return { kind: 'play', at_ms: now.position_ms };
  if (el.buffering) return { kind: 'idle' };
  return { kind: 'drift', action: driftAction(el.position_ms, now.position_ms, el.correcting ?? false) };
}

/** How far ahead of the room a seek (or a start) aims (ms): an element
 * stands still from the seek until it plays again. Learnt: the drift
 * measured once the element plays after a seek of ours is added to the
 * lead the seek had (within 0..MAX_LEAD_MS), so the next seek lands on
 * the room. */
export const MAX_LEAD_MS = 1500;
export function learnLead(lead: number, driftAfterSeek: number): number {
  if (!Number.isFinite(driftAfterSeek)) return lead;
  return Math.round(Math.max(0, Math.min(MAX_LEAD_MS, lead + driftAfterSeek)));
}

/** Right after a seek of ours (the settling window), a drift over this
 * (ms) is corrected by another seek, with the learnt lead, rather than by
 * the rate: a start (a late joiner, a resume, a seek) lands on the room in
 * a second or two, where the rate alone would take seconds per 100 ms. */
export const SETTLE_SEEK_MS = DRIFT_DEADBAND_MS;

// ------------------------------------------------------- members

export type MemberSync = 'in sync' | 'behind' | 'ahead' | 'buffering' | 'waiting';

/** Past this (ms) a member is shown behind (or ahead). */
export const BEHIND_MS = 250;

/** What the members list says of M: buffering, behind or ahead by more
 * than BEHIND_MS, in sync, or waiting (it never reported). */
export function memberSync(m: RoomMember): MemberSync {
  if (m.buffering) return 'buffering';
  if (m.behind_ms === null || m.position_ms === null) return 'waiting';
  if (m.behind_ms > BEHIND_MS) return 'behind';
  if (m.behind_ms < -BEHIND_MS) return 'ahead';
  return 'in sync';
}

/** Who may command the room's playback: every member of an open room, the
 * host alone of a host room. */
export function mayControl(room: Pick<RoomState, 'mode' | 'host'>, me: string): boolean {
  return room.mode === 'open' || room.host === me;
}

// -------------------------------------------------------- invites

/** The room and invite token of a page address (/?room=ID&invite=TOKEN),
 * or null when it names no room. */
export function inviteOf(search: string): { room: string; invite: string | null } | null {
  const p = new URLSearchParams(search);
  const room = p.get('room');
  if (!room || !/^[0-9a-f]{24}$/.test(room)) return null;
  const invite = p.get('invite');
  return { room, invite: invite || null };
}

/** The absolute invite link of INVITE_URL (the server's "/?room=...") as
 * seen from the page at HREF (the player may sit under a prefix). */
export function inviteLink(inviteUrl: string, href: string): string {
  return new URL(inviteUrl.replace(/^\//, ''), new URL('.', href)).href;
}

/** Checks that DOC is a room state as the protocol has it (the fields the
 * panel reads), so that a malformed one is refused, not half shown. */
export function isRoomState(doc: unknown): doc is RoomState {
  if (!doc || typeof doc !== 'object') return false;
  const r = doc as Partial<RoomState>;
  const p = r.playback as Partial<RoomPlayback> | undefined;
  return typeof r.id === 'string' && typeof r.name === 'string' && (r.mode === 'host' || r.mode === 'open')
    && typeof r.host === 'string' && Array.isArray(r.members) && Array.isArray(r.queue)
    && typeof r.server_ms === 'number' && !!p && typeof p === 'object'
    && typeof p.position_ms === 'number' && typeof p.at_server_ms === 'number' && typeof p.playing === 'boolean';
}

// ------------------------------------------------------------ the events

/** An event's "room": the lean state (no members, no queue), with the
 * room's counts. */
export interface RoomLean {
  id: string;
  name: string;
  mode: 'host' | 'open';
  host: string;
  member_count: number;
  queue_length: number;
  playback: RoomPlayback;
  server_ms: number;
}

/** Checks that DOC is an event's lean room state. */
export function isRoomLean(doc: unknown): doc is RoomLean {
  if (!doc || typeof doc !== 'object') return false;
  const r = doc as Partial<RoomLean>;
  const p = r.playback as Partial<RoomPlayback> | undefined;
  return typeof r.id === 'string' && typeof r.name === 'string' && (r.mode === 'host' || r.mode === 'open')
    && typeof r.host === 'string' && typeof r.member_count === 'number' && typeof r.queue_length === 'number'
    && typeof r.server_ms === 'number' && !!p && typeof p === 'object'
    && typeof p.position_ms === 'number' && typeof p.at_server_ms === 'number' && typeof p.playing === 'boolean';
}

function isMember(doc: unknown): doc is RoomMember {
  if (!doc || typeof doc !== 'object') return false;
  const m = doc as Partial<RoomMember>;
  return typeof m.user_id === 'string' && typeof m.joined_at_ms === 'number' && typeof m.buffering === 'boolean';
}

/** What a room event does to the page's state of the room. */
export type RoomEventResult =
  | { kind: 'ignore' } // not about this room, malformed, or older than what the page has
  | { kind: 'left' } // ME is no longer a member
  | { kind: 'state'; room: RoomState; stale: boolean }; // stale: the counts disagree, read the full state

/**
 * Applies room event EV (RoomState, RoomMemberJoined, RoomMemberLeft,
 * RoomQueueUpdated) to CUR, the page's full state. The events carry what
 * changed and the lean state: the playback, host and mode come from it,
 * a joined member is added (or replaced), a left one removed, a member
 * whose report changed replaced, the queue replaced. When the result's
 * member or queue count differs from the lean state's (an event missed),
 * `stale` asks for the full state (GET api/rooms/ID).
 */
export function applyRoomEvent(cur: RoomState, ev: { event: string; [k: string]: unknown }, me: string): RoomEventResult {
  const lean = ev.room;
  if (ev.room_id !== cur.id || !isRoomLean(lean) || lean.id !== cur.id) return { kind: 'ignore' };
  if (ev.event === 'RoomMemberLeft' && ev.user_id === me) return { kind: 'left' };
  if (lean.server_ms < cur.server_ms) return { kind: 'ignore' };
  let members = cur.members;
  let queue = cur.queue;
  switch (ev.event) {
    case 'RoomMemberJoined':
    case 'RoomState':
      if (isMember(ev.member)) {
        const m = ev.member;
        const i = members.findIndex((x) => x.user_id === m.user_id);
        if (i >= 0) members = members.map((x, j) => (j === i ? m : x));
        else if (ev.event === 'RoomMemberJoined') members = [...members, m];
      }
      break;
    case 'RoomMemberLeft':
      if (typeof ev.user_id === 'string') members = members.filter((x) => x.user_id !== ev.user_id);
      break;
    case 'RoomQueueUpdated':
      if (Array.isArray(ev.queue)) queue = ev.queue as RoomEntry[];
      break;
    default:
      return { kind: 'ignore' };
  }
  const room: RoomState = {
    ...cur, name: lean.name, mode: lean.mode, host: lean.host, playback: lean.playback, server_ms: lean.server_ms, members, queue,
  };
  return { kind: 'state', room, stale: members.length !== lean.member_count || queue.length !== lean.queue_length };
}
