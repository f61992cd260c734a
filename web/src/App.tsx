// The Talas web player: the search box, the track list, the live panel and
// the player bar, put together; each of their jobs lives in its own file.
import { useRef, useState } from 'react';
import { fetchTrack } from './api';
import { FeedbackPanel, useFeedback } from './Feedback';
import { LivePanel } from './LivePanel';
import { PlayerBar } from './PlayerBar';
import { TrackList, useTrackList } from './TrackList';
import { useKeyboard } from './keyboard';
import { useMediaSession } from './mediaSession';
import { listenerId, useRealtime } from './realtime';
import { usePlayer } from './usePlayer';

export function App() {
  const list = useTrackList();
  const [me] = useState(listenerId);
  const rt = useRealtime(me);
  const audioRef = useRef<HTMLAudioElement>(null);
  const player = usePlayer(audioRef, rt.send, rt.reconnects);
  useKeyboard(player.track !== null, player.toggle, player.seekBy);
  useMediaSession(player.track, player.playing, player.prev, player.next);
  const feedback = useFeedback(player.track, rt);
  const switchVersion = (id: string) => {
    fetchTrack(id).then((t) => player.switchTrack(t), () => {});
  };

  return (
    <div className="app">
      <header className="top-bar">
        <h1>Talas</h1>
        <input
          type="search"
          placeholder="Search title, artist, album"
          aria-label="Search"
          value={list.query}
          onChange={(e) => list.setQuery(e.target.value)}
          data-testid="search"
        />
      </header>
      <div className="main">
        <TrackList list={list} current={player.track} preview={player.preview} onPlay={player.start}>
          {player.mediaError && <p className="error" role="alert" data-testid="media-error">{player.mediaError}</p>}
        </TrackList>
        {player.track && (
          <FeedbackPanel track={player.track} time={player.time} feedback={feedback} onSeek={player.seek} onSwitch={switchVersion} />
        )}
        <LivePanel state={rt.state} retryIn={rt.retryIn} events={rt.events} listeners={rt.listeners} stats={rt.stats} me={me} known={list.known} />
      </div>
      <audio ref={audioRef} id="audio" preload="auto" />
      <PlayerBar
        track={player.track}
        preview={player.preview}
        playing={player.playing}
        time={player.time}
        duration={player.duration}
        buffered={player.buffered}
        quality={player.quality}
        qualities={player.qualities}
        source={player.source}
        hasPrev={player.hasPrev}
        hasNext={player.hasNext}
        onToggle={player.toggle}
        onPrev={player.prev}
        onNext={player.next}
        onSeek={player.seek}
        onQuality={player.changeQuality}
        match={player.match}
        onMatch={player.changeMatch}
        markers={feedback.threads}
      />
    </div>
  );
}
