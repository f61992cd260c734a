// The parts of the Talas HTTP API the player uses (talas-master(8)).

export interface Track {
  id: string;
  title: string;
  artist: string;
  album: string;
  duration_ms: number;
  codec: string;
  container: string;
  sample_rate: number;
  channels: number;
  bit_rate: number;
  size: number;
  mime: string;
  /** a signed URL, present when the list came through the platform's backend */
  stream_url?: string;
  /** what the scan measured (EBU R128): null until measured */
  loudness?: Loudness | null;
  /** the beat the scan found: null when none (or not measured) */
  tempo?: { bpm: number; confidence: number } | null;
}

export interface Loudness {
  /** null for silence */
  integrated_lufs: number | null;
  range_lu: number | null;
  true_peak_dbtp: number | null;
  sample_peak_dbfs: number | null;
}

/** The filters of GET /api/tracks: null when not set. */
export interface TrackFilters {
  bpmMin: number | null;
  bpmMax: number | null;
  /** seconds */
  maxDuration: number | null;
}

export const NO_FILTERS: TrackFilters = { bpmMin: null, bpmMax: null, maxDuration: null };

/** The targets of the Loudness match menu (LUFS): ?normalize= takes them. */
export type LoudnessMatch = number | null;

/** Whether ?normalize= can apply to TRACK: the server answers 409 for a
 * track whose loudness it has not measured (or a silent one). */
export function normalizable(track: Pick<Track, 'loudness'>): boolean {
  return typeof track.loudness?.integrated_lufs === 'number';
}

export interface TrackPage {
  tracks: Track[];
  total: number;
  offset: number;
  limit: number;
}

export interface StreamingSession {
  session_id: string;
  initial_profile: { quality_id: string; bitrate_kbps: number; codec: string; hls: boolean };
  master_playlist: string;
  stream_url: string;
}

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function json<T>(r: Response): Promise<T> {
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const body = (await r.json()) as { error?: { message?: unknown } } | null;
      if (typeof body?.error?.message === 'string' && body.error.message) msg = body.error.message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, msg);
  }
  return r.json() as Promise<T>;
}

export async function listTracks(q: string, offset: number, limit: number, signal?: AbortSignal,
  filters: TrackFilters = NO_FILTERS): Promise<TrackPage> {
  const p = new URLSearchParams({ limit: String(limit), offset: String(offset) });
  if (q) p.set('q', q);
  if (filters.bpmMin !== null) p.set('bpm_min', String(filters.bpmMin));
  if (filters.bpmMax !== null) p.set('bpm_max', String(filters.bpmMax));
  if (filters.maxDuration !== null) p.set('max_duration', String(filters.maxDuration));
  return json<TrackPage>(await fetch(`api/tracks?${p}`, { signal }));
}

/** The token a signed URL carries, for the other media routes of its track. */
export function tokenOf(track: Pick<Track, 'stream_url'>): string | null {
  if (!track.stream_url) return null;
  try {
    return new URL(track.stream_url, location.href).searchParams.get('token');
  } catch {
    return null;
  }
}

function withToken(url: string, token: string | null): string {
  if (!token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

function withNormalize(url: string, target: LoudnessMatch): string {
  if (target === null) return url;
  return url + (url.includes('?') ? '&' : '?') + 'normalize=' + String(target);
}

/** The progressive URL of TRACK: its original, or a transcode profile,
 * normalized to TARGET LUFS (a transcode only: the original never is). */
export function streamUrl(track: Track, profile: string | null, target: LoudnessMatch = null): string {
  if (track.stream_url && !profile) return track.stream_url;
  const base = `stream/${encodeURIComponent(track.id)}` + (profile ? `?profile=${encodeURIComponent(profile)}` : '');
  return withToken(withNormalize(base, profile ? target : null), tokenOf(track));
}

export function previewUrl(track: Track, target: LoudnessMatch = null): string {
  return withToken(withNormalize(`preview/${encodeURIComponent(track.id)}`, target), tokenOf(track));
}

export function masterPlaylistUrl(track: Track, target: LoudnessMatch = null): string {
  return withToken(withNormalize(`hls/${encodeURIComponent(track.id)}/master.m3u8`, target), tokenOf(track));
}

/** What a continuous queue plays: an artist's tracks (by album, disc and
 * track number) or a playlist's, as one HLS stream with no gap between the
 * tracks (GET /hls/queue/{kind}/{id}/master.m3u8). */
export interface QueueSource {
  kind: 'artist' | 'playlist';
  /** the artist's name as tagged, or the playlist's id */
  id: string;
}

/** The master playlist of a continuous queue, with TOKEN (an HLS token)
 * when the page has one. */
export function queueMasterUrl(q: QueueSource, token: string | null = null): string {
  return withToken(`hls/queue/${q.kind}/${encodeURIComponent(q.id)}/master.m3u8`, token);
}

/** The track the player bar shows for a continuous queue: not a track of
 * the library (its id starts with "queue:", which no track id does), so
 * nothing asks the server about it as a track. */
export function queueTrack(q: QueueSource): Track {
  return {
    id: `queue:${q.kind}:${q.id}`, title: q.kind === 'artist' ? `${q.id} (continuous)` : `Playlist ${q.id} (continuous)`,
    artist: q.kind === 'artist' ? q.id : 'Playlist', album: '', duration_ms: 0, codec: '', container: '', sample_rate: 0,
    channels: 0, bit_rate: 0, size: 0, mime: '', loudness: null, tempo: null,
  };
}

/** Whether TRACK is a continuous queue's (queueTrack), not a library track. */
export function isQueueTrack(track: Pick<Track, 'id'> | null): boolean {
  return !!track && track.id.startsWith('queue:');
}

type NetworkInformation = { downlink?: number; effectiveType?: string; type?: string };

function capabilities() {
  const c = (navigator as Navigator & { connection?: NetworkInformation }).connection;
  const mobile = matchMedia('(pointer: coarse)').matches && Math.min(screen.width, screen.height) < 600;
  let connection = 'Unknown';
  if (c?.type === 'wifi') connection = 'Wifi';
  else if (c?.type === 'ethernet') connection = 'Ethernet';
  else if (c?.effectiveType === '4g') connection = mobile ? 'Cellular4G' : 'Unknown';
  else if (c?.effectiveType === '3g') connection = 'Cellular3G';
  else if (c?.effectiveType === '2g' || c?.effectiveType === 'slow-2g') connection = 'Cellular2G';
  return {
    estimated_bandwidth_kbps: c?.downlink ? Math.round(c.downlink * 1000) : 0,
    buffer_duration_ms: 5000,
    connection_type: connection,
    device_type: mobile ? 'Mobile' : 'Desktop',
    adaptive_enabled: true,
  };
}

/** POST /api/streaming/session: the initial rung and the master playlist. */
export async function openSession(track: Track): Promise<StreamingSession> {
  const r = await fetch(withToken('api/streaming/session', tokenOf(track)), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ track_id: track.id, client_capabilities: capabilities() }),
  });
  return json<StreamingSession>(r);
}

export interface Peaks {
  points: number;
  min: number[];
  max: number[];
}

/** GET /api/tracks/ID/peaks: the waveform of TRACK in POINTS min/max pairs
 * (-1..1), with the track's token when it has one. */
export async function fetchPeaks(track: Pick<Track, 'id' | 'stream_url'>, points: number, signal?: AbortSignal): Promise<Peaks> {
  const url = withToken(`api/tracks/${encodeURIComponent(track.id)}/peaks?points=${points}`, tokenOf(track));
  return json<Peaks>(await fetch(url, { signal }));
}

/** A transcode profile of the server (transcode.profiles in talas.yaml). */
export interface TranscodeProfile {
  /** what ?profile= takes: "high", "medium", "low" ... */
  quality_id: string;
  bitrate_kbps: number;
  sample_rate: number;
  channels: number;
  codec: string;
  file_extension: string;
  bandwidth_estimate_kbps: number;
  /** a rung of the HLS ladder */
  hls: boolean;
}

/** GET /api/profiles: the server's transcode profiles, in its ladder's
 * order (highest first). Entries without a name are left out: the player
 * could not ask for them; and so are names the quality menu has for its
 * own (adaptive, original), which would stand for two things. */
export async function fetchProfiles(signal?: AbortSignal): Promise<TranscodeProfile[]> {
  const body = await json<{ profiles?: unknown }>(await fetch('api/profiles', { signal }));
  if (!Array.isArray(body?.profiles)) throw new ApiError(200, 'GET api/profiles: no "profiles" list in the answer');
  const seen = new Set<string>(['adaptive', 'original']);
  return (body.profiles as Partial<TranscodeProfile>[]).filter((p): p is TranscodeProfile => {
    if (typeof p?.quality_id !== 'string' || p.quality_id === '' || seen.has(p.quality_id)) return false;
    seen.add(p.quality_id);
    return true;
  });
}

export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export interface SessionMetrics {
  buffer_health_percentage: number;
  download_speed_kbps: number;
  rebuffer_count: number;
  rebuffer_duration_ms: number;
}

/** POST /api/streaming/session/SID/metrics: how playback goes (the
 * session's analytics and its quality monitor). */
export async function reportMetrics(sessionId: string, m: SessionMetrics): Promise<void> {
  await fetch(`api/streaming/session/${encodeURIComponent(sessionId)}/metrics`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(m),
  });
}

export function endSession(sessionId: string): void {
  fetch(`api/streaming/session/${encodeURIComponent(sessionId)}`, { method: 'DELETE', keepalive: true }).catch(() => {});
}

// ------------------------------------------------ versions and timed comments

/** A track as GET /api/tracks/ID gives it: with its song and versions. */
export interface TrackDetail extends Track {
  song_id: string | null;
  /** "v2", "final", or null (the original, or in no song) */
  version: string | null;
  /** every version's id in order, this one included; [] in no song */
  versions: string[];
}

export interface SongVersion {
  position: number;
  track_id: string;
  version: string | null;
  date_ms: number;
  explicit: boolean;
  title: string | null;
  duration_ms: number | null;
}

export interface Comment {
  comment_id: string;
  track_id: string;
  version: string | null;
  user_id: string;
  parent_id: string | null;
  at_ms: number;
  /** as typed: render it as text, never as HTML */
  body: string;
  created_ms: number;
  edited_ms: number | null;
  replies?: Comment[];
}

/** The user token the page was opened with (#token=... or a stored one):
 * posting a comment needs a user, the token's sub. */
export function userToken(): string | null {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (fromHash) {
    try {
      localStorage.setItem('talas.userToken', fromHash);
    } catch {
      /* private mode */
    }
    return fromHash;
  }
  try {
    return localStorage.getItem('talas.userToken');
  } catch {
    return null;
  }
}

export function authHeaders(): Record<string, string> {
  const t = userToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export async function fetchTrack(id: string, signal?: AbortSignal): Promise<TrackDetail> {
  return json<TrackDetail>(await fetch(`api/tracks/${encodeURIComponent(id)}`, { signal, headers: authHeaders() }));
}

export async function fetchSong(id: string, signal?: AbortSignal): Promise<{ song_id: string; versions: SongVersion[] }> {
  return json(await fetch(`api/songs/${encodeURIComponent(id)}`, { signal, headers: authHeaders() }));
}

export async function fetchComments(trackId: string, signal?: AbortSignal): Promise<{ threads: Comment[] }> {
  return json(await fetch(`api/tracks/${encodeURIComponent(trackId)}/comments`, { signal, headers: authHeaders() }));
}

export async function postComment(trackId: string, atMs: number, body: string, parentId: string | null): Promise<Comment> {
  const doc: Record<string, unknown> = { at_ms: Math.max(0, Math.round(atMs)), body };
  if (parentId) doc.parent_id = parentId;
  return json<Comment>(await fetch(`api/tracks/${encodeURIComponent(trackId)}/comments`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...authHeaders() },
    body: JSON.stringify(doc),
  }));
}
