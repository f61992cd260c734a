// The share page's calls: POST /s/ID/unlock for a share token, then the
// media, peaks and comments of the link's tracks with that token only.
// The page never sees the catalog: a share token opens nothing else.

export interface SharedTrack {
  id: string;
  title: string;
  artist: string;
  album: string;
  version: string | null;
  duration_ms: number;
}

export type Permission = 'stream' | 'download' | 'comment';

export interface Unlocked {
  token: string;
  expires_at: string;
  listener: string;
  share: {
    id: string;
    kind: 'track' | 'song';
    permissions: Permission[];
    expires_at: number;
    tracks: SharedTrack[];
  };
}

/** A refusal with the server's JSON error code ("password_required",
 * "wrong_password", "share_expired", ...). */
export class ShareError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

async function json<T>(r: Response): Promise<T> {
  const text = await r.text();
  let doc: unknown;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!r.ok) {
    const e = (doc as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ShareError(r.status, e?.code ?? 'http_' + String(r.status), e?.message ?? r.statusText);
  }
  return doc as T;
}

/** The share id of a page at /s/ID. */
export function shareIdOf(path: string): string | null {
  const m = /\/s\/([A-Za-z0-9_-]{16})\/?$/.exec(path);
  return m ? m[1] : null;
}

const listenerKey = (id: string) => `talas.share.${id}.listener`;

/** POST /s/ID/unlock: a share token; the listener id of an earlier visit
 * is sent again so that it keeps its place under a listener limit. */
export async function unlock(id: string, password: string | null): Promise<Unlocked> {
  let listener: string | null;
  try {
    listener = localStorage.getItem(listenerKey(id));
  } catch {
    listener = null;
  }
  const body: Record<string, string> = {};
  if (password !== null) body.password = password;
  if (listener) body.listener = listener;
  const u = await json<Unlocked>(
    await fetch(`s/${encodeURIComponent(id)}/unlock`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
  try {
    localStorage.setItem(listenerKey(id), u.listener);
  } catch {
    /* private browsing: a new listener next time */
  }
  return u;
}

function withToken(url: string, token: string): string {
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

/** What the page plays: a transcode when the link grants streaming, else
 * the original (download only). */
export function playUrl(track: SharedTrack, token: string, perms: Permission[]): string {
  const base = `stream/${encodeURIComponent(track.id)}`;
  return withToken(perms.includes('stream') ? base + '?format=mp3' : base, token);
}

export function downloadUrl(track: SharedTrack, token: string): string {
  return withToken(`stream/${encodeURIComponent(track.id)}`, token);
}

export interface SharePeaks {
  points: number;
  min: number[];
  max: number[];
}

export async function peaks(track: SharedTrack, token: string, points: number, signal?: AbortSignal): Promise<SharePeaks> {
  const url = withToken(`api/tracks/${encodeURIComponent(track.id)}/peaks?points=${points}`, token);
  return json<SharePeaks>(await fetch(url, { signal }));
}

export interface ShareComment {
  comment_id: string;
  track_id: string;
  user_id: string;
  at_ms: number;
  body: string;
  replies?: ShareComment[];
}

export async function comments(track: SharedTrack, token: string): Promise<ShareComment[]> {
  const r = await fetch(`api/tracks/${encodeURIComponent(track.id)}/comments`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const doc = await json<{ threads: ShareComment[] }>(r);
  return doc.threads;
}

export async function postComment(track: SharedTrack, token: string, atMs: number, body: string): Promise<ShareComment> {
  const r = await fetch(`api/tracks/${encodeURIComponent(track.id)}/comments`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ at_ms: Math.max(0, Math.round(atMs)), body }),
  });
  return json<ShareComment>(r);
}

/** "m:ss" */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
