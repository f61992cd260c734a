// The Talas web player: the search box, the track list, the live panel and
// the player bar, put together; each of their jobs lives in its own file.
import { useRef, useState } from 'react';
import { fetchTrack, isQueueTrack, userToken } from './api';
import { Continuous } from './Continuous';
import { FeedbackPanel, useFeedback } from './Feedback';
import { LivePanel } from './LivePanel';
import { PlayerBar } from './PlayerBar';
import { TrackList, useTrackList } from './TrackList';
import { useKeyboard } from './keyboard';
import { useMediaSession } from './mediaSession';
import { listenerId, tokenSub, useRealtime } from './realtime';
import { RoomsPanel } from './rooms/RoomsPanel';
import { useRoom } from './rooms/useRoom';
import { usePlayer } from './usePlayer';

export function App() {
  const list = useTrackList();
  // a page opened with a user's token is that user (rooms need one)
  const [token] = useState(userToken);
  const [me] = useState(() => tokenSub(token) ?? listenerId());
  const rt = useRealtime(me, token);
  const audioRef = useRef<HTMLAudioElement>(null);
  const player = usePlayer(audioRef, rt.send, rt.reconnects);
  const room = useRoom(rt, audioRef, player, me);
  // in a room, the player's controls command the room (when allowed):
  // the room's position is everyone's
  const inRoom = room.room !== null;
  const toggle = inRoom ? () => void (room.control && room.toggle()) : player.toggle;
  const seek = inRoom ? (t: number) => void (room.control && room.seekTo(t * 1000)) : player.seek;
  const seekBy = inRoom ? (s: number) => void (room.control && room.seekBy(s)) : player.seekBy;
  const play: typeof player.start = inRoom
    ? (list, i) => {
        const t = list[i];
        if (t) void (room.control ? room.playTrack(t.id) : room.queueAdd({ track_id: t.id }));
      }
    : player.start;
  useKeyboard(player.track !== null, toggle, seekBy);
  useMediaSession(player.track, player.playing, player.prev, player.next);
  // a continuous queue is no track of the library: no comments, no versions
  const libraryTrack = player.track && !isQueueTrack(player.track) ? player.track : null;
  const feedback = useFeedback(libraryTrack, rt);
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
        <button
          type="button"
          className="rooms-toggle"
          aria-expanded={room.open}
          aria-controls="rooms-panel"
          onClick={() => room.setOpen(!room.open)}
          data-testid="rooms-toggle"
        >
          {inRoom ? 'Room •' : 'Rooms'}
        </button>
      </header>
      <div className="main">
        {room.open && (
          <div id="rooms-panel" className="rooms-wrap">
            <RoomsPanel room={room} current={player.track} known={list.known} />
          </div>
        )}
        <TrackList list={list} current={player.track} preview={player.preview} onPlay={play}>
          {!inRoom && <Continuous current={player.track} onPlay={player.playQueue} />}
          {player.mediaError && <p className="error" role="alert" data-testid="media-error">{player.mediaError}</p>}
        </TrackList>
        {libraryTrack && (
          <FeedbackPanel track={libraryTrack} time={player.time} feedback={feedback} onSeek={seek} onSwitch={switchVersion} />
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
        hasPrev={inRoom ? room.control : player.hasPrev}
        hasNext={inRoom ? room.control : player.hasNext}
        onToggle={toggle}
        onPrev={inRoom ? () => seek(0) : player.prev}
        onNext={inRoom ? () => void (room.control && room.skip()) : player.next}
        onSeek={seek}
        onQuality={player.changeQuality}
        match={player.match}
        onMatch={player.changeMatch}
        markers={feedback.threads}
        locked={inRoom && !room.control}
      />
    </div>
  );
}
