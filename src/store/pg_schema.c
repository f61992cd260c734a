/*
 * pg_schema.c - the cluster record store's schema on PostgreSQL
 * (pg_schema.h): the SQL of every version, the version check, the
 * password file.
 *
 * Entry points: talas_pg_migrations, talas_pg_schema_check_sql,
 * talas_pg_schema_judge, talas_pg_password_read. Logs nothing.
 *
 * Version 1, playlists (the LMDB ones of store/playlists.c, on a shared
 * database): a playlist row (id, owner, created), its editors in the order
 * they were added, its tracks by position. Every change is one call of a
 * SQL function, so one round trip and one transaction, in which the
 * quotas are checked:
 *   - the playlist's row is locked (SELECT ... FOR UPDATE): changes of one
 *     playlist, from any node, run one after the other, so
 *     playlists.max_tracks and max_editors hold;
 *   - creating a playlist takes a transaction-level advisory lock, one for
 *     the whole database, and counts after it: playlists.max_per_user and
 *     max_total hold across nodes (creations are rare next to edits);
 *   - positions are shifted in one statement: their unique constraint is
 *     checked at its end (DEFERRABLE).
 * Each function answers one row (outcome, detail, value, created):
 * outcome 'ok' (value: the position, or the editors added), 'not_found',
 * 'forbidden' or 'refused' (detail: which reason, playlists.h's texts),
 * 'quota' (detail: the limit's key, value: its value). Creating is
 * idempotent under a retry of the same id (the second call finds the
 * first's row); sharing too (editors are a set).
 *
 * Version 2, listening (the LMDB listening sessions and per-track totals of
 * store/playback.c): talas_listen_sessions, one row per listening session,
 * keyed by the session's id (the worker makes it: user, node, pid, start);
 * talas_track_totals (plays, listeners, listening time) and
 * talas_track_listeners (who ever listened to a track, so that a listener
 * counts once). A worker writes a session with one call of
 * talas_listen_session_put at each change of it (Play, Pause, Seek, Stop):
 * the first call inserts the row (INSERT ... ON CONFLICT DO NOTHING) and,
 * only when it did, counts a play and perhaps a listener; a later call
 * adds to the track's listening time what the session heard since the
 * row's last write, and never makes it smaller nor reopens a closed
 * session. So a call repeated (a retry after a lost answer) changes
 * nothing, and each session counts once whichever node writes it. All of
 * it in the function's one transaction. It answers 'new', 'updated' or
 * 'unchanged'.
 *
 * Version 3, timed comments (the LMDB ones of store/comments.c):
 * talas_comments, one row per comment, a reply's parent the first comment
 * of its thread (ON DELETE CASCADE: deleting it deletes its replies),
 * indexed by (track, at_ms). talas_comment_add checks the parent in its
 * transaction and answers (outcome, parent): 'ok' with the thread's first
 * comment, 'no_parent', 'parent_elsewhere'. talas_comment_change edits
 * (p_body not NULL) or deletes as P_USER (NULL: the backend) and answers
 * the row as it is (edit) or was (delete) with outcome 'ok', or
 * 'not_found', 'forbidden'. The body is text, stored as sent.
 *
 * Version 4, stars (the LMDB marks of store/stars.c): talas_stars, one row
 * per user and item, when it was first starred (NULL: not starred) and its
 * rating (0: none, 1..5); a row with neither is deleted in the same call.
 * talas_stars_set stars or unstars a JSON array of items in one call,
 * talas_stars_rate sets one rating; each is one transaction, and either
 * repeated (a retry after a lost answer) changes nothing more.
 *
 * Version 5, a cap on comments per track (comments.max_per_track):
 * talas_comment_add_capped takes a transaction-level advisory lock keyed
 * by the track, then counts the track's comments (replies too) in a
 * statement of its own, so with a snapshot taken after the lock: adds to
 * one track, from any node, run one after the other and the cap holds
 * exactly. Past it, outcome 'full'; otherwise it answers as
 * talas_comment_add, which it calls.
 *
 * Version 6, playlist details (the Subsonic playlist calls): a playlist's
 * name, comment, public flag and changed time (rows of version 1 get '',
 * '', false, their created time). talas_playlist_edit creates or changes
 * one in one call (the details, the tracks: replaced, or indexes removed
 * then songs appended), quotas checked before anything changes, and
 * answers as version 1's functions ('ok', value: the track count after);
 * talas_playlist_delete deletes one (its editors and tracks cascade):
 * 'ok', 'not_found', 'forbidden' ('owner' or 'ownerless'). Version 1's
 * add, remove and share set the changed time too.
 *
 * Version 7, saved play queues (the LMDB records of store/play_queue.c):
 * talas_play_queues, one row per user, its track ids in order (text[]),
 * the current track ('' none), the position, when and by which client it
 * was saved. talas_play_queue_save replaces the row, or deletes it for an
 * empty JSON array of tracks, in one statement: repeated, it changes
 * nothing more.
 *
 * Version 8, comments in the order they were stored: under the track's
 * lock, talas_comment_add_capped stamps a comment with p_now or, when that
 * is not later, just after the track's latest one (two nodes or workers
 * posting in one millisecond), and answers the time stored as a third
 * column, created_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/pg_schema.h"

static const char v1[] =
    "CREATE TABLE talas_playlists (\n"
    "    id text PRIMARY KEY,\n"
    "    owner text NOT NULL,\n"
    "    created timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE INDEX talas_playlists_by_owner ON talas_playlists (owner);\n"
    "CREATE TABLE talas_playlist_editors (\n"
    "    playlist text NOT NULL REFERENCES talas_playlists (id) ON DELETE CASCADE,\n"
    "    editor text NOT NULL,\n"
    "    seq bigint GENERATED ALWAYS AS IDENTITY,\n"
    "    PRIMARY KEY (playlist, editor)\n"
    ");\n"
    "CREATE TABLE talas_playlist_tracks (\n"
    "    playlist text NOT NULL REFERENCES talas_playlists (id) ON DELETE CASCADE,\n"
    "    position integer NOT NULL,\n"
    "    track text NOT NULL,\n"
    "    CONSTRAINT talas_playlist_tracks_position UNIQUE (playlist, position)\n"
    "        DEFERRABLE INITIALLY IMMEDIATE\n"
    ");\n"
    /* may USER change a playlist owned by O? */
    "CREATE FUNCTION talas_playlist_may_edit(p_playlist text, o text, p_user text) RETURNS boolean\n"
    "LANGUAGE sql STABLE AS $$\n"
    "    SELECT (o <> '' AND o = p_user) OR EXISTS (SELECT 1 FROM talas_playlist_editors\n"
    "        WHERE playlist = p_playlist AND editor = p_user)\n"
    "$$;\n"
    "CREATE FUNCTION talas_playlist_add(p_user text, p_playlist text, p_track text, p_position bigint,\n"
    "    max_per_user bigint, max_total bigint, max_tracks bigint,\n"
    "    OUT outcome text, OUT detail text, OUT value bigint, OUT created boolean)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    o text;\n"
    "    found_it boolean;\n"
    "    n bigint;\n"
    "BEGIN\n"
    "    created := false;\n"
    "    SELECT owner INTO o FROM talas_playlists WHERE id = p_playlist FOR UPDATE;\n"
    "    found_it := FOUND;\n"
    "    IF NOT found_it THEN\n"
    "        IF octet_length(p_user) NOT BETWEEN 1 AND 128 THEN\n"
    "            outcome := 'refused'; detail := 'user_id'; RETURN;\n"
    "        END IF;\n"
    "        -- creations one at a time, cluster-wide: the counts below hold\n"
    "        PERFORM pg_advisory_xact_lock(5786149417349279745);\n"
    "        SELECT owner INTO o FROM talas_playlists WHERE id = p_playlist FOR UPDATE;\n"
    "        found_it := FOUND;\n"
    "    END IF;\n"
    "    IF NOT found_it THEN\n"
    "        SELECT count(*) INTO n FROM (SELECT 1 FROM talas_playlists WHERE owner = p_user\n"
    "            LIMIT max_per_user) s;\n"
    "        IF n >= max_per_user THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_per_user'; value := max_per_user; RETURN;\n"
    "        END IF;\n"
    "        SELECT count(*) INTO n FROM (SELECT 1 FROM talas_playlists LIMIT max_total) s;\n"
    "        IF n >= max_total THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_total'; value := max_total; RETURN;\n"
    "        END IF;\n"
    "        IF p_position IS NOT NULL AND p_position > 0 THEN\n"
    "            outcome := 'refused'; detail := 'position'; RETURN;\n"
    "        END IF;\n"
    "        INSERT INTO talas_playlists (id, owner) VALUES (p_playlist, p_user);\n"
    "        created := true;\n"
    "        n := 0;\n"
    "    ELSE\n"
    "        IF NOT talas_playlist_may_edit(p_playlist, o, p_user) THEN\n"
    "            outcome := 'forbidden'; detail := CASE WHEN o = '' THEN 'ownerless' ELSE 'edit' END;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "        SELECT count(*) INTO n FROM talas_playlist_tracks WHERE playlist = p_playlist;\n"
    "        IF n >= max_tracks THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_tracks'; value := max_tracks; RETURN;\n"
    "        END IF;\n"
    "        IF p_position IS NOT NULL AND p_position > n THEN\n"
    "            outcome := 'refused'; detail := 'position'; RETURN;\n"
    "        END IF;\n"
    "    END IF;\n"
    "    value := coalesce(p_position, n);\n"
    "    UPDATE talas_playlist_tracks SET position = position + 1\n"
    "        WHERE playlist = p_playlist AND position >= value;\n"
    "    INSERT INTO talas_playlist_tracks (playlist, position, track) VALUES (p_playlist, value, p_track);\n"
    "    outcome := 'ok';\n"
    "END $$;\n"
    "CREATE FUNCTION talas_playlist_remove(p_user text, p_playlist text, p_track text,\n"
    "    OUT outcome text, OUT detail text, OUT value bigint, OUT created boolean)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    o text;\n"
    "    pos integer;\n"
    "BEGIN\n"
    "    created := false;\n"
    "    SELECT owner INTO o FROM talas_playlists WHERE id = p_playlist FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        outcome := 'not_found'; RETURN;\n"
    "    END IF;\n"
    "    IF NOT talas_playlist_may_edit(p_playlist, o, p_user) THEN\n"
    "        outcome := 'forbidden'; detail := CASE WHEN o = '' THEN 'ownerless' ELSE 'edit' END; RETURN;\n"
    "    END IF;\n"
    "    SELECT min(position) INTO pos FROM talas_playlist_tracks\n"
    "        WHERE playlist = p_playlist AND track = p_track;\n"
    "    IF pos IS NULL THEN\n"
    "        outcome := 'refused'; detail := 'not_in_playlist'; RETURN;\n"
    "    END IF;\n"
    "    DELETE FROM talas_playlist_tracks WHERE playlist = p_playlist AND position = pos;\n"
    "    UPDATE talas_playlist_tracks SET position = position - 1\n"
    "        WHERE playlist = p_playlist AND position > pos;\n"
    "    outcome := 'ok'; value := pos;\n"
    "END $$;\n"
    /* p_user NULL: the backend, which may share any playlist */
    "CREATE FUNCTION talas_playlist_share(p_user text, p_playlist text, p_to json, max_editors bigint,\n"
    "    OUT outcome text, OUT detail text, OUT value bigint, OUT created boolean)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    o text;\n"
    "    have bigint;\n"
    "BEGIN\n"
    "    created := false;\n"
    "    SELECT owner INTO o FROM talas_playlists WHERE id = p_playlist FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        outcome := 'not_found'; RETURN;\n"
    "    END IF;\n"
    "    IF p_user IS NOT NULL AND (o = '' OR o <> p_user) THEN\n"
    "        outcome := 'forbidden'; detail := CASE WHEN o = '' THEN 'ownerless' ELSE 'share' END; RETURN;\n"
    "    END IF;\n"
    "    IF EXISTS (SELECT 1 FROM json_array_elements_text(p_to) AS t(u)\n"
    "               WHERE octet_length(u) NOT BETWEEN 1 AND 128) THEN\n"
    "        outcome := 'refused'; detail := 'to_users'; RETURN;\n"
    "    END IF;\n"
    "    SELECT count(*) INTO have FROM talas_playlist_editors WHERE playlist = p_playlist;\n"
    "    SELECT count(DISTINCT u) INTO value FROM json_array_elements_text(p_to) AS t(u)\n"
    "        WHERE u <> o AND NOT EXISTS (SELECT 1 FROM talas_playlist_editors\n"
    "            WHERE playlist = p_playlist AND editor = u);\n"
    "    IF value = 0 THEN\n"
    "        outcome := 'ok'; RETURN;\n"
    "    END IF;\n"
    "    IF have + value > max_editors THEN\n"
    "        outcome := 'quota'; detail := 'playlists.max_editors'; value := max_editors; RETURN;\n"
    "    END IF;\n"
    "    INSERT INTO talas_playlist_editors (playlist, editor)\n"
    "        SELECT p_playlist, u FROM (SELECT u, min(i) AS first\n"
    "            FROM json_array_elements_text(p_to) WITH ORDINALITY AS t(u, i) GROUP BY u) s\n"
    "        WHERE u <> o AND NOT EXISTS (SELECT 1 FROM talas_playlist_editors\n"
    "            WHERE playlist = p_playlist AND editor = u)\n"
    "        ORDER BY first\n"
    "        ON CONFLICT DO NOTHING;\n"
    "    outcome := 'ok';\n"
    "END $$;\n";

static const char v2[] =
    "CREATE TABLE talas_listen_sessions (\n"
    "    id text PRIMARY KEY,\n"
    "    user_id text NOT NULL,\n"
    "    track text NOT NULL,\n"
    "    quality text NOT NULL,\n"
    "    platform text NOT NULL,\n"
    "    started_ms bigint NOT NULL,\n"
    "    ended_ms bigint,\n"
    "    position_ms bigint NOT NULL,\n"
    "    played_ms bigint NOT NULL\n"
    ");\n"
    "CREATE INDEX talas_listen_sessions_by_user ON talas_listen_sessions (user_id, started_ms);\n"
    "CREATE TABLE talas_track_totals (\n"
    "    track text PRIMARY KEY,\n"
    "    plays bigint NOT NULL,\n"
    "    listeners bigint NOT NULL,\n"
    "    listening_ms bigint NOT NULL\n"
    ");\n"
    "CREATE TABLE talas_track_listeners (\n"
    "    track text NOT NULL,\n"
    "    user_id text NOT NULL,\n"
    "    PRIMARY KEY (track, user_id)\n"
    ");\n"
    "CREATE FUNCTION talas_listen_session_put(p_id text, p_user text, p_track text, p_quality text,\n"
    "    p_platform text, p_started bigint, p_ended bigint, p_position bigint, p_played bigint)\n"
    "RETURNS text LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    s talas_listen_sessions%ROWTYPE;\n"
    "    new_listener integer := 0;\n"
    "BEGIN\n"
    "    INSERT INTO talas_listen_sessions VALUES (p_id, p_user, p_track, p_quality, p_platform, p_started,\n"
    "        p_ended, p_position, p_played) ON CONFLICT (id) DO NOTHING;\n"
    "    IF FOUND THEN\n"
    "        INSERT INTO talas_track_listeners VALUES (p_track, p_user) ON CONFLICT DO NOTHING;\n"
    "        IF FOUND THEN new_listener := 1; END IF;\n"
    "        INSERT INTO talas_track_totals AS t VALUES (p_track, 1, new_listener, p_played)\n"
    "            ON CONFLICT (track) DO UPDATE SET plays = t.plays + 1,\n"
    "                listeners = t.listeners + new_listener, listening_ms = t.listening_ms + p_played;\n"
    "        RETURN 'new';\n"
    "    END IF;\n"
    "    SELECT * INTO s FROM talas_listen_sessions WHERE id = p_id FOR UPDATE;\n"
    "    IF s.ended_ms IS NOT NULL OR p_played < s.played_ms\n"
    "        OR (p_played = s.played_ms AND p_position = s.position_ms AND p_ended IS NULL) THEN\n"
    "        RETURN 'unchanged';\n"
    "    END IF;\n"
    "    UPDATE talas_listen_sessions SET ended_ms = p_ended, position_ms = p_position, played_ms = p_played\n"
    "        WHERE id = p_id;\n"
    "    UPDATE talas_track_totals SET listening_ms = listening_ms + (p_played - s.played_ms)\n"
    "        WHERE track = s.track;\n"
    "    RETURN 'updated';\n"
    "END $$;\n";

static const char v3[] =
    "CREATE TABLE talas_comments (\n"
    "    id text PRIMARY KEY,\n"
    "    track text NOT NULL,\n"
    "    user_id text NOT NULL,\n"
    "    parent text REFERENCES talas_comments (id) ON DELETE CASCADE,\n"
    "    at_ms bigint NOT NULL,\n"
    "    created_ms bigint NOT NULL,\n"
    "    edited_ms bigint NOT NULL DEFAULT 0,\n"
    "    body text NOT NULL\n"
    ");\n"
    "CREATE INDEX talas_comments_by_track ON talas_comments (track, at_ms);\n"
    "CREATE FUNCTION talas_comment_add(p_id text, p_track text, p_user text, p_parent text, p_at bigint,\n"
    "    p_now bigint, p_body text, OUT outcome text, OUT parent text)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    p talas_comments%ROWTYPE;\n"
    "BEGIN\n"
    "    parent := NULL;\n"
    "    IF p_parent IS NOT NULL THEN\n"
    "        SELECT * INTO p FROM talas_comments WHERE id = p_parent FOR SHARE;\n"
    "        IF NOT FOUND THEN outcome := 'no_parent'; RETURN; END IF;\n"
    "        IF p.track <> p_track THEN outcome := 'parent_elsewhere'; RETURN; END IF;\n"
    "        parent := coalesce(p.parent, p.id);\n"
    "    END IF;\n"
    "    INSERT INTO talas_comments (id, track, user_id, parent, at_ms, created_ms, body)\n"
    "        VALUES (p_id, p_track, p_user, parent, p_at, p_now, p_body);\n"
    "    outcome := 'ok';\n"
    "END $$;\n"
    "CREATE FUNCTION talas_comment_change(p_id text, p_user text, p_body text, p_now bigint,\n"
    "    OUT outcome text, OUT track text, OUT user_id text, OUT parent text, OUT at_ms bigint,\n"
    "    OUT created_ms bigint, OUT edited_ms bigint, OUT body text)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    c talas_comments%ROWTYPE;\n"
    "BEGIN\n"
    "    SELECT * INTO c FROM talas_comments WHERE id = p_id FOR UPDATE;\n"
    "    IF NOT FOUND THEN outcome := 'not_found'; RETURN; END IF;\n"
    "    IF p_user IS NOT NULL AND c.user_id <> p_user THEN outcome := 'forbidden'; RETURN; END IF;\n"
    "    IF p_body IS NULL THEN\n"
    "        DELETE FROM talas_comments WHERE id = p_id;\n"
    "    ELSE\n"
    "        UPDATE talas_comments SET body = p_body, edited_ms = p_now WHERE id = p_id;\n"
    "        c.body := p_body;\n"
    "        c.edited_ms := p_now;\n"
    "    END IF;\n"
    "    outcome := 'ok';\n"
    "    track := c.track; user_id := c.user_id; parent := c.parent; at_ms := c.at_ms;\n"
    "    created_ms := c.created_ms; edited_ms := c.edited_ms; body := c.body;\n"
    "END $$;\n";

static const char v4[] =
    "CREATE TABLE talas_stars (\n"
    "    user_id text NOT NULL,\n"
    "    item text NOT NULL,\n"
    "    starred_ms bigint,\n"
    "    rating smallint NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),\n"
    "    PRIMARY KEY (user_id, item)\n"
    ");\n"
    /* p_starred NULL: unstar */
    "CREATE FUNCTION talas_stars_set(p_user text, p_items json, p_starred bigint) RETURNS bigint\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    IF p_starred IS NULL THEN\n"
    "        UPDATE talas_stars SET starred_ms = NULL WHERE user_id = p_user\n"
    "            AND item IN (SELECT json_array_elements_text(p_items));\n"
    "        DELETE FROM talas_stars WHERE user_id = p_user AND starred_ms IS NULL AND rating = 0;\n"
    "    ELSE\n"
    "        INSERT INTO talas_stars (user_id, item, starred_ms)\n"
    "            SELECT DISTINCT p_user, u, p_starred FROM json_array_elements_text(p_items) AS t(u)\n"
    "            ON CONFLICT (user_id, item)\n"
    "            DO UPDATE SET starred_ms = coalesce(talas_stars.starred_ms, EXCLUDED.starred_ms);\n"
    "    END IF;\n"
    "    RETURN 0;\n"
    "END $$;\n"
    "CREATE FUNCTION talas_stars_rate(p_user text, p_item text, p_rating integer) RETURNS bigint\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    IF p_rating = 0 THEN\n"
    "        DELETE FROM talas_stars WHERE user_id = p_user AND item = p_item AND starred_ms IS NULL;\n"
    "        UPDATE talas_stars SET rating = 0 WHERE user_id = p_user AND item = p_item;\n"
    "    ELSE\n"
    "        INSERT INTO talas_stars (user_id, item, rating) VALUES (p_user, p_item, p_rating)\n"
    "            ON CONFLICT (user_id, item) DO UPDATE SET rating = EXCLUDED.rating;\n"
    "    END IF;\n"
    "    RETURN 0;\n"
    "END $$;\n";

static const char v5[] =
    "CREATE FUNCTION talas_comment_add_capped(p_id text, p_track text, p_user text, p_parent text,\n"
    "    p_at bigint, p_now bigint, p_body text, p_max bigint, OUT outcome text, OUT parent text)\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    PERFORM pg_advisory_xact_lock(hashtextextended('talas_comments:' || p_track, 0));\n"
    "    IF (SELECT count(*) FROM talas_comments WHERE track = p_track) >= p_max THEN\n"
    "        outcome := 'full'; parent := NULL; RETURN;\n"
    "    END IF;\n"
    "    SELECT a.outcome, a.parent INTO outcome, parent\n"
    "        FROM talas_comment_add(p_id, p_track, p_user, p_parent, p_at, p_now, p_body) AS a;\n"
    "END $$;\n";

static const char v6[] =
    "ALTER TABLE talas_playlists ADD COLUMN name text NOT NULL DEFAULT '',\n"
    "    ADD COLUMN comment text NOT NULL DEFAULT '',\n"
    "    ADD COLUMN public boolean NOT NULL DEFAULT false,\n"
    "    ADD COLUMN changed timestamptz;\n"
    "UPDATE talas_playlists SET changed = created;\n"
    "ALTER TABLE talas_playlists ALTER COLUMN changed SET DEFAULT now(), ALTER COLUMN changed SET NOT NULL;\n"
    "CREATE INDEX talas_playlists_public ON talas_playlists (id) WHERE public;\n"
    /* version 1's changes touch the changed time (one trigger per row change
     * of a track or an editor) */
    "CREATE FUNCTION talas_playlist_touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    UPDATE talas_playlists SET changed = now()\n"
    "        WHERE id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.playlist ELSE NEW.playlist END)\n"
    "        AND changed <> now();\n"
    "    RETURN NULL;\n"
    "END $$;\n"
    "CREATE TRIGGER talas_playlist_tracks_touch AFTER INSERT OR DELETE ON talas_playlist_tracks\n"
    "    FOR EACH ROW EXECUTE FUNCTION talas_playlist_touch();\n"
    "CREATE TRIGGER talas_playlist_editors_touch AFTER INSERT ON talas_playlist_editors\n"
    "    FOR EACH ROW EXECUTE FUNCTION talas_playlist_touch();\n"
    /* p_user NULL: the backend; p_name, p_comment, p_public NULL: unchanged */
    "CREATE FUNCTION talas_playlist_edit(p_user text, p_playlist text, p_create boolean, p_name text,\n"
    "    p_comment text, p_public boolean, p_replace boolean, p_adds json, p_removes json,\n"
    "    max_per_user bigint, max_total bigint, max_tracks bigint,\n"
    "    OUT outcome text, OUT detail text, OUT value bigint, OUT created boolean)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    o text;\n"
    "    found_it boolean;\n"
    "    n bigint;\n"
    "    gone bigint;\n"
    "    adds bigint := json_array_length(p_adds);\n"
    "BEGIN\n"
    "    created := false;\n"
    "    SELECT owner INTO o FROM talas_playlists WHERE id = p_playlist FOR UPDATE;\n"
    "    found_it := FOUND;\n"
    "    IF NOT found_it AND NOT p_create THEN\n"
    "        outcome := 'not_found'; RETURN;\n"
    "    END IF;\n"
    "    IF found_it AND p_create THEN\n"
    "        outcome := 'refused'; detail := 'exists'; RETURN;\n"
    "    END IF;\n"
    "    IF p_create THEN\n"
    "        IF octet_length(p_user) NOT BETWEEN 1 AND 128 OR p_user IS NULL THEN\n"
    "            outcome := 'refused'; detail := 'user_id'; RETURN;\n"
    "        END IF;\n"
    "        PERFORM pg_advisory_xact_lock(5786149417349279745);\n"
    "        IF EXISTS (SELECT 1 FROM talas_playlists WHERE id = p_playlist) THEN\n"
    "            outcome := 'refused'; detail := 'exists'; RETURN;\n"
    "        END IF;\n"
    "        SELECT count(*) INTO n FROM (SELECT 1 FROM talas_playlists WHERE owner = p_user\n"
    "            LIMIT max_per_user) s;\n"
    "        IF n >= max_per_user THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_per_user'; value := max_per_user; RETURN;\n"
    "        END IF;\n"
    "        SELECT count(*) INTO n FROM (SELECT 1 FROM talas_playlists LIMIT max_total) s;\n"
    "        IF n >= max_total THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_total'; value := max_total; RETURN;\n"
    "        END IF;\n"
    "        IF adds > max_tracks THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_tracks'; value := max_tracks; RETURN;\n"
    "        END IF;\n"
    "        INSERT INTO talas_playlists (id, owner, name, comment, public)\n"
    "            VALUES (p_playlist, p_user, coalesce(p_name, ''), coalesce(p_comment, ''),\n"
    "                coalesce(p_public, false));\n"
    "        created := true;\n"
    "        n := 0;\n"
    "    ELSE\n"
    "        IF p_user IS NOT NULL AND (p_name IS NOT NULL OR p_comment IS NOT NULL OR p_public IS NOT NULL)\n"
    "            AND (o = '' OR o <> p_user) THEN\n"
    "            outcome := 'forbidden'; detail := CASE WHEN o = '' THEN 'ownerless' ELSE 'owner' END;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "        IF p_user IS NOT NULL AND (p_replace OR adds > 0 OR json_array_length(p_removes) > 0)\n"
    "            AND NOT talas_playlist_may_edit(p_playlist, o, p_user) THEN\n"
    "            outcome := 'forbidden'; detail := CASE WHEN o = '' THEN 'ownerless' ELSE 'edit' END;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "        SELECT count(*) INTO n FROM talas_playlist_tracks WHERE playlist = p_playlist;\n"
    "        IF NOT p_replace AND EXISTS (SELECT 1 FROM json_array_elements_text(p_removes) AS t(i)\n"
    "                                     WHERE i::bigint < 0 OR i::bigint >= n) THEN\n"
    "            outcome := 'refused'; detail := 'index'; RETURN;\n"
    "        END IF;\n"
    "        gone := CASE WHEN p_replace THEN n\n"
    "            ELSE (SELECT count(DISTINCT i::bigint) FROM json_array_elements_text(p_removes) AS t(i)) END;\n"
    "        IF adds > 0 AND n - gone + adds > max_tracks THEN\n"
    "            outcome := 'quota'; detail := 'playlists.max_tracks'; value := max_tracks; RETURN;\n"
    "        END IF;\n"
    "        IF p_replace THEN\n"
    "            DELETE FROM talas_playlist_tracks WHERE playlist = p_playlist;\n"
    "        ELSIF gone > 0 THEN\n"
    "            DELETE FROM talas_playlist_tracks WHERE playlist = p_playlist\n"
    "                AND position IN (SELECT i::integer FROM json_array_elements_text(p_removes) AS t(i));\n"
    "            UPDATE talas_playlist_tracks t SET position = s.rn - 1\n"
    "                FROM (SELECT position, row_number() OVER (ORDER BY position) AS rn\n"
    "                      FROM talas_playlist_tracks WHERE playlist = p_playlist) s\n"
    "                WHERE t.playlist = p_playlist AND t.position = s.position AND t.position <> s.rn - 1;\n"
    "        END IF;\n"
    "        n := n - gone;\n"
    "        UPDATE talas_playlists SET name = coalesce(p_name, name), comment = coalesce(p_comment, comment),\n"
    "            public = coalesce(p_public, public), changed = now() WHERE id = p_playlist;\n"
    "    END IF;\n"
    "    INSERT INTO talas_playlist_tracks (playlist, position, track)\n"
    "        SELECT p_playlist, n + i - 1, u FROM json_array_elements_text(p_adds) WITH ORDINALITY AS t(u, i);\n"
    "    outcome := 'ok'; value := n + adds;\n"
    "END $$;\n"
    "CREATE FUNCTION talas_playlist_delete(p_user text, p_playlist text,\n"
    "    OUT outcome text, OUT detail text, OUT value bigint, OUT created boolean)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    o text;\n"
    "BEGIN\n"
    "    created := false;\n"
    "    SELECT owner INTO o FROM talas_playlists WHERE id = p_playlist FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        outcome := 'not_found'; RETURN;\n"
    "    END IF;\n"
    "    IF p_user IS NOT NULL AND (o = '' OR o <> p_user) THEN\n"
    "        outcome := 'forbidden'; detail := CASE WHEN o = '' THEN 'ownerless' ELSE 'owner' END; RETURN;\n"
    "    END IF;\n"
    "    DELETE FROM talas_playlists WHERE id = p_playlist;\n"
    "    outcome := 'ok';\n"
    "END $$;\n";


static const char v7[] =
    "CREATE TABLE talas_play_queues (\n"
    "    user_id text PRIMARY KEY,\n"
    "    tracks text[] NOT NULL,\n"
    "    current text NOT NULL DEFAULT '',\n"
    "    position_ms bigint NOT NULL DEFAULT 0,\n"
    "    changed_ms bigint NOT NULL,\n"
    "    changed_by text NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE FUNCTION talas_play_queue_save(p_user text, p_tracks json, p_current text, p_position bigint,\n"
    "                                      p_changed bigint, p_by text) RETURNS bigint\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    IF json_array_length(p_tracks) = 0 THEN\n"
    "        DELETE FROM talas_play_queues WHERE user_id = p_user;\n"
    "    ELSE\n"
    "        INSERT INTO talas_play_queues (user_id, tracks, current, position_ms, changed_ms, changed_by)\n"
    "            VALUES (p_user, ARRAY(SELECT t FROM json_array_elements_text(p_tracks) WITH ORDINALITY\n"
    "                                  AS a(t, n) ORDER BY n),\n"
    "                    p_current, p_position, p_changed, p_by)\n"
    "            ON CONFLICT (user_id) DO UPDATE SET tracks = EXCLUDED.tracks, current = EXCLUDED.current,\n"
    "                position_ms = EXCLUDED.position_ms, changed_ms = EXCLUDED.changed_ms,\n"
    "                changed_by = EXCLUDED.changed_by;\n"
    "    END IF;\n"
    "    RETURN 0;\n"
    "END $$;\n";

static const char v8[] =
    "DROP FUNCTION talas_comment_add_capped(text, text, text, text, bigint, bigint, text, bigint);\n"
    "CREATE FUNCTION talas_comment_add_capped(p_id text, p_track text, p_user text, p_parent text,\n"
    "    p_at bigint, p_now bigint, p_body text, p_max bigint, OUT outcome text, OUT parent text,\n"
    "    OUT created_ms bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    latest bigint;\n"
    "BEGIN\n"
    "    PERFORM pg_advisory_xact_lock(hashtextextended('talas_comments:' || p_track, 0));\n"
    "    IF (SELECT count(*) FROM talas_comments WHERE track = p_track) >= p_max THEN\n"
    "        outcome := 'full'; parent := NULL; created_ms := NULL; RETURN;\n"
    "    END IF;\n"
    "    SELECT max(c.created_ms) INTO latest FROM talas_comments c WHERE c.track = p_track;\n"
    "    created_ms := greatest(p_now, coalesce(latest + 1, p_now));\n"
    "    SELECT a.outcome, a.parent INTO outcome, parent\n"
    "        FROM talas_comment_add(p_id, p_track, p_user, p_parent, p_at, created_ms, p_body) AS a;\n"
    "END $$;\n";

const char *const talas_pg_migrations[TALAS_PG_SCHEMA_VERSION] = {v1, v2, v3, v4, v5, v6, v7, v8};

const char talas_pg_schema_check_sql[] = "SELECT version FROM talas_schema";

int talas_pg_schema_judge(const char *version, char *reason, size_t size)
{
    char *end;
    long v;

    if (version == NULL) {
        snprintf(reason, size, "the database has no Talas schema: run \"talasctl db migrate\" (this build "
                               "needs version %d)",
                 TALAS_PG_SCHEMA_VERSION);
        return -1;
    }
    errno = 0;
    v = strtol(version, &end, 10);
    if (errno != 0 || end == version || *end != '\0' || v < 0) {
        snprintf(reason, size, "talas_schema holds \"%.32s\", not a version", version);
        return -1;
    }
    if (v < TALAS_PG_SCHEMA_VERSION) {
        snprintf(reason, size, "the schema is at version %ld, older than this build's %d: run \"talasctl db "
                               "migrate\"",
                 v, TALAS_PG_SCHEMA_VERSION);
        return -1;
    }
    if (v > TALAS_PG_SCHEMA_VERSION) {
        snprintf(reason, size, "the schema is at version %ld, newer than this build knows (%d): upgrade "
                               "Talas on this node",
                 v, TALAS_PG_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

int talas_pg_password_read(const char *path, char **password_r, char **error_r)
{
    char line[1024];
    FILE *fp = fopen(path, "r");
    size_t len;

    *password_r = NULL;
    if (fp == NULL) {
        *error_r = xasprintf("%s: cannot read the PostgreSQL password: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(line, sizeof(line), fp) == NULL)
        line[0] = '\0';
    fclose(fp);
    len = strcspn(line, "\r\n");
    line[len] = '\0';
    if (len == 0) {
        *error_r = xasprintf("%s: the PostgreSQL password file is empty", path);
        return -1;
    }
    *password_r = xstrdup(line);
    return 0;
}
