// Continuous play of an artist or a playlist: their tracks as one HLS
// stream with no gap between them (GET /hls/queue/{kind}/{id}/master.m3u8),
// started from the playing track's artist, a typed artist, or a playlist
// id. Hidden in a listening room, whose queue the room plays.
import { useState, type FormEvent } from 'react';
import { isQueueTrack, type QueueSource, type Track } from './api';

export function Continuous({ current, onPlay }: { current: Track | null; onPlay: (q: QueueSource) => void }) {
  const [artist, setArtist] = useState('');
  const [playlist, setPlaylist] = useState('');
  const playing = current && !isQueueTrack(current) && current.artist ? current.artist : null;
  const submit = (kind: 'artist' | 'playlist', id: string) => (e: FormEvent) => {
    e.preventDefault();
    if (id.trim()) onPlay({ kind, id: id.trim() });
  };
  return (
    <section className="continuous" aria-label="Continuous play" data-testid="continuous">
      {playing && (
        <button type="button" onClick={() => onPlay({ kind: 'artist', id: playing })} data-testid="play-artist-current">
          Play all of {playing}
        </button>
      )}
      <form onSubmit={submit('artist', artist)}>
        <input value={artist} onChange={(e) => setArtist(e.target.value)} placeholder="Artist" aria-label="Artist to play" data-testid="play-artist-input" />
        <button type="submit" disabled={!artist.trim()} data-testid="play-artist">Play artist</button>
      </form>
      <form onSubmit={submit('playlist', playlist)}>
        <input value={playlist} onChange={(e) => setPlaylist(e.target.value)} placeholder="Playlist id" aria-label="Playlist to play" data-testid="play-playlist-input" />
        <button type="submit" disabled={!playlist.trim()} data-testid="play-playlist">Play playlist</button>
      </form>
    </section>
  );
}
