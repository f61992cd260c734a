// What the system shows of the playing track: the tab's title, and the
// lock screen's and the media keys' controls (navigator.mediaSession:
// the track's metadata, previous and next).
import { useEffect } from 'react';
import type { Track } from './api';

/** "▶ Title · Talas" while it plays, "Title · Talas" paused. */
export function pageTitle(track: Track | null, playing: boolean): string {
  return track ? `${playing ? '▶ ' : ''}${track.title || track.id} · Talas` : 'Talas';
}

export function useMediaSession(track: Track | null, playing: boolean, prev: () => void, next: () => void) {
  useEffect(() => {
    document.title = pageTitle(track, playing);
    if ('mediaSession' in navigator && track) {
      navigator.mediaSession.metadata = new MediaMetadata({ title: track.title, artist: track.artist, album: track.album });
      navigator.mediaSession.setActionHandler('previoustrack', prev);
      navigator.mediaSession.setActionHandler('nexttrack', next);
    }
  }, [track, playing, prev, next]);
}
