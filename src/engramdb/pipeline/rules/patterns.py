"""The predicate table: what follows a subject, and which claim it makes.

Each :class:`Predicate` is tried, in order, at the start of the words after a subject and its
auxiliaries ("I have just | moved to Porto yesterday"). The first whose regex matches and whose
value check accepts the tail wins, so specific rules ("quit my job at") come before general ones
("quit <hobby>").

Groups a pattern may set: ``v`` the value's tail; ``past`` a simple-past verb form ("lived");
``ing`` a progressive one ("moving"), which for a change means a plan ("I'm moving to Berlin").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import lexicon as lex
from . import values as val
from .clauses import NAME

#: Wording of (holds, stopped, used to) for each attribute: {s} subject, {v} value, {a} "a"/"an".


def _regular(present: str, base: str) -> tuple[str, str, str]:
    """("lives in {v}", "live in {v}") -> holds, "no longer ...", "used to ..." wordings."""
    return "{s} " + present, "{s} no longer " + present, "{s} used to " + base


TEXTS: dict[str, tuple[str, str, str]] = {
    "lives_in": _regular("lives in {v}", "live in {v}"),
    "hometown": ("{s} is from {v}", "{s} is not from {v}", "{s} is from {v}"),
    "works_at": _regular("works at {v}", "work at {v}"),
    "job_title": _regular("works as {a} {v}", "work as {a} {v}"),
    "studies_at": _regular("studies at {v}", "study at {v}"),
    "studies": _regular("studies {v}", "study {v}"),
    "relationship_status": _regular("is {v}", "be {v}"),
    "car": _regular("drives {a} {v}", "drive {a} {v}"),
    "phone": _regular("has {a} {v}", "have {a} {v}"),
    "owns": _regular("owns {a} {v}", "own {a} {v}"),
    "pet": _regular("has a pet {v}", "have a pet {v}"),
    "diet": _regular("follows a {v} diet", "follow a {v} diet"),
    "allergy": _regular("is allergic to {v}", "be allergic to {v}"),
    "health": _regular("has {v}", "have {v}"),
    "habit": ("{s} has a {v} habit", "{s} quit {v}", "{s} used to have a {v} habit"),
    "hobby": ("{s}'s hobbies include {v}", "{s} gave up {v}", "{s}'s hobbies used to include {v}"),
    "likes": _regular("likes {v}", "like {v}"),
    "dislikes": _regular("dislikes {v}", "dislike {v}"),
    "partner": ("{v} is {s}'s partner", "{s} and {v} broke up", "{v} was {s}'s partner"),
    "spouse": ("{v} is {s}'s spouse", "{s} and {v} are no longer married", "{v} was {s}'s spouse"),
    "age": ("{s} is {v} years old", "{s} is not {v} years old", "{s} was {v} years old"),
    "nationality": _regular("is {v}", "be {v}"),
    "name": ("{s}'s name is {v}", "{s}'s name is not {v}", "{s}'s name used to be {v}"),
    "birth_year": ("{s} was born in {v}", "{s} was not born in {v}", "{s} was born in {v}"),
}
#: What an "ends" claim with no value says ("I quit my job").
ENDS_EMPTY: dict[str, str] = {
    "works_at": "{s} left their job",
    "partner": "{s} broke up with their partner",
    "spouse": "{s} is no longer married",
    "car": "{s} no longer has a car",
}


@dataclass(frozen=True)
class Predicate:
    """One way of saying something about a subject."""

    pattern: re.Pattern[str]
    attribute: str
    check: val.Check
    kind: str = "fact"
    #: "state": holds (from when it was said, or a date given); "start": became true (the
    #: date given is the change); "end": stopped being true.
    change: str = "state"
    entity: str | None = None
    relation: str | None = None
    #: True: only after a form of "be" ("I'm allergic to"); False: never after one.
    be: bool | None = None
    #: What a negation does: "end" the value, turn it to the "opposite" attribute, or "drop".
    negation: str = "end"
    #: True: the rule only reads a negated clause ("I don't eat meat"), as a plain state.
    needs_negation: bool = False
    #: What a simple past ("I lived in") means: "past" (true before, not now), or "event"
    #: (something done, kept only when the clause dates it).
    simple_past: str = "past"
    value: str | None = None
    #: Base-form wording for a plan ("move to {v}"); None: a future statement is dropped.
    plan: str | None = None
    texts: tuple[str, str, str] | None = None
    #: Also end this attribute's current value ("I retired" ends works_at).
    also_ends: str | None = None
    value_optional: bool = False
    #: False: a date in the clause is part of the value, not when it became true ("born in 1990").
    dated: bool = True

    def wording(self) -> tuple[str, str, str]:
        """The (holds, stopped, used to) templates of this rule."""
        return self.texts or TEXTS[self.attribute]


def _p(regex: str, attribute: str, check: val.Check, **kw: object) -> Predicate:
    return Predicate(re.compile(regex, re.I), attribute, check, **kw)  # type: ignore[arg-type]


def _verb(*forms: str, past: str = "", ing: str = "") -> str:
    """An alternation of verb forms with the simple past and progressive marked."""
    parts = ["|".join(forms)]
    if past:
        parts.append(f"(?P<past>{past})")
    if ing:
        parts.append(f"(?P<ing>{ing})")
    return "(?:" + "|".join(parts) + r")\b"


_V = r"\s+(?P<v>.+)"
_DIET = "|".join(sorted(lex.DIETS, key=len, reverse=True)).replace("-", "[- ]")
_PETS = "|".join(sorted(lex.PETS, key=len, reverse=True))
_COUNT = r"(?:(?:a|an|one|two|three|four|\d+|new|little|baby|rescue|second)\s+)*"
_JOB_OWNER = r"(?:my|his|her|their|the|our)\s+(?:old\s+|current\s+|day\s+)?(?:job|position|role)"
_NAMED = rf"(?P<v>{NAME})(?!\w)"
_SPORTS = "|".join(sorted(lex.ACTIVITIES | {"varsity", "school", "college", "debate", "sports",
                                           "track", "swim", "relay", "chess"}))  # fmt: skip
_PLACE = r"(?:flat|apartment|place|house|home|condo|studio|room|cottage|townhouse)"
_HOME_IN = (
    r"\s+(?:on|for)\s+(?:a|an|the|our|my)?\s*(?:new\s+)?(?:[\w-]+\s+)?" + _PLACE + r"\s+in" + _V
)
_MOVE = _verb(
    "move", "moves", "relocate", "relocates", past="moved|relocated", ing="moving|relocating"
)

PREDICATES: tuple[Predicate, ...] = (
    # -- residence
    _p(
        _verb("live", "lives", "reside", "resides", past="lived|resided", ing="living|residing")
        + r"\s+in"
        + _V,
        "lives_in",
        val.proper,
        entity="place",
        relation="home",
    ),
    _p(
        _MOVE + r"\s+(?:out\s+of|away\s+from)" + _V,
        "lives_in",
        val.proper,
        change="end",
        entity="place",
        relation="home",
    ),
    _p(
        _MOVE + r"(?:\s+(?:back|over|out|away|abroad))?\s+to" + _V,
        "lives_in",
        val.proper,
        change="start",
        entity="place",
        relation="home",
        plan="move to {v}",
    ),
    _p(
        r"(?:settled|settling)\s+(?:down\s+)?in\s+(?P<v>(?-i:[A-Z]).+)",
        "lives_in",
        val.proper,
        change="start",
        entity="place",
        relation="home",
    ),
    _p(
        r"(?:signed|(?P<ing>signing))\s+(?:a|the|our|my)\s+(?:new\s+)?(?:lease|rental\s+agreement)"
        + _HOME_IN,
        "lives_in",
        val.proper,
        change="start",
        entity="place",
        relation="home",
        plan="move to {v}",
    ),
    _p(
        r"(?:moved|(?P<ing>moving))\s+into\s+(?:a|an|the|our|my)\s+(?:new\s+)?(?:[\w-]+\s+)?"
        + _PLACE
        + r"\s+in"
        + _V,
        "lives_in",
        val.proper,
        change="start",
        entity="place",
        relation="home",
        plan="move to {v}",
    ),
    _p(
        r"in\s+(?P<v>(?-i:[A-Z])[^,]*?)\s+(?:now|these\s+days|nowadays|for\s+good|permanently)"
        r"\s*$",
        "lives_in",
        val.proper,
        be=True,
        entity="place",
        relation="home",
        negation="drop",
    ),
    _p(
        r"based\s+(?:in|out\s+of)" + _V,
        "lives_in",
        val.proper,
        be=True,
        entity="place",
        relation="home",
    ),
    _p(
        r"born\s+in\s+(?P<v>(?:19|20)\d\d)\b",
        "birth_year",
        val.head,
        be=True,
        negation="drop",
        dated=False,
        simple_past="keep",
    ),
    _p(
        r"(?:from|(?:grew|grow)\s+up\s+in|born\s+in|(?:come|comes|came)\s+from)" + _V,
        "hometown",
        val.proper,
        dated=False,
        simple_past="keep",
        entity="place",
        relation="hometown",
        negation="drop",
    ),
    # -- work
    _p(
        _verb("work", "works", past="worked", ing="working") + r"\s+as" + _V,
        "job_title",
        val.phrase,
    ),
    _p(
        _verb("work", "works", past="worked", ing="working") + r"\s+(?:at|for)" + _V,
        "works_at",
        val.organisation,
        entity="organization",
        relation="employer",
    ),
    _p(
        r"(?:got|get|gotten|landed|accepted|took|started|start|starting|began)\s+(?:a\s+|an\s+|"
        r"the\s+|my\s+)?(?:new\s+)?(?:job|position|role|internship|gig)(?:\s+as\s+[\w\s]+?)?\s+"
        r"(?:at|with)" + _V,
        "works_at",
        val.organisation,
        change="start",
        entity="organization",
        relation="employer",
    ),
    _p(
        r"(?:hired|recruited)\s+(?:by|at)" + _V,
        "works_at",
        val.organisation,
        change="start",
        entity="organization",
        relation="employer",
    ),
    _p(
        r"employed\s+(?:by|at)" + _V,
        "works_at",
        val.organisation,
        entity="organization",
        relation="employer",
    ),
    _p(
        _verb("start", "starts", "begin", past="started|began", ing="starting")
        + r"\s+(?:working|work)\s+(?:at|for)"
        + _V,
        "works_at",
        val.organisation,
        change="start",
        entity="organization",
        relation="employer",
        plan="start working at {v}",
    ),
    _p(
        _verb("start", "starts", "begin", past="started|began", ing="starting")
        + r"\s+(?:at|with)\s+(?P<v>(?-i:[A-Z]).+)",
        "works_at",
        val.organisation,
        change="start",
        entity="organization",
        relation="employer",
        plan="start at {v}",
    ),
    _p(
        r"at\s+(?P<v>(?-i:[A-Z]).+?)\s+(?:for\s+(?:over\s+|almost\s+|nearly\s+|about\s+)?"
        r"(?:\w+|a|a\s+few)\s+(?:years?|months?|decades?)|since)\b",
        "works_at",
        val.organisation,
        be=True,
        entity="organization",
        relation="employer",
        negation="drop",
    ),
    _p(
        r"(?:(?:work|works|worked|working)\s+)?(?:on|in|part\s+of)\s+(?:the|a|an)\s+"
        rf"(?!(?:[\w&-]+\s+){{0,3}}?(?:{_SPORTS})\b)(?:[\w&-]+\s+){{0,3}}?"
        r"(?:team|department|dept)\s+(?:at|for|with|of)\s+(?P<v>(?-i:[A-Z]).+)",
        "works_at",
        val.organisation,
        entity="organization",
        relation="employer",
    ),
    _p(
        r"(?:a|an)\s+(?P<v>(?-i:[A-Z])[\w&.-]*(?:\s+(?-i:[A-Z])[\w&.-]*)?)\s+"
        r"(?:employee|staffer|staff\s+member|intern|contractor)\b",
        "works_at",
        val.organisation,
        be=True,
        entity="organization",
        relation="employer",
    ),
    _p(
        _verb("join", "joins", past="joined", ing="joining") + r"\s+(?P<v>(?-i:[A-Z]).+)",
        "works_at",
        val.organisation,
        change="start",
        entity="organization",
        relation="employer",
        plan="join {v}",
    ),
    _p(
        r"(?:left|quit|leaving|quitting|resigned\s+from)\s+"
        + _JOB_OWNER
        + r"(?:\s+(?:at|with)"
        + _V
        + ")?",
        "works_at",
        val.organisation,
        change="end",
        entity="organization",
        relation="employer",
        value_optional=True,
    ),
    _p(
        r"(?:resigned\s+from|quit)\s+(?P<v>(?-i:[A-Z]).+)",
        "works_at",
        val.organisation,
        change="end",
        entity="organization",
        relation="employer",
    ),
    _p(
        r"(?:got\s+)?(?:laid\s+off|fired|let\s+go)(?:\s+from" + _V + ")?",
        "works_at",
        val.organisation,
        change="end",
        entity="organization",
        relation="employer",
        value_optional=True,
        negation="drop",
    ),
    _p(
        r"(?:retired|retiring)\b",
        "job_title",
        val.head,
        change="start",
        value="retired",
        texts=("{s} is retired", "{s} is no longer retired", "{s} was retired"),
        also_ends="works_at",
    ),
    _p(r"(?:got\s+)?promoted\s+to" + _V, "job_title", val.phrase, change="start"),
    _p(r"(?:became|become|becoming)\s+(?:a|an)" + _V, "job_title", val.occupation, change="start"),
    _p(
        r"(?:a\s+|an\s+)?(?:\w+\s+)?student\s+at" + _V,
        "studies_at",
        val.organisation,
        be=True,
        entity="organization",
        relation="school",
    ),
    _p(r"(?:a|an)" + _V, "job_title", val.occupation, be=True),
    # -- study
    _p(
        _verb("study", "studies", past="studied", ing="studying") + r"\s+at" + _V,
        "studies_at",
        val.organisation,
        entity="organization",
        relation="school",
    ),
    _p(
        r"(?:enrolled|enrolling|enroll|enrol|accepted|admitted)\s+(?:at|in|to|into)"
        r"\s+(?P<v>(?-i:[A-Z]).+)",
        "studies_at",
        val.organisation,
        change="start",
        entity="organization",
        relation="school",
    ),
    _p(
        r"graduated\s+from" + _V,
        "studies_at",
        val.organisation,
        change="end",
        entity="organization",
        relation="school",
        texts=("{s} studies at {v}", "{s} graduated from {v}", "{s} used to study at {v}"),
    ),
    _p(
        _verb("study", "studies", past="studied", ing="studying") + r"(?!\s+(?:hard|for|a)\b)" + _V,
        "studies",
        val.phrase,
    ),
    # -- relationship status
    _p(
        r"(?:got\s+|(?P<ing>getting)\s+)?(?P<v>married|engaged|divorced|single|widowed|separated)"
        rf"(?:\s+to\s+(?P<p>{NAME}))?\b",
        "relationship_status",
        val.head,
        change="start",
        plan="get {v}",
    ),
    _p(
        r"(?:broke|broken|breaking)\s+up(?:\s+with\s+" + _NAMED + ")?",
        "partner",
        val.name,
        change="end",
        value_optional=True,
        entity="person",
        relation="partner",
        negation="drop",
    ),
    _p(
        r"(?:dating|seeing)\s+" + _NAMED,
        "partner",
        val.name,
        be=True,
        entity="person",
        relation="partner",
        kind="relationship",
        texts=("{v} is {s}'s partner", "{v} is no longer {s}'s partner", "{v} was {s}'s partner"),
    ),
    _p(
        r"(?:started|starting|began)\s+(?:dating|seeing|going\s+out\s+with)\s+" + _NAMED,
        "partner",
        val.name,
        change="start",
        entity="person",
        relation="partner",
        kind="relationship",
        texts=("{v} is {s}'s partner", "{v} is no longer {s}'s partner", "{v} was {s}'s partner"),
    ),
    _p(
        r"(?:dumped|split\s+(?:up\s+)?(?:with|from)|separated\s+from)\s+" + _NAMED,
        "partner",
        val.name,
        change="end",
        entity="person",
        relation="partner",
        negation="drop",
    ),
    # -- possessions
    _p(
        _verb("drive", "drives", past="drove", ing="driving") + _V,
        "car",
        val.car,
        entity="thing",
        relation="car",
    ),
    _p(
        r"(?:bought|buy|buying|got|get|getting|purchased|leased|switched\s+to|own|owns|"
        r"have|has|(?P<past>had))(?:\s+myself)?(?:\s+(?:a|an|the))?(?:\s+(?:new|used|"
        r"second-hand|brand\s+new))?" + _V,
        "car",
        val.car,
        change="start",
        entity="thing",
        relation="car",
        plan="buy {a} {v}",
    ),
    _p(
        r"(?:bought|buy|buying|got|get|getting|purchased|switched\s+to|own|owns|have|has|"
        r"(?P<past>had))(?:\s+myself)?(?:\s+(?:a|an|the))?(?:\s+(?:new|used))?" + _V,
        "phone",
        val.phone,
        change="start",
        entity="thing",
        relation="phone",
    ),
    _p(
        r"(?:bought|purchased)(?:\s+(?:a|an|our|my))?(?:\s+(?:first|new))?" + _V,
        "owns",
        val.possession,
        change="start",
        entity="thing",
    ),
    _p(
        r"(?:sold|got\s+rid\s+of|traded\s+in|scrapped|totall?ed|wrecked)\s+(?:my|our|the)\s+"
        r"(?:old\s+)?(?P<v>.+)",
        "car",
        val.car,
        change="end",
        entity="thing",
        relation="car",
    ),
    _p(
        r"(?:sold|got\s+rid\s+of|traded\s+in|scrapped|totall?ed|wrecked)\s+(?:my|our)\s+"
        r"(?:old\s+)?car\b",
        "car",
        val.head,
        change="end",
        value_optional=True,
    ),
    # -- pets
    _p(
        r"(?:have|has|got|adopted|adopt|rescued|own|fostered|(?:brought|took)\s+home)\s+"
        + _COUNT
        + rf"(?P<k>{_PETS})s?\b"
        rf"(?:,?\s+(?:named|called)\s+{_NAMED})?",
        "pet",
        val.name,
        change="start",
        entity="pet",
        value_optional=True,
    ),
    _p(
        r"(?:a|an)\s+(?:proud\s+|new\s+|first[- ]time\s+|happy\s+)?" + rf"(?P<k>{_PETS})\s+"
        r"(?:owner|mom|mum|dad|parent)\b",
        "pet",
        val.name,
        be=True,
        value_optional=True,
        negation="drop",
    ),
    # -- diet
    _p(
        r"(?:(?:on|doing|following|follow|follows)\s+(?:a\s+|the\s+)?)?(?:strict\s+|strictly\s+)?"
        rf"(?P<v>{_DIET})(?:\s+diet)?\b",
        "diet",
        val.diet,
        be=None,
    ),
    _p(
        rf"(?:went|gone|going|turned|became|become|switched\s+to)\s+(?P<v>{_DIET})\b",
        "diet",
        val.diet,
        change="start",
    ),
    _p(
        r"(?:stopped|quit|gave\s+up|give\s+up|cut\s+out)\s+eating\s+(?:red\s+)?meat\b",
        "diet",
        val.head,
        change="start",
        value="vegetarian",
    ),
    _p(
        r"(?:stopped|quit|gave\s+up)\s+eating\s+(?:animal\s+products|meat\s+and\s+dairy)\b",
        "diet",
        val.head,
        change="start",
        value="vegan",
    ),
    _p(r"eat\s+(?:any\s+)?meat\b", "diet", val.head, value="vegetarian", needs_negation=True),
    _p(
        rf"(?:quit|stopped\s+being|gave\s+up\s+being|gave\s+up)\s+(?P<v>{_DIET})\b",
        "diet",
        val.diet,
        change="end",
    ),
    # -- health
    _p(
        r"(?:severely\s+|very\s+|really\s+|deathly\s+|mildly\s+|super\s+)?allergic\s+to" + _V,
        "allergy",
        val.phrase,
        be=True,
    ),
    _p(
        r"(?:have|has|got)\s+(?:a\s+|an\s+|bad\s+|severe\s+|mild\s+)?(?P<v>[\w-]+(?:\s+[\w-]+)?)"
        r"\s+allerg(?:y|ies)\b",
        "allergy",
        val.phrase,
    ),
    _p(
        r"(?P<v>lactose|gluten)\s+intolerant\b",
        "allergy",
        val.phrase,
        be=True,
        texts=(
            "{s} is {v} intolerant",
            "{s} is no longer {v} intolerant",
            "{s} used to be {v} intolerant",
        ),
    ),
    _p(
        r"diagnosed\s+with" + _V,
        "health",
        val.phrase,
        change="start",
        texts=("{s} was diagnosed with {v}", "{s} no longer has {v}", "{s} used to have {v}"),
    ),
    _p(
        r"(?:have|has|had|suffer\s+from|suffers\s+from|struggle\s+with|struggles\s+with)" + _V,
        "health",
        val.condition,
    ),
    _p(
        r"(?P<v>\w+)\b",
        "health",
        val.health_state,
        be=True,
        texts=("{s} is {v}", "{s} is no longer {v}", "{s} used to be {v}"),
    ),
    _p(
        r"(?:quit|stopped|gave\s+up|give\s+up|quitting)\s+(?P<v>smoking|vaping|drinking|"
        r"alcohol|caffeine|coffee|sugar|social\s+media)\b",
        "habit",
        val.head,
        change="end",
    ),
    _p(r"(?P<v>smoke|vape)s?\b", "habit", val.head, be=False),
    # -- hobbies
    _p(
        _verb("play", "plays", past="played", ing="playing")
        + r"(?:\s+(?:the|some|a\s+lot\s+of|lots\s+of))?"
        + _V,
        "hobby",
        val.activity,
        simple_past="event",
    ),
    _p(
        _verb("take", "takes", past="took", ing="taking") + r"\s+up" + _V,
        "hobby",
        val.phrase,
        change="start",
        plan="take up {v}",
    ),
    _p(
        r"(?:started|starting|began|begun|start)\s+(?:doing\s+|practicing\s+|practising\s+)?"
        r"(?P<v>(?:learning\s+)?.+)",
        "hobby",
        val.activity,
        change="start",
    ),
    _p(r"(?:started|began|begun)\s+(?P<v>learning\s+.+)", "hobby", val.phrase, change="start"),
    _p(r"(?:go|goes|(?P<past>went))\s+(?P<v>\w+ing)\b", "hobby", val.activity, simple_past="event"),
    _p(
        _verb(
            "do",
            "does",
            "practice",
            "practise",
            "practices",
            past="did|practiced",
            ing="doing|practicing|practising",
        )
        + _V,
        "hobby",
        val.activity,
        simple_past="event",
    ),
    _p(
        r"(?:gave\s+up|give\s+up|giving\s+up|quit|stopped|stop)" + _V,
        "hobby",
        val.activity,
        change="end",
    ),
    _p(
        r"(?P<v>\w+ing)\b(?:\s+(?:a\s+lot|lately|regularly|again|every\s+\w+|more|a\s+bit))*\s*$",
        "hobby",
        val.activity,
        be=True,
    ),
    # -- likes and dislikes
    _p(
        r"(?:a\s+(?:big\s+|huge\s+|massive\s+)?fan\s+of|into|obsessed\s+with|addicted\s+to)" + _V,
        "likes",
        val.liked,
        kind="preference",
        be=True,
        negation="opposite",
    ),
    _p(
        r"(?:a|an)\s+(?:big\s+|huge\s+|massive\s+|die-?hard\s+|total\s+|real\s+)?"
        r"(?!(?:big|huge|massive|total|real|die-?hard)\s)(?P<v>[\w'-]+(?:\s+[\w'-]+)?)\s+"
        r"(?:fan|addict|fanatic|junkie|buff|nerd|geek)\b",
        "likes",
        val.liked,
        kind="preference",
        be=True,
        negation="opposite",
    ),
    _p(
        r"(?:(?:hooked\s+on|crazy\s+about|mad\s+about|nuts\s+about))" + _V,
        "likes",
        val.liked,
        kind="preference",
        be=True,
        negation="opposite",
    ),
    _p(
        r"(?:gone|went|go|going)\s+off\s+(?!(?:to|on|with|at|for|into|the\s+(?:deep|rails|grid))\b)"
        + r"(?P<v>.+)",
        "likes",
        val.liked,
        kind="preference",
        change="end",
        negation="drop",
    ),
    _p(
        r"(?:(?:fallen|fell)\s+out\s+of\s+love\s+with|lost\s+(?:all\s+)?interest\s+in)" + _V,
        "likes",
        val.liked,
        kind="preference",
        change="end",
        negation="drop",
    ),
    _p(
        r"(?:love|loves|adore|adores|like|likes|enjoy|enjoys|prefer|prefers|dig)\b" + _V,
        "likes",
        val.liked,
        kind="preference",
        negation="opposite",
    ),
    _p(
        r"(?:hate|hates|dislike|dislikes|detest|detests|loathe|loathes|cannot\s+stand|"
        r"can't\s+stand|cant\s+stand|can\s+not\s+stand|despise|despises)\b" + _V,
        "dislikes",
        val.liked,
        kind="preference",
        negation="drop",
    ),
    # -- who the subject is
    _p(r"(?P<v>\d{1,3}\b.*)", "age", val.age, be=True, negation="drop"),
    _p(r"turned\s+(?P<v>\d{1,3}\b.*)", "age", val.age, change="start", negation="drop"),
    _p(r"(?P<v>\w+)\s*$", "nationality", val.nationality, be=True, negation="drop"),
    _p(rf"(?P<v>{NAME})\s*$", "name", val.name, be=True, negation="drop"),
)
