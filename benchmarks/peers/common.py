"""Shared pieces of the peers benchmark: data loading, metrics (engramdb's), synthetic chat, guards.

Imported by the driver in *both* virtual environments (engramdb's own and the peers' one), so it
uses the standard library and numpy only.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import math
import os
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the repository
BENCH_DIR = Path(os.environ.get("ENGRAM_BENCH_DIR", ROOT.parent / "shared" / "bench"))

SEARCH_LIMIT = 50  # hits asked of every system (as engramdb's eval runner does)
LOCOMO_KS = (5, 10)
LOCOMO_BUDGETS = (750, 1500)


# --- messages -------------------------------------------------------------------------------


@dataclass
class Message:
    """One chat turn as every adapter receives it."""

    turn: str  # the turn id the metrics look for
    role: str  # "user" / "assistant"
    content: str
    timestamp: datetime  # when it was said (the session date + i seconds)
    name: str | None = None  # the speaker's name, when the data has one
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speaker(self) -> str:
        return self.name or self.role

    def indexed_text(self) -> str:
        """What the plain peers (vector store, BM25) index: the dev-set README's baseline form."""
        return f"[{self.timestamp:%-d %B %Y}] {self.speaker}: {self.content}"

    def words(self) -> int:
        """Words a reader needs for this turn: who said it and what (no date prefix)."""
        return len(f"{self.speaker}: {self.content}".split())


@dataclass
class Session:
    session_id: str
    messages: list[Message]


@dataclass
class Haystack:
    """What goes into one fresh store: a LoCoMo conversation or a LongMemEval question's history."""

    scope: str
    sessions: list[Session]
    questions: list[dict[str, Any]]


# --- LoCoMo ---------------------------------------------------------------------------------


def _locomo_date(text: str) -> datetime:
    # "1:56 pm on 8 May, 2023"
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def load_locomo(path: Path | None = None, limit: int | None = None) -> list[Haystack]:
    """LoCoMo conversations as engramdb's importer reads them (speaker A = user role)."""
    data = json.loads(Path(path or BENCH_DIR / "locomo_dev.json").read_text())
    out = []
    for index, sample in enumerate(data[:limit]):
        conv = sample["conversation"]
        speaker_a = conv["speaker_a"]
        sessions = []
        n = 1
        while f"session_{n}" in conv:
            date = _locomo_date(conv[f"session_{n}_date_time"])
            msgs = []
            for i, turn in enumerate(conv[f"session_{n}"]):
                text = str(turn["text"])
                if turn.get("blip_caption"):
                    text += f" [shares a photo: {turn['blip_caption']}]"
                msgs.append(
                    Message(
                        turn=str(turn["dia_id"]),
                        role="user" if turn.get("speaker") == speaker_a else "assistant",
                        name=turn.get("speaker"),
                        content=text,
                        timestamp=date + timedelta(seconds=i),
                    )
                )
            sessions.append(Session(f"session_{n}", msgs))
            n += 1
        questions = [
            {
                "question": str(qa["question"]),
                "category": int(qa["category"]),
                "evidence": sorted({str(e) for e in qa.get("evidence") or []}),
            }
            for qa in sample["qa"]
        ]
        out.append(Haystack(str(sample.get("sample_id", f"locomo-{index}")), sessions, questions))
    return out


# --- LongMemEval ----------------------------------------------------------------------------


def _lme_date(text: str) -> datetime:
    # "2023/05/20 (Sat) 02:21"
    return datetime.strptime(text.strip(), "%Y/%m/%d (%a) %H:%M").replace(tzinfo=UTC)


def lme_subset(n_total: int, n: int | None) -> list[int]:
    """Indexes of the non-abstention questions used: every k-th, spread over the whole file.

    The file is ordered by question type, so an even stride keeps the type mix.
    """
    if n is None or n >= n_total:
        return list(range(n_total))
    return sorted({math.floor(i * n_total / n) for i in range(n)})


def load_longmemeval(path: Path | None = None, limit: int | None = None) -> list[Haystack]:
    """LongMemEval questions (abstention ones skipped), each with its own haystack."""
    raw = Path(path or BENCH_DIR / "longmemeval_s_dev.json.gz")
    opener = gzip.open if raw.suffix == ".gz" else open
    with opener(raw, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    questions = [q for q in data if not str(q["question_id"]).endswith("_abs")]
    out = []
    for index in lme_subset(len(questions), limit):
        q = questions[index]
        sessions = []
        evidence = set()
        for sid, date, turns in zip(
            q["haystack_session_ids"], q["haystack_dates"], q["haystack_sessions"], strict=True
        ):
            start = _lme_date(date)
            msgs = []
            for i, turn in enumerate(turns):
                if turn.get("has_answer"):
                    evidence.add(f"{sid}:{i}")
                if not str(turn.get("content", "")).strip():
                    continue
                msgs.append(
                    Message(
                        turn=f"{sid}:{i}",
                        role=turn["role"],
                        content=turn["content"],
                        timestamp=start + timedelta(seconds=i),
                        extra={"session": str(sid)},
                    )
                )
            if msgs:
                sessions.append(Session(str(sid), msgs))
        questions_out = [
            {
                "question_id": str(q["question_id"]),
                "question": str(q["question"]),
                "question_type": str(q["question_type"]),
                "question_date": _lme_date(q["question_date"]).isoformat(),
                "answer_sessions": sorted(str(s) for s in q["answer_session_ids"]),
                "evidence_turns": sorted(evidence),
            }
        ]
        out.append(Haystack(str(q["question_id"]), sessions, questions_out))
    return out


def session_of(turn: str) -> str:
    """LongMemEval turn ids are ``<session id>:<index>``."""
    return turn.rsplit(":", 1)[0]


# --- metrics: engramdb's own module, loaded from its file ----------------------------------
# The peers' venv does not install engramdb, and importing the package would pull its
# dependencies; evals/metrics.py is pure standard library, so every system is scored by the very
# same code as `engram eval`.


def _load_metrics() -> Any:
    path = ROOT / "src" / "engramdb" / "evals" / "metrics.py"
    spec = importlib.util.spec_from_file_location("engramdb_eval_metrics", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the metrics from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_metrics = _load_metrics()
recall_at_k = _metrics.recall_at_k
recall_within_words = _metrics.recall_within_words
session_ranking = _metrics.session_ranking
recall_any_at_k = _metrics.recall_any_at_k
recall_all_at_k = _metrics.recall_all_at_k
ndcg_at_k = _metrics.ndcg_at_k
percentile = _metrics.percentile
mean = _metrics.mean


class Scores:
    """Per-question values, grouped, averaged at the end."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {}

    def add(self, group: str, metric: str, value: float) -> None:
        self.values.setdefault(group, {}).setdefault(metric, []).append(value)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for g, ms in sorted(self.values.items()):
            out[g] = {k: round(mean(v), 4) for k, v in ms.items()}
            out[g]["n"] = max(len(v) for v in ms.values())
        return out


# --- synthetic chat for the speed / scale workloads ------------------------------------------

_PEOPLE = [
    "Ana", "Ben", "Chloé", "Dev", "Emeka", "Fatima", "Goro", "Hana", "Ivan", "Jules", "Kofi",
    "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor",
    "Wen", "Ximena", "Yusuf", "Zoe", "my sister", "my boss", "my landlord", "the kids", "grandma",
]  # fmt: skip
_PLACES = [
    "Lisbon", "Osaka", "Nairobi", "Toronto", "Krakow", "Lima", "Hanoi", "Oslo", "Accra", "Porto",
    "the lake house", "the office", "the gym", "Bangkok", "Denver", "Edinburgh", "Marrakesh",
    "the farmers market", "Seville", "Vancouver", "Tbilisi", "the coast", "Kyoto", "Montreal",
]  # fmt: skip
_THINGS = [
    "guitar lessons", "sourdough starter", "half marathon", "chess club", "pottery class",
    "tax return", "vegetable garden", "new job", "bike repair", "piano recital", "camping trip",
    "book club", "dentist appointment", "birthday party", "job interview", "kayak", "cat",
    "leaking roof", "car insurance", "Spanish course", "wedding invitation", "laptop", "sofa",
    "knee injury", "photography workshop", "mortgage", "visa application", "thesis draft",
    "podcast", "kitchen renovation", "yoga retreat", "puppy training", "budget spreadsheet",
    "climbing gym membership", "flight to the conference", "allergy medication", "jazz concert",
]  # fmt: skip
_FOODS = [
    "ramen", "paella", "jollof rice", "pierogi", "pho", "tacos", "lasagna", "falafel", "sushi",
    "curry", "shakshuka", "bibimbap", "ceviche", "moussaka", "dumplings", "pad thai",
]  # fmt: skip
_FEELINGS = [
    "excited", "nervous", "exhausted", "relieved", "frustrated", "proud", "a bit lost",
    "optimistic", "annoyed", "grateful", "overwhelmed", "curious",
]  # fmt: skip
_WHEN = [
    "yesterday", "last week", "this morning", "two days ago", "last month", "on Saturday",
    "recently", "a while ago", "over the weekend", "tonight", "in March", "next Friday",
    "three weeks ago", "after lunch", "before the holidays", "last summer",
]  # fmt: skip
_VERBS = [
    "started", "finished", "planned", "cancelled", "talked about", "worried about", "bought",
    "sold", "fixed", "booked", "postponed", "celebrated", "signed up for", "gave up on",
]  # fmt: skip
_USER = [
    "{person} and I {verb} the {thing} {when}.",
    "I {verb} my {thing} {when}, and {person} helped a lot.",
    "Do you remember when we {verb} the {thing}? That was in {place}.",
    "My friend {person} says the {thing} costs about {n} euros in {place}.",
    "{when} I {verb} the {thing}; it took {n} minutes and I felt {feeling}.",
    "Not sure yet. {person} thinks the {thing} can wait until we are back from {place}.",
    "Can you remind me what I said about the {thing}?",
    "We had {food} in {place} {when}, honestly the best I've had in years.",
    "I'm feeling {feeling} about the {thing}. {person} keeps asking about it.",
    "Quick update: the {thing} is done, {n} days earlier than planned!",
    "What should I cook for {person} on Sunday? They don't eat {food}.",
    "I moved my {thing} to {when} because {person} is visiting from {place}.",
    "Is it normal that the {thing} takes {n} weeks? I'm getting {feeling}.",
    "I think I'll go to {place} for the {thing}. Flights are around {n} dollars.",
    "Ugh, {person} forgot about the {thing} again.",
    "Thanks! That helps. I'll tell {person} tonight.",
    "My budget for the {thing} is {n} a month, does that sound realistic?",
    "Remember that I'm allergic to {food}, so skip anything with it.",
]  # fmt: skip
_ASSISTANT = [
    "That sounds like a lot to juggle. For the {thing}, it may help to break it into smaller "
    "steps and set a date with {person}.",
    "Congratulations on the {thing}! Finishing it {when} is a real achievement.",
    "If the {thing} costs around {n}, you could set aside a fixed amount each week. Would you "
    "like a simple plan?",
    "Here is a quick idea: try {food} with a side salad; it's easy and most guests like it.",
    "You mentioned {place} before. The best time to go is usually spring, when prices are lower "
    "and the weather is mild.",
    "It's understandable to feel {feeling}. Many people find the {thing} harder than expected at "
    "first.",
    "Sure. You said {person} would help with the {thing} and that it should be done before "
    "you travel to {place}.",
    "A typical {thing} takes anywhere from {n} days to a few weeks, depending on the season.",
    "I'd suggest writing down three priorities for this week: the {thing}, rest, and time with "
    "{person}.",
    "Got it, I'll keep in mind that you don't want {food}. Would a vegetarian option work?",
    "Good question. Start with a short warm-up, then {n} minutes of focused practice, and end "
    "with something you enjoy.",
    "That's a reasonable budget. Keep a small buffer of about {n} for surprises.",
]  # fmt: skip
_QUERIES = [
    "What did {person} do with the {thing}?",
    "When did I go to {place}?",
    "How much does the {thing} cost?",
    "What happened with the {thing} last week?",
    "Who helped with my {thing}?",
    "What food did we have in {place}?",
    "How did I feel about the {thing}?",
    "What am I allergic to?",
    "What is my budget for the {thing}?",
    "When is {person} visiting?",
]  # fmt: skip


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        person=rng.choice(_PEOPLE),
        place=rng.choice(_PLACES),
        thing=rng.choice(_THINGS),
        food=rng.choice(_FOODS),
        feeling=rng.choice(_FEELINGS),
        when=rng.choice(_WHEN),
        verb=rng.choice(_VERBS),
        n=rng.randint(2, 900),
    )


def synthetic_sessions(count: int, seed: int = 13, start_index: int = 0) -> Iterator[Session]:
    """``count`` chat turns in sessions of 6-40 turns, one session every 1-3 days.

    Deterministic in (seed, position): messages ``[a, b)`` are the same whether generated in
    one call or in two, so a store can be grown in steps. User turns are short, assistant turns
    one to three sentences; some turns mention what an earlier one did.
    """
    rng = random.Random(seed)
    when = datetime(2021, 1, 4, 9, 0, tzinfo=UTC)
    produced = 0
    session = 0
    while produced < start_index + count:
        length = rng.randint(6, 40)
        msgs = []
        for i in range(length):
            if produced >= start_index + count:
                break
            role = "user" if i % 2 == 0 else "assistant"
            if role == "user":
                text = _fill(rng.choice(_USER), rng)
                if rng.random() < 0.3:
                    text += " " + _fill(rng.choice(_USER), rng)
            else:
                text = " ".join(
                    _fill(rng.choice(_ASSISTANT), rng) for _ in range(rng.randint(1, 3))
                )
            if produced >= start_index:
                msgs.append(
                    Message(
                        turn=f"syn:{produced}",
                        role=role,
                        name="Sam" if role == "user" else "assistant",
                        content=text,
                        timestamp=when + timedelta(minutes=2 * i),
                    )
                )
            produced += 1
        if msgs:
            yield Session(f"s{session}", msgs)
        session += 1
        when += timedelta(days=rng.randint(1, 3), hours=rng.randint(-3, 3))


def synthetic_messages(count: int, seed: int = 13) -> list[Message]:
    return [m for s in synthetic_sessions(count, seed) for m in s.messages]


def synthetic_queries(count: int, seed: int = 99) -> list[str]:
    rng = random.Random(seed)
    return [_fill(rng.choice(_QUERIES), rng) for _ in range(count)]


# --- process measurements ---------------------------------------------------------------------


def rss_mib() -> dict[str, float]:
    """Current and peak resident set size of this process (Linux /proc)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss_mib" if line.startswith("VmRSS") else "peak_rss_mib"
                out[key] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        import resource

        out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# --- no network ---------------------------------------------------------------------------


NETWORK_ATTEMPTS: list[str] = []
_guard_lock = threading.Lock()


def _loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = str(address[0]) if address else ""
    return host in ("localhost", "::1", "") or host.startswith("127.") or host == "0.0.0.0"


def install_network_guard() -> None:
    """Refuse (and record) every connection to a non-loopback address from Python code.

    run.sh also runs the measurements in a network namespace that has only a loopback device,
    where it can; this guard is what shows an attempt in the results.
    """
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def note(what: str) -> None:
        with _guard_lock:
            if len(NETWORK_ATTEMPTS) < 100:
                NETWORK_ATTEMPTS.append(what)

    def connect(self: socket.socket, address: Any) -> Any:
        if not _loopback(address):
            note(f"connect {address!r}")
            raise OSError(101, f"network blocked by the benchmark: {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not _loopback(address):
            note(f"connect_ex {address!r}")
            return 101
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost", "::1", "None") and not name.startswith("127."):
            note(f"resolve {name}")
            raise socket.gaierror(
                socket.EAI_NONAME, f"name lookup blocked by the benchmark: {name}"
            )
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


OFFLINE_ENV = {
    "MEM0_TELEMETRY": "False",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OPENAI_API_KEY": "unused-no-llm-is-called",
}


def set_offline_env() -> None:
    for k, v in OFFLINE_ENV.items():
        os.environ[k] = v
