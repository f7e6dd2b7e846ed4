"""The synthetic corpus of the scale benchmark: many users, dated sessions, conversational turns.

Nothing here comes from a dataset. Turns are built from templates and word lists of our own:
every turn joins two sentences of a pool (the user's side and the assistant's side have pools of
their own), so a million turns are nearly all distinct while only the pool is embedded. A turn's
vector is the normalised sum of its two sentences' vectors from the bundled embedder: it keeps
the structure of real embeddings (topics cluster, paraphrases sit close) without embedding a
million texts, which would take hours on two cores. The pool's vectors are cached in
``benchmarks/.cache`` (gitignored) under the pool's size and seed and the embedder's name.

Users have a persona (a name, a home city, a partner, pets, hobbies, a job) that their turns
mention more often than other words, sessions a few days apart with 8-40 turns each, and every
other session the metadata ``{"channel": "app"}`` (``"web"`` otherwise), which half-filters
search.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engramdb.pipeline.keys import embed_hash, embed_text, with_previous
from engramdb.records import Keys, Row, Vector
from engramdb.types import Scope

CACHE = Path(__file__).resolve().parent / ".cache"
TENANT = "scale"
#: Bump when the templates or word lists change: cached pool vectors are keyed by it.
CORPUS_VERSION = "scale-corpus-1"

FIRST = [
    "Amara", "Bruno", "Celia", "Dmitri", "Esra", "Felix", "Gaia", "Hiro", "Ines", "Jonas",
    "Kalani", "Luca", "Maren", "Nikhil", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tomas", "Uma",
    "Viktor", "Wren", "Xia", "Yusuf", "Zofia", "Adaeze", "Bilal", "Carmen", "Dara", "Elif",
    "Farid", "Greta", "Hamid", "Ilse", "Jaya", "Kofi", "Lena", "Mateo", "Noor", "Oren", "Priya",
]  # fmt: skip
CITIES = [
    "Porto", "Bergen", "Tbilisi", "Valencia", "Gdansk", "Leeds", "Kyoto", "Recife", "Quito",
    "Tampere", "Zadar", "Lyon", "Graz", "Mombasa", "Hobart", "Cusco", "Malmo", "Ghent", "Brno",
    "Aarhus", "Busan", "Cork", "Perth", "Izmir", "Sapporo", "Rosario",
]  # fmt: skip
HOBBIES = [
    "bouldering", "watercolour painting", "trail running", "sourdough baking", "birdwatching",
    "salsa dancing", "woodworking", "open water swimming", "board games", "film photography",
    "learning Portuguese", "knitting", "road cycling", "jazz piano", "beekeeping", "yoga",
    "rock climbing", "sailing", "chess", "pottery", "gardening", "stand-up comedy", "fishing",
]  # fmt: skip
JOBS = [
    "nurse", "data analyst", "teacher", "carpenter", "pharmacist", "product manager",
    "electrician", "architect", "chef", "bus driver", "lawyer", "researcher", "accountant",
    "graphic designer", "physiotherapist", "software tester", "librarian", "translator",
]  # fmt: skip
PETS = ["a tabby cat", "a beagle", "two rabbits", "a parrot", "a greyhound", "a tortoise"]
RELATIVES = ["my sister", "my brother", "my mum", "my dad", "my cousin", "my grandmother"]
THINGS = [
    "the dishwasher", "my laptop", "the car", "the garden fence", "my bike", "the heating",
    "the rent", "my passport", "the wedding gift", "the concert tickets", "the new sofa",
    "my phone", "the tax forms", "the roof", "the camera", "the flat viewing", "my knee",
]  # fmt: skip
FOODS = [
    "ramen", "lentil soup", "tacos", "a mushroom risotto", "dumplings", "a Greek salad",
    "shakshuka", "pad thai", "a bean chili", "banana bread", "paella", "a curry",
]  # fmt: skip
WHEN = [
    "yesterday", "last weekend", "this morning", "two days ago", "last month", "on Friday",
    "a few weeks ago", "tonight", "next Tuesday", "over the holidays", "in March", "this summer",
]  # fmt: skip
FEEL = ["excited", "worried", "tired", "relieved", "annoyed", "happy", "nervous", "proud"]

USER_TEMPLATES = [
    "I went {hobby} {when} and it was great.",
    "{relative} is visiting {city} {when}.",
    "I'm {feel} about {thing}.",
    "We cooked {food} {when}, turned out better than expected.",
    "Work as a {job} has been hectic lately.",
    "Can you remind me what I said about {thing}?",
    "I finally fixed {thing} {when}.",
    "My partner wants to move to {city}.",
    "I have {pet} now, it keeps me busy.",
    "Thinking about taking up {hobby} again.",
    "{relative} recommended a place for {food} in {city}.",
    "The doctor said my {body} should heal in {n} weeks.",
    "I spent about {n} euros on {thing}.",
    "We booked a trip to {city} for {when}.",
    "Honestly I'm {feel}, {relative} and I argued about {thing}.",
    "Do you think a {job} could switch careers at my age?",
    "I signed up for a {hobby} class that meets every {day}.",
    "Our neighbour in {city} has {pet} that barks all night.",
    "I ran {n} kilometres {when}.",
    "Remember that I don't eat {food} anymore.",
    "My interview for the {job} role is {when}.",
    "I lost {thing} {when} and I'm {feel}.",
]  # fmt: skip
ASSISTANT_TEMPLATES = [
    "That sounds lovely, how long have you been into {hobby}?",
    "Noted: {relative} is in {city} {when}.",
    "It makes sense to feel {feel} about {thing}.",
    "Would you like a recipe for {food}?",
    "Being a {job} is demanding, remember to take breaks.",
    "You mentioned {thing} {when}, shall I set a reminder?",
    "Good to hear {thing} is sorted.",
    "{city} has a mild climate and a good rail connection.",
    "How is life with {pet}?",
    "A {hobby} class could be a nice way to meet people.",
    "I can look up places for {food} in {city}.",
    "{n} weeks is a normal recovery time, keep resting your {body}.",
    "I'll keep track of the {n} euros for {thing}.",
    "Your trip to {city} is saved for {when}.",
    "Disagreements happen; maybe talk to {relative} again {when}.",
    "Plenty of people become a {job} later in life.",
    "Every {day} works well for a routine.",
    "Earplugs might help with {pet} next door.",
    "{n} kilometres is impressive!",
    "Got it, no more {food} suggestions.",
    "Good luck with the {job} interview {when}.",
    "Have you checked where you last had {thing}?",
]  # fmt: skip
BODY = ["knee", "shoulder", "ankle", "wrist", "back"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Saturday", "Sunday"]
QUESTION_TEMPLATES = [
    "What did I say about {thing}?",
    "When is {relative} visiting {city}?",
    "Which hobby did I start {when}?",
    "How much did I spend on {thing}?",
    "What do I think about {hobby}?",
    "Where did we book a trip to?",
    "What pet do I have?",
    "What did we cook {when}?",
    "How is my {body} healing?",
    "What happened with the {job} interview?",
]  # fmt: skip


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        hobby=rng.choice(HOBBIES), when=rng.choice(WHEN), relative=rng.choice(RELATIVES),
        city=rng.choice(CITIES), feel=rng.choice(FEEL), thing=rng.choice(THINGS),
        food=rng.choice(FOODS), job=rng.choice(JOBS), pet=rng.choice(PETS),
        body=rng.choice(BODY), n=rng.randint(2, 400), day=rng.choice(DAYS),
    )  # fmt: skip


def sentence_pool(templates: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` distinct sentences from the templates (capitalised, deterministic)."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < size:
        text = _fill(rng.choice(templates), rng)
        found[text[0].upper() + text[1:]] = None
    return list(found)


def questions(count: int, seed: int = 97) -> list[str]:
    """Questions a user asks about their history (not in the sentence pools)."""
    rng = random.Random(seed)
    return [_fill(rng.choice(QUESTION_TEMPLATES), rng) for _ in range(count)]


def cached_vectors(texts: Sequence[str], embedder_name: str, label: str) -> npt.NDArray[np.float32]:
    """Unit vectors of ``texts`` by the bundled embedder, computed once per pool and cached."""
    digest = hashlib.sha256("\x00".join([CORPUS_VERSION, embedder_name, *texts]).encode())
    path = CACHE / f"scale-{label}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    from engramdb.embedders import resolve_embedder

    embedder = resolve_embedder(embedder_name)
    out = np.concatenate(
        [embedder.embed(list(texts[i : i + 2048])) for i in range(0, len(texts), 2048)]
    ).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


@dataclass
class Pool:
    """Sentences of each side with their vectors."""

    user: list[str]
    assistant: list[str]
    user_vecs: npt.NDArray[np.float32]
    assistant_vecs: npt.NDArray[np.float32]

    @staticmethod
    def build(size: int, embedder_name: str) -> Pool:
        user = sentence_pool(USER_TEMPLATES, size, seed=1)
        assistant = sentence_pool(ASSISTANT_TEMPLATES, size, seed=2)
        return Pool(
            user,
            assistant,
            cached_vectors(user, embedder_name, f"user{size}"),
            cached_vectors(assistant, embedder_name, f"assistant{size}"),
        )


#: Every history lies between these (epoch seconds: 2019-01-01 and 2025-06-01), so that a search
#: "as of now" sees all of it.
START, END = 1_546_300_800, 1_748_736_000


@dataclass
class Persona:
    name: str
    city: str
    hobbies: list[str]
    job: str
    pet: str
    gap: float  # mean seconds between two sessions: a long history has them closer together
    sessions: int = 0
    left: int = 0  # turns left in the current session
    turns: int = 0
    clock: float = 0.0
    previous: Row | None = field(default=None, repr=False)


def persona(user_id: str, seed: int, expected_turns: int) -> Persona:
    rng = random.Random(f"{seed}:{user_id}")
    start = START + rng.uniform(0, 0.1) * (END - START)
    gap = (END - start) * 0.95 / max(1.0, expected_turns / 24)
    return Persona(
        rng.choice(FIRST), rng.choice(CITIES), rng.sample(HOBBIES, 3), rng.choice(JOBS),
        rng.choice(PETS), gap, clock=start,
    )  # fmt: skip


class Corpus:
    """Turns of one user after another; each user's sessions go forward in time."""

    def __init__(self, pool: Pool, embedder_name: str, seed: int = 7) -> None:
        self.pool = pool
        self.embedder_name = embedder_name
        self.seed = seed
        self._people: dict[str, Persona] = {}

    def turns(self, user_id: str, count: int, expected: int) -> Iterator[tuple[Row, Vector]]:
        """The next ``count`` turns of a user (continuing from earlier calls), with vectors;
        ``expected`` is about how many the user will have in all (it spaces the sessions)."""
        who = self._people.get(user_id)
        if who is None:
            who = self._people[user_id] = persona(user_id, self.seed, expected)
        rng = random.Random(f"{self.seed}:{user_id}:{who.turns}")
        for _ in range(count):
            if who.left == 0:
                who.sessions += 1
                who.clock += rng.uniform(0.5, 1.5) * who.gap
                who.previous = None
                who.left = rng.randint(8, 40)
            who.left -= 1
            yield self._turn(user_id, who, rng)

    def _turn(self, user_id: str, who: Persona, rng: random.Random) -> tuple[Row, Vector]:
        is_user = who.turns % 2 == 0
        texts, vecs = (
            (self.pool.user, self.pool.user_vecs)
            if is_user
            else (self.pool.assistant, self.pool.assistant_vecs)
        )
        a, b = rng.randrange(len(texts)), rng.randrange(len(texts))
        text = f"{texts[a]} {texts[b]}"
        if is_user:
            text = _personal(text, who, rng)
        vec = vecs[a] + vecs[b]
        who.clock += rng.uniform(5, min(120, who.gap / 80))
        who.turns += 1
        name = who.name if is_user else None
        own = f"{name}: {text}" if name else text
        row = Row(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            scope=Scope(TENANT, user_id, None),
            kind="message",
            session_id=f"{user_id}-s{who.sessions}",
            role="user" if is_user else "assistant",
            name=name,
            text=text,
            occurred_at=who.clock,
            recorded_at=who.clock,
            updated_at=who.clock,
            metadata={"channel": "app" if who.sessions % 2 else "web"},
            time_mentions=[],
            keys=with_previous(own, who.previous),
        )
        who.previous = row
        return row, (vec / np.linalg.norm(vec)).astype(np.float32)

    def vector_item(self, row: Row, vec: Vector) -> tuple[str, Keys, str, Vector]:
        """What ``put_vectors`` takes for a row: its id, keys, embed hash and vector."""
        return row.id, row.keys, embed_hash(self.embedder_name, embed_text(row.keys)), vec


def _personal(text: str, who: Persona, rng: random.Random) -> str:
    """A user's turn mentions their own life a third of the time."""
    if rng.random() < 0.34:
        extra = rng.choice(
            [
                f"Still thinking about {who.hobbies[0]}.",
                f"Things in {who.city} are calm.",
                f"Being a {who.job} is tiring.",
                f"I have {who.pet}, as you know.",
                f"Maybe {who.hobbies[1]} this week.",
            ]
        )
        return f"{text} {extra}"
    return text
