"""Closed word lists the rules test values against.

A rule that would otherwise read any noun phrase ("I'm a ...", "I bought a ...") only fires when
the phrase ends in a word from one of these lists, which is what keeps "I'm a big mess" from
becoming a job title.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


OCCUPATIONS = _words(
    """accountant actor actress analyst architect artist assistant attorney baker barista barber
    bartender biologist bookkeeper builder butcher carpenter cashier chef chemist cleaner clerk
    coach consultant contractor cook counselor counsellor dancer dentist designer developer
    dietitian director doctor driver economist editor electrician engineer entrepreneur
    farmer firefighter founder freelancer gardener geologist hairdresser historian illustrator
    instructor intern investor janitor journalist judge lawyer lecturer librarian lifeguard
    machinist manager mechanic midwife musician nanny nurse nutritionist officer optometrist
    painter paralegal paramedic pharmacist photographer physician physicist physiotherapist
    pilot plumber poet policeman policewoman politician producer professor programmer
    psychiatrist psychologist publisher realtor receptionist recruiter researcher retiree
    salesman saleswoman scientist secretary singer soldier statistician student surgeon
    teacher technician therapist trainer translator tutor veterinarian vet waiter waitress
    welder writer ceo cto cfo coo vp pm swe"""
)

DEMONYMS = _words(
    """american argentinian australian austrian belgian brazilian british bulgarian canadian
    chilean chinese colombian croatian cuban czech danish dutch egyptian english estonian
    filipino finnish french german greek hungarian icelandic indian indonesian irish israeli
    italian jamaican japanese kenyan korean latvian lithuanian mexican moroccan nigerian
    norwegian pakistani peruvian polish portuguese romanian russian scottish serbian slovak
    slovenian spanish swedish swiss taiwanese thai turkish ukrainian venezuelan vietnamese
    welsh"""
)

DIETS = _words(
    """vegetarian vegan pescatarian pescetarian keto paleo gluten-free dairy-free halal kosher
    flexitarian carnivore low-carb raw-vegan"""
)

HEALTH_STATES = _words(
    """pregnant diabetic celiac coeliac asthmatic autistic epileptic anemic anaemic insomniac
    colorblind sober"""
)

CONDITIONS = _words(
    """asthma diabetes adhd add autism anxiety depression migraines migraine arthritis eczema
    psoriasis insomnia epilepsy celiac hypertension cancer covid long-covid endometriosis
    pcos ibs crohn's tinnitus scoliosis allergies dyslexia"""
)

ACTIVITIES = _words(
    """running jogging swimming cycling biking hiking climbing bouldering surfing skiing
    snowboarding skating rowing kayaking sailing diving boxing dancing yoga pilates crossfit
    lifting weightlifting meditating meditation painting drawing sketching knitting crocheting
    sewing baking cooking gardening fishing hunting camping birdwatching photography pottery
    writing blogging journaling reading singing gaming chess golf tennis football soccer
    basketball baseball volleyball badminton squash cricket rugby hockey karate judo taekwondo
    fencing archery woodworking calligraphy origami embroidery quilting skateboarding
    snorkeling scuba triathlons marathons"""
)

INSTRUMENTS = _words(
    """guitar piano violin cello drums bass ukulele flute saxophone trumpet clarinet harp
    keyboard banjo mandolin trombone accordion harmonica"""
)

CAR_MAKES = _words(
    """toyota honda ford tesla bmw audi mercedes volkswagen vw volvo subaru mazda nissan kia
    hyundai chevy chevrolet jeep porsche fiat peugeot renault skoda seat mini lexus jaguar
    dodge ram gmc cadillac buick lincoln mitsubishi citroen citroën opel polestar rivian
    corolla camry civic prius mustang jetta golf model leaf outback forester wrangler rav4
    cr-v f-150 miata accord"""
)

PHONES = _words("iphone pixel galaxy android oneplus xiaomi huawei nokia motorola blackberry")

#: Things "I bought a ..." is worth remembering for; anything else ("a sandwich") is noise.
POSSESSIONS = _words(
    """house home apartment flat condo cabin car bike bicycle motorcycle motorbike scooter boat
    van truck piano guitar camera laptop tablet kindle ps5 playstation xbox switch telescope"""
)

PETS = _words(
    """dog cat puppy kitten rabbit bunny hamster parrot bird fish turtle tortoise horse
    guinea-pig ferret snake lizard gecko budgie"""
)

#: The relation word as said -> the attribute it is stored under (records.PROFILE_ATTRIBUTES).
RELATIONS: dict[str, str] = {
    "sister": "sister",
    "brother": "brother",
    "mom": "mother",
    "mum": "mother",
    "mother": "mother",
    "dad": "father",
    "father": "father",
    "wife": "spouse",
    "husband": "spouse",
    "spouse": "spouse",
    "partner": "partner",
    "girlfriend": "partner",
    "boyfriend": "partner",
    "fiance": "partner",
    "fiancé": "partner",
    "fiancee": "partner",
    "fiancée": "partner",
    "son": "child",
    "daughter": "child",
    "friend": "friend",
    "coworker": "coworker",
    "co-worker": "coworker",
    "colleague": "coworker",
    "boss": "boss",
    "manager": "boss",
    "roommate": "roommate",
    "flatmate": "roommate",
    "cousin": "cousin",
    "aunt": "aunt",
    "uncle": "uncle",
    "grandma": "grandparent",
    "grandmother": "grandparent",
    "grandpa": "grandparent",
    "grandfather": "grandparent",
    "niece": "niece",
    "nephew": "nephew",
    "neighbor": "neighbour",
    "neighbour": "neighbour",
}

#: Capitalised words that start sentences without being anyone's name.
NOT_NAMES = _words(
    """i we you he she they it the a an this that these those my our your his her their its
    today yesterday tomorrow tonight last next also and but so then now well oh yes no yeah
    yep nope ok okay hi hello hey thanks thank actually btw lol haha anyway anyways honestly
    sadly luckily unfortunately fortunately finally recently everyone someone somebody nobody
    everybody anyone what where when why how who which do does did is are was were can could
    would should will there here if maybe perhaps please just mom mum dad mommy daddy god omg
    wow sure great good nice cool sorry after before since while because although though
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday christmas easter sometimes
    often usually always never still even only both all some many most one two three
    moved relocated joined quit left started got bought sold adopted rescued switched went
    took retired graduated signed settled traded broke landed brought swapped"""
)

#: Values that are pronouns or fillers, never the thing a statement is about.
EMPTY_VALUES = _words(
    """it that this these those them him her you me us myself yourself himself herself
    ourselves themselves there here what which who whom whose something anything everything
    nothing someone anyone everyone one lot bit kind sort way thing things stuff so too
    how when where why"""
)
