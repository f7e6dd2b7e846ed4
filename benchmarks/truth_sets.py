"""Scripted histories in which one attribute of a person changes over time (seeded, no model).

Each history is one user over 3 to 6 sessions months apart. One attribute (city, employer,
car, ...) is stated early and changes once or twice. The statements are phrased many ways,
some only a reader would catch ("just signed the lease on a flat in Porto"). The old value is
deliberately talked about more than the new one (nostalgia, old habits), other people's values
and the assistant's echoes are mixed in, and most turns are small talk. Questions ask for the
value now and, with ``as_of``, for the value at a time when an older one held.

Used by ``benchmarks/current_truth.py``; nothing here reads the dev sets.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class Attribute:
    """How one kind of fact is talked about. ``{v}`` is a value, ``{old}`` the previous one,
    ``{o}`` someone else's; ``{name}`` in questions is the user's name."""

    key: str
    values: tuple[str, ...]
    initial: tuple[str, ...]
    change: tuple[str, ...]
    #: the value that holds, said in passing (before a change it is the current one)
    passing: tuple[str, ...]
    #: a previous value, after it stopped being true
    nostalgia: tuple[str, ...]
    others: tuple[str, ...]
    echo: tuple[str, ...]
    ask_now: tuple[str, ...]
    ask_then: tuple[str, ...]


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        key="city",
        values=(
            "Lisbon",
            "Porto",
            "Madrid",
            "Berlin",
            "Denver",
            "Austin",
            "Seattle",
            "Toronto",
            "Dublin",
            "Lyon",
            "Osaka",
            "Melbourne",
        ),
        initial=(
            "I live in {v}, have done for a few years.",
            "Our flat in {v} is tiny but I love the neighbourhood.",
            "I'm based in {v}.",
            "Home for me is {v} these days.",
            "Greetings from rainy {v}, where I've been renting for ages.",
            "Since I'm in {v}, any tips for weekend trips nearby?",
            "Walking to work through {v} every morning is the best part of my day.",
        ),
        change=(
            "I moved to {v} yesterday!",
            "We finally relocated to {v} last week.",
            "Just signed the lease on a flat in {v}.",
            "I'm living in {v} now.",
            "The move to {v} is done, boxes everywhere.",
            "I no longer live in {old}, I'm in {v} now.",
            "First night sleeping in the new place in {v}, feels strange.",
            "Packed up the apartment in {old} and drove to {v}; this is home now.",
        ),
        passing=(
            "The traffic in {v} was awful this morning.",
            "There's a food festival in {v} this weekend.",
            "The weather in {v} has been grey all week.",
            "Rent in {v} keeps going up.",
        ),
        nostalgia=(
            "I miss the pastries in {old}.",
            "Honestly {old} had better coffee.",
            "Saw photos from {old} today and got a bit homesick.",
            "My old running route in {old} was so much prettier.",
            "Friends in {old} keep asking when I'll visit.",
            "I still catch myself checking the {old} weather app.",
        ),
        others=(
            "My sister lives in {o}.",
            "My best friend just moved to {o}.",
            "My parents are still in {o}.",
            "A colleague of mine is relocating to {o} next month.",
        ),
        echo=(
            "{v} sounds lovely! How are you settling in?",
            "Nice, {v} has a great food scene.",
            "Good to know you're in {v}.",
        ),
        ask_now=(
            "Where does {name} live now?",
            "Where does {name} live?",
            "What city is {name} based in these days?",
            "Which city does {name} currently call home?",
        ),
        ask_then=(
            "Where does {name} live?",
            "Where did {name} live at that time?",
            "What city was {name} based in?",
        ),
    ),
    Attribute(
        key="employer",
        values=(
            "Northwind",
            "Globex",
            "Initech",
            "Hooli",
            "Contoso",
            "Wayfarer",
            "Stellaris",
            "Brightline",
            "Vantara",
            "Kestrel",
        ),
        initial=(
            "I work at {v}.",
            "I've been at {v} for three years now.",
            "My job at {v} keeps me busy.",
            "Big release at {v} this week, wish me luck.",
            "{v} pays my bills, software mostly.",
            "The office at {v} has a great canteen.",
            "I'm on the platform team over at {v}.",
        ),
        change=(
            "I started a new job at {v} on Monday!",
            "I left {old} and joined {v}.",
            "Today was my first day at {v}.",
            "Accepted the offer from {v}, so I'm working there now.",
            "Handed in my badge at {old}; {v} onboarding starts tomorrow.",
            "I'm a {v} employee now, still getting used to it.",
            "Signed the contract with {v} and said goodbye to everyone at {old}.",
        ),
        passing=(
            "Long meetings at {v} again today.",
            "The {v} holiday party is next Friday.",
            "My manager at {v} wants a report by Thursday.",
            "{v} finally fixed the coffee machine.",
        ),
        nostalgia=(
            "I miss my old team at {old}.",
            "Lunch at {old} was way better than here.",
            "Had drinks with some people from {old} last night.",
            "The {old} office had such a nice view.",
            "Someone from {old} texted me about the old project.",
        ),
        others=(
            "My brother works at {o}.",
            "My roommate just got an offer from {o}.",
            "A friend of mine interviews at {o} next week.",
            "My dad retired from {o} last year.",
        ),
        echo=(
            "Congrats on {v}! What's the team like?",
            "{v} sounds like a good place to be.",
            "How are things going at {v}?",
        ),
        ask_now=(
            "Where does {name} work now?",
            "Who is {name}'s employer?",
            "Which company does {name} work for these days?",
            "Where is {name} currently employed?",
        ),
        ask_then=(
            "Where does {name} work?",
            "Which company did {name} work for at that time?",
            "Who was {name}'s employer?",
        ),
    ),
    Attribute(
        key="job title",
        values=(
            "data analyst",
            "product manager",
            "UX designer",
            "staff engineer",
            "paralegal",
            "accountant",
            "pharmacist",
            "copywriter",
            "site reliability engineer",
        ),
        initial=(
            "I'm a {v}.",
            "I work as a {v}.",
            "Being a {v} is more stressful than people think.",
            "My title is {v}, for what it's worth.",
            "As a {v} I spend most of the day in spreadsheets and meetings.",
            "I've been a {v} since I graduated.",
        ),
        change=(
            "I got promoted to {v}!",
            "I switched careers and I'm a {v} now.",
            "New role starting this month: {v}.",
            "They changed my title to {v}.",
            "No more {old} work for me, I'm officially a {v}.",
            "Passed the certification, so I'm working as a {v} from now on.",
            "My business cards finally say {v}.",
        ),
        passing=(
            "Typical {v} day: too many emails.",
            "Went to a meetup for {v} folks.",
            "Reading a book about being a better {v}.",
        ),
        nostalgia=(
            "Part of me misses being a {old}.",
            "Back when I was a {old} I had more free evenings.",
            "I still use tricks I learned as a {old}.",
            "Sometimes I still introduce myself as a {old} by mistake.",
            "A recruiter messaged me about {old} roles again.",
        ),
        others=(
            "My cousin is a {o}.",
            "My partner's friend works as a {o}.",
            "My neighbour is training to be a {o}.",
        ),
        echo=(
            "Being a {v} must keep you on your toes.",
            "Congratulations on the {v} role!",
            "What do you enjoy most as a {v}?",
        ),
        ask_now=(
            "What is {name}'s job title now?",
            "What does {name} do for a living?",
            "What's {name}'s current role?",
            "What position does {name} hold these days?",
        ),
        ask_then=(
            "What is {name}'s job title?",
            "What did {name} do for a living back then?",
            "What was {name}'s role?",
        ),
    ),
    Attribute(
        key="car",
        values=(
            "Corolla",
            "Civic",
            "Prius",
            "Outback",
            "Fiesta",
            "Clio",
            "Mustang",
            "Tiguan",
            "Cayenne",
            "Leaf",
        ),
        initial=(
            "I drive a {v}.",
            "My {v} needs new tyres.",
            "Took the {v} up the coast at the weekend.",
            "The {v} has been reliable for years.",
            "I park my {v} on the street, which is a pain.",
            "Road trips in my old {v} are my favourite thing.",
        ),
        change=(
            "I sold the {old} and bought a {v}.",
            "Picked up my new {v} from the dealer today.",
            "I traded in my car for a {v}.",
            "We're a {v} household now.",
            "The {old} is gone, the {v} is parked outside.",
            "Finally got the keys to a {v}!",
            "Said goodbye to the {old} this morning; the new car is a {v}.",
        ),
        passing=(
            "Washed the {v} today.",
            "The {v} made a weird noise on the highway.",
            "Filled up the {v}, prices are crazy.",
        ),
        nostalgia=(
            "I kind of miss the {old}.",
            "The {old} had so much more boot space.",
            "Saw a {old} like mine on the street and felt sad.",
            "Road trips in the {old} were the best.",
            "The guy who bought my {old} sent me a photo of it.",
        ),
        others=(
            "My dad drives a {o}.",
            "My neighbour just bought a {o}.",
            "My sister keeps talking about getting a {o}.",
        ),
        echo=(
            "A {v} is a solid choice.",
            "Enjoy the {v}!",
            "How does the {v} handle?",
        ),
        ask_now=(
            "What car does {name} drive now?",
            "What car does {name} have?",
            "Which car is {name} driving these days?",
            "What is {name}'s current car?",
        ),
        ask_then=(
            "What car does {name} drive?",
            "What car did {name} have at that time?",
            "Which car was {name} driving?",
        ),
    ),
    Attribute(
        key="diet",
        values=("vegan", "vegetarian", "pescatarian", "keto", "paleo", "flexitarian"),
        initial=(
            "I'm {v}.",
            "I've been {v} for about five years.",
            "Being {v} makes eating out tricky sometimes.",
            "Any good {v} recipes? That's how I eat.",
            "I follow a {v} diet.",
            "My fridge is strictly {v}.",
        ),
        change=(
            "I've gone {v}.",
            "I switched from {old} to {v}.",
            "I'm not {old} anymore, I'm {v} now.",
            "Doctor suggested I try {v} and I'm sticking with it.",
            "One month {v} and feeling great.",
            "Started eating {v} at the start of the month, no going back.",
            "Cleared the cupboards out, the kitchen is {v} now.",
        ),
        passing=(
            "Found a great {v} cafe near work.",
            "Meal-prepped {v} lunches for the week.",
            "Bought a {v} cookbook.",
        ),
        nostalgia=(
            "My old {old} cookbook is still on the shelf.",
            "I miss some of my {old} recipes.",
            "Friends still think I'm {old}.",
            "Walked past my favourite {old} restaurant and got nostalgic.",
            "Half my pantry is still {old} stuff.",
        ),
        others=(
            "My mum is {o}.",
            "My flatmate went {o} last month.",
            "My brother tried going {o} but gave up.",
        ),
        echo=(
            "Eating {v} can be really good for you.",
            "I can suggest some {v} meals.",
            "How is the {v} diet going?",
        ),
        ask_now=(
            "What diet does {name} follow now?",
            "What diet does {name} follow?",
            "How does {name} eat these days?",
            "What is {name}'s current diet?",
        ),
        ask_then=(
            "What diet does {name} follow?",
            "What diet did {name} follow at that time?",
            "How did {name} eat back then?",
        ),
    ),
    Attribute(
        key="partner",
        values=(
            "Daniel",
            "Priya",
            "Marcus",
            "Elena",
            "Jonas",
            "Aisha",
            "Tomasz",
            "Ingrid",
            "Rafael",
            "Keiko",
        ),
        initial=(
            "My partner {v} is cooking tonight.",
            "{v} and I have been together for two years.",
            "My boyfriend... well, my partner, {v}, says hi.",
            "Date night with {v} on Friday.",
            "{v} and I are planning a trip.",
            "Living with {v} has been great.",
        ),
        change=(
            "{old} and I broke up. I'm seeing {v} now.",
            "I've started dating {v}.",
            "Met someone: {v}. It's getting serious.",
            "{v} is my new partner.",
            "It's over with {old}; {v} and I are official.",
            "Introduced {v} to my parents as my partner last weekend.",
            "{v} moved in with me last week, we're really happy.",
        ),
        passing=(
            "{v} made pancakes this morning.",
            "Watching a movie with {v} tonight.",
            "{v} bought me flowers for no reason.",
        ),
        nostalgia=(
            "I ran into {old} at the supermarket.",
            "{old} still has my favourite jumper.",
            "I sometimes think about the trips I took with {old}.",
            "Mutual friends keep inviting {old} to things.",
            "Found an old photo of me and {old}.",
        ),
        others=(
            "My sister's husband {o} is visiting.",
            "My friend is dating someone called {o}.",
            "My coworker {o} is getting married.",
        ),
        echo=(
            "{v} sounds great!",
            "How did you and {v} meet?",
            "Say hi to {v} for me.",
        ),
        ask_now=(
            "Who is {name}'s partner now?",
            "Who is {name} dating?",
            "What's the name of {name}'s partner these days?",
            "Who is {name} in a relationship with?",
        ),
        ask_then=(
            "Who is {name}'s partner?",
            "Who was {name} dating at that time?",
            "What was the name of {name}'s partner?",
        ),
    ),
    Attribute(
        key="pet",
        values=(
            "beagle",
            "parrot",
            "corgi",
            "rabbit",
            "tortoise",
            "husky",
            "hamster",
            "ferret",
            "dachshund",
            "cockatiel",
        ),
        initial=(
            "I have a {v}.",
            "My {v} woke me up at five again.",
            "Took my {v} to the vet today.",
            "The {v} chewed my slippers.",
            "Coming home to my {v} is the best part of the day.",
            "Any tips for keeping a {v} entertained?",
        ),
        change=(
            "We adopted a {v}!",
            "My {old} passed away last month, and now we have a {v}.",
            "Say hello to the newest family member: a {v}.",
            "Rehomed the {old} with my aunt; got a {v} instead.",
            "The {v} we brought home on Saturday is settling in.",
            "I'm a {v} owner now.",
            "Picked up a {v} from the shelter, the flat feels alive again.",
        ),
        passing=(
            "The {v} is sleeping on my feet right now.",
            "Bought a new toy for the {v}.",
            "My {v} hates the vacuum.",
        ),
        nostalgia=(
            "I still miss my {old}.",
            "Found some of the {old}'s toys under the sofa.",
            "My phone is still full of {old} photos.",
            "The {old} used to sit by the window all day.",
            "Every time I see a {old} at the park I tear up.",
        ),
        others=(
            "My neighbour has a {o}.",
            "My niece wants a {o} for her birthday.",
            "My friend's {o} is really loud.",
        ),
        echo=(
            "A {v} is such a fun pet!",
            "How is the {v} doing?",
            "Aww, a {v}! Any name yet?",
        ),
        ask_now=(
            "What pet does {name} have now?",
            "What pet does {name} have?",
            "What animal lives with {name} these days?",
            "What is {name}'s current pet?",
        ),
        ask_then=(
            "What pet does {name} have?",
            "What pet did {name} have at that time?",
            "What animal lived with {name} back then?",
        ),
    ),
    Attribute(
        key="sport",
        values=(
            "climbing",
            "swimming",
            "rowing",
            "boxing",
            "yoga",
            "tennis",
            "pilates",
            "cycling",
            "fencing",
            "squash",
        ),
        initial=(
            "I do {v} three times a week.",
            "{v} keeps me sane.",
            "My {v} class was tough today.",
            "I've been into {v} for years.",
            "Signed up for a {v} competition.",
            "My weekends revolve around {v}.",
        ),
        change=(
            "I quit {old} and took up {v}.",
            "I'm doing {v} now instead.",
            "Joined a {v} club this month.",
            "Bought all the {v} gear, I'm hooked.",
            "Gave up on {old}; {v} is my thing now.",
            "My knee couldn't take {old} any more, so it's {v} from now on.",
            "Three weeks into {v} and already booked the next course.",
        ),
        passing=(
            "Sore from {v} yesterday.",
            "Watching {v} videos to improve my technique.",
            "My {v} coach says I'm improving.",
        ),
        nostalgia=(
            "I miss {old} sometimes.",
            "My {old} gear is gathering dust.",
            "Friends from {old} invited me to their session.",
            "Watched a {old} match and felt the itch.",
            "Still have my {old} membership card in my wallet.",
        ),
        others=(
            "My brother does {o}.",
            "My partner is into {o}.",
            "My coworker won a {o} tournament.",
        ),
        echo=(
            "{v} is a great workout!",
            "How long have you been doing {v}?",
            "Enjoy the {v}!",
        ),
        ask_now=(
            "What sport does {name} do now?",
            "What sport does {name} practise?",
            "How does {name} keep fit these days?",
            "What is {name}'s current sport?",
        ),
        ask_then=(
            "What sport does {name} do?",
            "What sport did {name} do at that time?",
            "How did {name} keep fit back then?",
        ),
    ),
    Attribute(
        key="favourite band",
        values=(
            "Radiohead",
            "Coldplay",
            "Arctic Monkeys",
            "Fleetwood Mac",
            "ABBA",
            "Daft Punk",
            "Portishead",
            "Tame Impala",
            "Blondie",
            "Massive Attack",
        ),
        initial=(
            "My favourite band is {v}.",
            "I've had {v} on repeat all week.",
            "Nobody beats {v} for me.",
            "Saw {v} live years ago, still the best gig of my life.",
            "I know every {v} album by heart.",
            "{v} is the soundtrack to my life.",
        ),
        change=(
            "{v} is my favourite band now.",
            "I've gone off {old}; {v} is all I listen to these days.",
            "Discovered {v} and I'm obsessed.",
            "Bought tickets for {v}, they've become my number one.",
            "Sorry {old}, {v} has taken your place.",
            "My top artist this year was {v}, by a mile.",
            "Can't stop playing {v}, they've replaced everything else.",
        ),
        passing=(
            "Listening to {v} on the way to work.",
            "{v} have a new single out.",
            "Wearing my {v} t-shirt today.",
        ),
        nostalgia=(
            "Heard {old} in a cafe and it took me back.",
            "My old {old} posters are still in the attic.",
            "I used to be so into {old}.",
            "Somebody covered {old} at karaoke last night.",
            "Found my {old} ticket stubs in a drawer.",
        ),
        others=(
            "My sister loves {o}.",
            "My partner keeps playing {o}.",
            "My friend is going to see {o}.",
        ),
        echo=(
            "{v} is a great band!",
            "What's your favourite {v} song?",
            "Have you seen {v} live?",
        ),
        ask_now=(
            "What is {name}'s favourite band now?",
            "What is {name}'s favourite band?",
            "Which band does {name} like most these days?",
            "Who is {name}'s favourite band currently?",
        ),
        ask_then=(
            "What is {name}'s favourite band?",
            "What was {name}'s favourite band at that time?",
            "Which band did {name} like most back then?",
        ),
    ),
    Attribute(
        key="phone",
        values=("Pixel", "iPhone", "Galaxy", "Fairphone", "OnePlus", "Xperia", "Nokia"),
        initial=(
            "I use a {v}.",
            "My {v} battery is dying fast.",
            "Took some great photos with my {v}.",
            "Cracked the screen on my {v}.",
            "The {v} has served me well.",
            "Texting you from my {v}.",
        ),
        change=(
            "I switched to a {v}.",
            "Got a new phone: a {v}.",
            "Traded my {old} for a {v}.",
            "I'm on a {v} now.",
            "Finally ditched the {old}; the {v} arrived yesterday.",
            "Moved all my contacts over to the {v} last night.",
            "The shop set up my {v} for me, the old phone is in a drawer.",
        ),
        passing=(
            "My {v} needs an update.",
            "Bought a case for the {v}.",
            "The {v} camera is decent.",
        ),
        nostalgia=(
            "I miss my {old}'s keyboard.",
            "The {old} had better battery life.",
            "Found my old {old} in a drawer.",
            "Still have the {old} charger in every room.",
            "My photos from the {old} years are the best ones.",
        ),
        others=(
            "My mum uses a {o}.",
            "My friend just bought a {o}.",
            "My brother swears by his {o}.",
        ),
        echo=(
            "The {v} is a good phone.",
            "How do you like the {v}?",
            "Enjoy the {v}!",
        ),
        ask_now=(
            "What phone does {name} use now?",
            "What phone does {name} have?",
            "Which phone is {name} using these days?",
            "What is {name}'s current phone?",
        ),
        ask_then=(
            "What phone does {name} use?",
            "What phone did {name} have at that time?",
            "Which phone was {name} using?",
        ),
    ),
)

NAMES: tuple[str, ...] = (
    "Maya", "Ana", "Liam", "Noah", "Zoe", "Ivan", "Chloe", "Omar", "Leo", "Nina", "Hugo",
    "Emma", "Ravi", "Sara", "Felix", "Yuki", "Mateo", "Iris", "Kofi", "Lena", "Tariq", "Mila",
    "Oscar", "Freya", "Arjun", "Clara", "Diego", "Hana", "Luca", "Nora", "Samir", "Wendy",
    "Bruno", "Greta", "Jamal", "Lucia", "Milo", "Petra", "Quinn", "Rosa", "Theo", "Vera",
    "Amir", "Beth", "Carlos", "Dana", "Eli", "Fatima",
)  # fmt: skip

SMALL_TALK: tuple[str, ...] = (
    "Can you help me plan meals for the week?",
    "I watched a documentary about octopuses last night.",
    "What's a good book to read on a long flight?",
    "I have a dentist appointment tomorrow, not looking forward to it.",
    "Any tips for getting better sleep?",
    "My laptop keeps freezing, any idea why?",
    "I'm thinking of learning to play the guitar.",
    "It's been such a long week.",
    "Can you remind me how compound interest works?",
    "I burned the rice again.",
    "What's a good gift for a five-year-old?",
    "I'm trying to drink more water.",
    "My houseplants are not doing well.",
    "I finally finished that puzzle.",
    "Do you know any good board games for four people?",
    "I need to write a birthday card, help me with a short poem?",
    "Thinking of repainting the living room green.",
    "My sleep schedule is a mess.",
    "How do I get red wine out of a carpet?",
    "I started journaling every night.",
    "What should I watch tonight, something light?",
    "Explain the rules of cricket in two sentences.",
    "I'm organising a surprise party, how do I keep it secret?",
    "My inbox has three hundred unread emails.",
    "How long should I boil an egg for a runny yolk?",
    "Ugh, Mondays.",
    "Can you suggest a stretching routine for desk workers?",
    "I want to save more money this year.",
)

REPLIES: tuple[str, ...] = (
    "Happy to help with that.",
    "That sounds like a lot, hang in there.",
    "Good idea! Let me know how it goes.",
    "Here's a quick suggestion: start small and build up.",
    "Interesting! Tell me more.",
    "I'd try a few options and see what sticks.",
    "That's a common problem; a simple routine usually helps.",
    "Sure, here are a few ideas.",
    "Sounds fun!",
    "Noted. Anything else on your mind?",
)

#: Session dates are at least this far apart, so a past ``as_of`` falls between sessions.
_MIN_GAP_DAYS = 20


@dataclass(frozen=True)
class Question:
    """A question about the attribute, with what is right and what is stale."""

    kind: str  # "current" or "past"
    text: str
    expected: str
    wrong: tuple[str, ...]
    as_of: str | None = None


@dataclass(frozen=True)
class Session:
    session_id: str
    day: date
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class History:
    name: str
    user_id: str
    attribute: str
    #: the user's values in the order they held; the last is the current one
    values: tuple[str, ...]
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]


def mentions(text: str, value: str) -> bool:
    """Whether ``text`` names ``value`` as a whole word (case-insensitive)."""
    return first_at(text, value) is not None


def first_at(text: str, value: str) -> int | None:
    """Where ``value`` is first named in ``text`` as a whole word (case-insensitive), if it is."""
    found = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE)
    return found.start() if found else None


def generate(count: int = 40, seed: int = 7) -> list[History]:
    """``count`` histories, the same for the same seed; attributes are spread evenly."""
    rng = random.Random(seed)
    order = list(ATTRIBUTES)
    rng.shuffle(order)
    return [_history(i, order[i % len(order)], rng) for i in range(count)]


def _history(index: int, attr: Attribute, rng: random.Random) -> History:
    name = NAMES[index % len(NAMES)]
    if index >= len(NAMES):
        name = f"{name}{index // len(NAMES) + 1}"
    n_sessions = rng.randint(3, 6)
    n_changes = 2 if n_sessions >= 4 and rng.random() < 0.4 else 1
    values = tuple(rng.sample(attr.values, n_changes + 1))
    spare = [v for v in attr.values if v not in values]
    change_at = sorted(rng.sample(range(1, n_sessions), n_changes))
    days = _session_days(n_sessions, rng)
    plans = [_plan(s, attr, values, change_at, spare, rng) for s in range(n_sessions)]
    _old_outnumbers_new(plans, attr, values, rng)
    sessions = tuple(
        Session(f"{name.lower()}-s{s + 1}", days[s], _messages(plans[s], name, days[s], rng))
        for s in range(n_sessions)
    )
    return History(
        name=name,
        user_id=name.lower(),
        attribute=attr.key,
        values=values,
        sessions=sessions,
        questions=_questions(attr, name, values, change_at, days, rng),
    )


def _session_days(count: int, rng: random.Random) -> list[date]:
    day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 300))
    days = []
    for _ in range(count):
        days.append(day)
        day += timedelta(days=rng.randint(_MIN_GAP_DAYS + 10, 110))
    return days


# A plan is a session's turns before small talk is mixed in: (user line, assistant reply).
Turn = tuple[str, str]


def _plan(
    s: int,
    attr: Attribute,
    values: tuple[str, ...],
    change_at: list[int],
    spare: list[str],
    rng: random.Random,
) -> list[Turn]:
    held = sum(1 for c in change_at if c <= s)
    value = values[held]
    turns: list[Turn] = []
    if s == 0:
        turns.append(_said(attr.initial, attr.echo, value, "", rng))
    elif s in change_at:
        turns.append(_said(attr.change, attr.echo, value, values[held - 1], rng))
    if held == 0 or rng.random() < 0.3:
        turns.append((rng.choice(attr.passing).format(v=value), rng.choice(REPLIES)))
    for old in values[:held]:
        for _ in range(rng.randint(1, 2)):
            turns.append(_nostalgia(attr, old, rng))
    if rng.random() < 0.6:
        other = rng.choice(spare)
        turns.append((rng.choice(attr.others).format(o=other), rng.choice(REPLIES)))
    return turns


def _said(
    lines: tuple[str, ...], echo: tuple[str, ...], value: str, old: str, rng: random.Random
) -> Turn:
    reply = rng.choice(echo).format(v=value) if rng.random() < 0.6 else rng.choice(REPLIES)
    return rng.choice(lines).format(v=value, old=old), reply


def _nostalgia(attr: Attribute, old: str, rng: random.Random) -> Turn:
    # Half the time the assistant picks the old value up too.
    reply = (
        f"Ah, {old}. You've mentioned that before." if rng.random() < 0.5 else rng.choice(REPLIES)
    )
    return rng.choice(attr.nostalgia).format(old=old), reply


def _old_outnumbers_new(
    plans: list[list[Turn]], attr: Attribute, values: tuple[str, ...], rng: random.Random
) -> None:
    """Add nostalgia to the last session until every old value is named more than the current."""

    def count(value: str) -> int:
        return sum(mentions(u, value) + mentions(a, value) for plan in plans for u, a in plan)

    for old in values[:-1]:
        while count(old) <= count(values[-1]):
            plans[-1].append(_nostalgia(attr, old, rng))


def _messages(plan: list[Turn], name: str, day: date, rng: random.Random) -> tuple[Message, ...]:
    turns = list(plan)
    for line in rng.sample(SMALL_TALK, rng.randint(3, 6)):
        turns.insert(rng.randint(0, len(turns)), (line, rng.choice(REPLIES)))
    clock = datetime(
        day.year, day.month, day.day, rng.randint(8, 20), rng.randint(0, 59), tzinfo=UTC
    )
    out: list[Message] = []
    for user, reply in turns:
        clock += timedelta(minutes=rng.randint(1, 4))
        out.append({"role": "user", "content": user, "name": name, "timestamp": clock.isoformat()})
        clock += timedelta(seconds=rng.randint(5, 50))
        out.append({"role": "assistant", "content": reply, "timestamp": clock.isoformat()})
    return tuple(out)


def _questions(
    attr: Attribute,
    name: str,
    values: tuple[str, ...],
    change_at: list[int],
    days: list[date],
    rng: random.Random,
) -> tuple[Question, ...]:
    current, old = values[-1], values[:-1]
    asked = [
        Question("current", q.format(name=name), current, old) for q in rng.sample(attr.ask_now, 2)
    ]
    for held, until in enumerate(change_at):
        # The day after the last session in which this value still held, before the next one.
        moment = datetime.combine(days[until - 1] + timedelta(days=1), datetime.min.time(), UTC)
        wrong = tuple(v for v in values if v != values[held])
        text = rng.choice(attr.ask_then).format(name=name)
        asked.append(Question("past", text, values[held], wrong, moment.isoformat()))
    return tuple(asked)


def as_dict(history: History) -> dict[str, Any]:
    """A history as plain JSON data (for inspection or to feed another engine)."""
    return {
        "name": history.name,
        "user_id": history.user_id,
        "attribute": history.attribute,
        "values": list(history.values),
        "sessions": [
            {"session_id": s.session_id, "messages": list(s.messages)} for s in history.sessions
        ],
        "questions": [vars(q) for q in history.questions],
    }
