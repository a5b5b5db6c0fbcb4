"""Music (``PlayMusic``, ``AddToPlaylist``) against a local library index and a playlist store.

The library is ``dialog/data/music.json``; playlists live in the ``kv`` table
(namespace ``playlist``), seeded from the library file on first use. "Playing"
is recorded in the session (``state.vars["now_playing"]``) so "add this song to
my chill playlist" knows what "this song" is, with the tracks it was chosen from
(``state.vars["queue"]``) so "next song" (:mod:`dialog.skills.media`) knows what comes
next; a real player would be plugged in behind :class:`MusicSkill`.
"""

from __future__ import annotations

import re
from typing import Any

from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, skill
from dialog.state import Frame

_THIS = re.compile(r"^(this|that|it|the|current)?\s*(song|track|tune|one|it|this|that)?$", re.I)


def _norm(s: str | None) -> str:
    return re.sub(r"[^a-z0-9 ]", "", (s or "").lower().replace("&", "and")).strip()


def _playlist_key(name: str) -> str:
    key = _norm(name)
    key = re.sub(r"^(my|the)\s+", "", key)
    return re.sub(r"\s+playlist$", "", key).strip()


def _play(ctx: SkillContext, track: dict[str, Any], queue: list[dict[str, Any]]) -> None:
    """Record what plays now and what it was picked from (playback control reads both)."""
    ctx.state.vars["now_playing"] = {"title": track["title"], "artist": track["artist"]}
    ctx.state.vars["queue"] = [{"title": t["title"], "artist": t["artist"]} for t in queue[:50]]
    ctx.state.vars["paused"] = False


@skill("music", intents=("PlayMusic", "AddToPlaylist"))
class MusicSkill(Skill):
    slots = {
        "PlayMusic": (
            "artist",
            "track",
            "album",
            "genre",
            "playlist",
            "service",
            "sort",
            "year",
            "music_item",
        ),
        "AddToPlaylist": ("entity_name", "playlist", "artist", "music_item", "playlist_owner"),
    }

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        data = config.load_json("music.json")
        self.tracks: list[dict[str, Any]] = data["tracks"]
        self.seed_playlists: dict[str, list[str]] = data.get("playlists", {})

    # ------------------------------------------------------------------ library

    def _playlists(self, ctx: SkillContext) -> dict[str, list[dict[str, str]]]:
        stored = ctx.store.kv_all("playlist")
        if not stored and not ctx.store.kv_get("music", "seeded"):
            for name, titles in self.seed_playlists.items():
                items = [
                    {"title": t["title"], "artist": t["artist"]} for t in self.tracks if t["title"] in titles
                ]
                ctx.store.kv_put("playlist", name, items)
            ctx.store.kv_put("music", "seeded", True)
            stored = ctx.store.kv_all("playlist")
        return stored

    def _find(self, frame: Frame) -> list[dict[str, Any]]:
        hits = self.tracks
        for slot, field in (("artist", "artist"), ("track", "title"), ("album", "album"), ("genre", "genre")):
            want = _norm(frame.get(slot))
            if want:
                hits = [t for t in hits if want in _norm(t[field]) or _norm(t[field]) in want]
        return hits

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        if frame.intent == "AddToPlaylist":
            item = frame.get("entity_name")
            nothing_playing = "now_playing" not in ctx.state.vars
            if (not item or _THIS.match(item)) and nothing_playing:
                return ["entity_name", "playlist"]
            return ["playlist"]
        return []

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "playlist":
            return sorted(self._playlists(ctx))
        if slot in ("entity_name", "track"):
            return [t["title"] for t in self.tracks]
        if slot == "artist":
            return sorted({t["artist"] for t in self.tracks})
        if slot == "genre":
            return sorted({t["genre"] for t in self.tracks})
        return []

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot == "playlist":
            m = re.search(
                r"\b(?:my|the|to)\s+(?!(?:a|an|the|my|new|this|that)\b)([a-z0-9' ]+?)\s+playlist\b",
                text.lower(),
            )
            if m:
                return m.group(1), m.group(1)
        if slot in ("artist", "genre", "playlist", "track", "entity_name"):
            return super().extract(ctx, frame, slot, text)
        return None

    # ------------------------------------------------------------------ intents

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        if frame.intent == "AddToPlaylist":
            return self._add(ctx, frame)
        playlist = frame.get("playlist")
        if playlist:
            key = _playlist_key(playlist)
            items = self._playlists(ctx).get(key)
            if not items:
                return Reply("PlayMusic.no_playlist", {"playlist": key}, action="done")
            _play(ctx, items[0], items)
            return Reply("PlayMusic.playlist", {"playlist": key, "title": items[0]["title"],
                                                "artist": items[0]["artist"]}, record={"playlist": key})  # fmt: skip
        hits = self._find(frame)
        query = " ".join(v for v in (frame.get("track"), frame.get("album"), frame.get("genre")) if v)
        if frame.get("artist"):
            query = f"{query} by {frame.get('artist')}".strip()
        if not hits:
            return Reply("PlayMusic.not_found", {"query": query or "that"})
        # Deterministic "shuffle": the session's turn count picks the track.
        track = hits[ctx.state.turns % len(hits)] if not query else hits[0]
        _play(ctx, track, hits)
        key = "PlayMusic.track" if query else "PlayMusic.shuffle"
        return Reply(key, {"title": track["title"], "artist": track["artist"], "genre": track["genre"]},
                     record={"title": track["title"]})  # fmt: skip

    def _add(self, ctx: SkillContext, frame: Frame) -> Reply:
        name = _playlist_key(frame.get("playlist") or "favorites")
        item_text = frame.get("entity_name")
        if not item_text or _THIS.match(item_text):
            item = dict(ctx.state.vars.get("now_playing") or {})
        else:
            found = [t for t in self.tracks if _norm(item_text) in _norm(t["title"])]
            artist = frame.get("artist")
            if artist:
                found = [t for t in found if _norm(artist) in _norm(t["artist"])] or found
            item = (
                {"title": found[0]["title"], "artist": found[0]["artist"]}
                if found
                else {"title": item_text, "artist": artist or ""}
            )
        if not item:
            return Reply("AddToPlaylist.nothing", action="error")
        playlists = self._playlists(ctx)
        items = playlists.get(name)
        created = items is None
        items = list(items or [])
        if any(i["title"] == item["title"] for i in items):
            return Reply("AddToPlaylist.already", {"title": item["title"], "playlist": name})
        items.append(item)
        ctx.store.kv_put("playlist", name, items)
        key = "AddToPlaylist.created" if created else "AddToPlaylist.done"
        return Reply(key, {"title": item["title"], "playlist": name, "count": len(items)},
                     record={"playlist": name, "title": item["title"]})  # fmt: skip

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        # "no, to my workout playlist": move the song.
        if done.intent != "AddToPlaylist" or not correction.get("playlist"):
            return None
        old, title = done.record.get("playlist"), done.record.get("title")
        new = _playlist_key(correction.get("playlist") or "")
        if not old or not title or not new or new == old:
            return None
        playlists = self._playlists(ctx)
        ctx.store.kv_put("playlist", old, [i for i in playlists.get(old, []) if i["title"] != title])
        items = list(playlists.get(new, []))
        moved = next(
            (i for i in playlists.get(old, []) if i["title"] == title), {"title": title, "artist": ""}
        )
        if all(i["title"] != title for i in items):
            items.append(moved)
        ctx.store.kv_put("playlist", new, items)
        return Reply("AddToPlaylist.moved", {"title": title, "playlist": new, "old": old},
                     record={"playlist": new, "title": title})  # fmt: skip
