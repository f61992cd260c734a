// The share page: the track or the song (its versions) of one private
// link, with its waveform, a player, a download button when the link
// grants it, and the comments when it grants them. Every request carries
// the share token from POST /s/ID/unlock and nothing else.
import { useCallback, useEffect, useRef, useState } from 'react';
import {
  clock,
  comments as fetchComments,
  downloadUrl,
  peaks as fetchPeaks,
  playUrl,
  postComment,
  shareIdOf,
  ShareError,
  unlock,
  type ShareComment,
  type SharedTrack,
  type SharePeaks,
  type Unlocked,
} from './ShareApi';

const MESSAGES: Record<string, string> = {
  share_not_found: 'This link does not exist, or it has been revoked.',
  share_expired: 'This link has expired.',
  listener_limit_reached: 'This link has all the listeners it may have.',
  too_many_attempts: 'Too many wrong passwords: try again later.',
  shares_unavailable: 'Shared links are not available on this server.',
};

type Stage =
  | { kind: 'loading' }
  | { kind: 'password'; error: string | null }
  | { kind: 'refused'; message: string }
  | { kind: 'ready'; u: Unlocked };

export function SharePage() {
  const id = shareIdOf(location.pathname);
  const [stage, setStage] = useState<Stage>(id ? { kind: 'loading' } : { kind: 'refused', message: MESSAGES.share_not_found });

  const settle = useCallback((p: Promise<Unlocked>) => {
    p.then(
      (u) => setStage({ kind: 'ready', u }),
      (e: unknown) => {
        if (e instanceof ShareError && e.code === 'password_required') setStage({ kind: 'password', error: null });
        else if (e instanceof ShareError && e.code === 'wrong_password')
          setStage({ kind: 'password', error: 'Wrong password.' });
        else if (e instanceof ShareError) setStage({ kind: 'refused', message: MESSAGES[e.code] ?? e.message });
        else setStage({ kind: 'refused', message: 'The server could not be reached.' });
      },
    );
  }, []);

  useEffect(() => {
    if (id) settle(unlock(id, null));
  }, [id, settle]);

  return (
    <main className="share" data-stage={stage.kind}>
      <header className="share-head">Talas</header>
      {stage.kind === 'loading' && <p className="share-note">Opening the link…</p>}
      {stage.kind === 'refused' && (
        <p className="share-note share-refused" role="alert">
          {stage.message}
        </p>
      )}
      {stage.kind === 'password' && <PasswordForm error={stage.error} onSubmit={(p) => id && settle(unlock(id, p))} />}
      {stage.kind === 'ready' && <ShareView u={stage.u} />}
    </main>
  );
}

function PasswordForm({ error, onSubmit }: { error: string | null; onSubmit: (password: string) => void }) {
  const [password, setPassword] = useState('');
  return (
    <form
      className="share-password"
      data-testid="share-password"
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit(password);
      }}
    >
      <label>
        This link needs a password
        <input type="password" data-testid="share-password-input" autoComplete="off" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      <button type="submit">Open</button>
      {error && (
        <p className="share-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function ShareView({ u }: { u: Unlocked }) {
  const tracks = u.share.tracks;
  const perms = u.share.permissions;
  const [current, setCurrent] = useState<SharedTrack | null>(tracks[0] ?? null);
  const [positionMs, setPositionMs] = useState(0);
  const [playing, setPlaying] = useState(false);
  const audio = useRef<HTMLAudioElement>(null);

  if (!current) return <p className="share-note">This link's track is no longer in the library.</p>;
  const title = tracks.length > 1 ? (tracks[0].title.replace(/\s*[\s_(-]+v?\d+\)?$/i, '') || tracks[0].title) : current.title;

  return (
    <section className="share-view">
      <h1 className="share-title" data-testid="share-title">{title}</h1>
      <p className="share-artist">{current.artist}</p>
      {tracks.length > 1 && (
        <ul className="share-versions" aria-label="Versions">
          {tracks.map((t) => (
            <li key={t.id}>
              <button
                type="button"
                data-testid="share-version"
                aria-pressed={t.id === current.id}
                onClick={() => {
                  setCurrent(t);
                  setPositionMs(0);
                  setPlaying(false);
                }}
              >
                {t.version ?? t.title} <span className="share-dur">{clock(t.duration_ms)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <Waveform
        key={current.id}
        track={current}
        token={u.token}
        positionMs={positionMs}
        onSeek={(ms) => {
          if (audio.current) audio.current.currentTime = ms / 1000;
        }}
      />
      <div className="share-controls">
        <button
          type="button"
          className="share-play"
          data-testid="share-play"
          aria-label={playing ? 'Pause' : 'Play'}
          onClick={() => {
            const a = audio.current;
            if (!a) return;
            if (a.paused) void a.play();
            else a.pause();
          }}
        >
          {playing ? 'Pause' : 'Play'}
        </button>
        <span className="share-time">
          {clock(positionMs)} / {clock(current.duration_ms)}
        </span>
        {perms.includes('download') && (
          <a className="share-download" data-testid="share-download" href={downloadUrl(current, u.token)} download>
            Download
          </a>
        )}
      </div>
      <audio
        ref={audio}
        id="share-audio"
        key={current.id}
        src={playUrl(current, u.token, perms)}
        preload="none"
        onPlay={() => setPlaying(true)}
        onPause={() => setPlaying(false)}
        onEnded={() => setPlaying(false)}
        onTimeUpdate={(e) => setPositionMs(e.currentTarget.currentTime * 1000)}
      />
      {perms.includes('comment') && <Comments track={current} token={u.token} positionMs={positionMs} />}
      <p className="share-expiry">Link valid until {new Date(u.share.expires_at * 1000).toLocaleString()}</p>
    </section>
  );
}

const POINTS = 200;

function Waveform(props: { track: SharedTrack; token: string; positionMs: number; onSeek: (ms: number) => void }) {
  const { track, token, positionMs, onSeek } = props;
  const [p, setP] = useState<SharePeaks | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);

  useEffect(() => {
    const ac = new AbortController();
    fetchPeaks(track, token, POINTS, ac.signal).then(setP, () => setP(null));
    return () => ac.abort();
  }, [track, token]);

  useEffect(() => {
    const c = canvas.current;
    const g = c?.getContext('2d');
    if (!c || !g) return;
    const w = (c.width = c.clientWidth * devicePixelRatio);
    const h = (c.height = c.clientHeight * devicePixelRatio);
    g.clearRect(0, 0, w, h);
    if (!p) return;
    const played = track.duration_ms > 0 ? positionMs / track.duration_ms : 0;
    const step = w / p.points;
    for (let i = 0; i < p.points; i++) {
      g.fillStyle = i / p.points < played ? '#e8a33c' : '#6b6b78';
      const top = ((1 - p.max[i]) / 2) * h;
      const bottom = ((1 - p.min[i]) / 2) * h;
      g.fillRect(i * step, top, Math.max(1, step - 1), Math.max(1, bottom - top));
    }
  }, [p, positionMs, track.duration_ms]);

  return (
    <canvas
      ref={canvas}
      className="share-wave"
      data-testid="share-wave"
      data-ready={p ? 'yes' : 'no'}
      aria-label="Waveform: click to seek"
      onClick={(e) => {
        const r = e.currentTarget.getBoundingClientRect();
        onSeek(((e.clientX - r.left) / r.width) * track.duration_ms);
      }}
    />
  );
}

function Comments({ track, token, positionMs }: { track: SharedTrack; token: string; positionMs: number }) {
  const [list, setList] = useState<ShareComment[]>([]);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);

  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    fetchComments(track, token).then(setList, (e: unknown) =>
      setError(e instanceof Error ? e.message : 'comments could not be read'),
    );
  }, [track, token, generation]);

  return (
    <section className="share-comments" aria-label="Comments">
      <ul>
        {list.flatMap((c) => [c, ...(c.replies ?? [])]).map((c) => (
          <li key={c.comment_id} data-testid="share-comment">
            <span className="share-at">{clock(c.at_ms)}</span> {c.body}
          </li>
        ))}
      </ul>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!text.trim()) return;
          postComment(track, token, positionMs, text).then(
            () => {
              setText('');
              setGeneration((g) => g + 1);
            },
            (err: unknown) => setError(err instanceof Error ? err.message : 'not posted'),
          );
        }}
      >
        <input
          data-testid="share-comment-body"
          aria-label={`Comment at ${clock(positionMs)}`}
          placeholder={`Comment at ${clock(positionMs)}`}
          value={text}
          maxLength={2000}
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit" data-testid="share-comment-post">
          Post
        </button>
      </form>
      {error && (
        <p className="share-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
