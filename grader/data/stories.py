"""A seeded generator of short children's stories, in the style of TinyStories.

No TinyStories-like text ships on any package registry, so the basics unit trains on stories
composed here: a fixed cast of forty children and animals, a few places and toys, and eight
plots (lost and found, sharing, a fear overcome, a new friend, a rainy day, helping an animal,
telling the truth, a seed that grows). Each plot is a sequence of beats, each beat a choice
among sentence templates with random adjectives and dialogue, and every story ends on a moral.

Everything random goes through one :class:`random.Random`, so a seed gives the same stories on
every run and platform (``Random.choice`` and ``Random.random`` are stable across CPython
versions); nothing iterates over a set or a hash-ordered mapping.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MIN_WORDS = 80
MAX_WORDS = 250


@dataclass(frozen=True, slots=True)
class Character:
    """A member of the cast: a name, what it is (``girl``, ``puppy``), and its pronouns."""

    name: str
    kind: str
    female: bool

    @property
    def called(self) -> str:
        """How the narrator first names it: ``Tom``, or ``Spot the puppy``."""
        return self.name if self.kind in ("girl", "boy") else f"{self.name} the {self.kind}"

    @property
    def he(self) -> str:
        return "she" if self.female else "he"

    @property
    def He(self) -> str:
        return "She" if self.female else "He"

    @property
    def him(self) -> str:
        return "her" if self.female else "him"

    @property
    def his(self) -> str:
        return "her" if self.female else "his"

    @property
    def His(self) -> str:
        return "Her" if self.female else "His"


def _cast(rows: str, kind_of: Callable[[str], tuple[str, bool]]) -> tuple[Character, ...]:
    return tuple(Character(name, *kind_of(tag)) for name, tag in (r.split(":") for r in rows.split()))


CHILDREN = _cast(
    "Lily:f Tom:m Mia:f Ben:m Lucy:f Sam:m Anna:f Max:m Sue:f Tim:m Emma:f Jack:m Zoe:f Leo:m "
    "Ella:f Finn:m Rosie:f Jake:m Amy:f Dan:m Kim:f Noah:m Sara:f Ollie:m Grace:f Ryan:m Molly:f Eli:m",
    lambda tag: ("girl" if tag == "f" else "boy", tag == "f"),
)
ANIMALS = _cast(
    "Spot:puppy/m Fluffy:kitten/f Pip:bird/m Daisy:duck/f Hoppy:bunny/m Coco:monkey/f Benny:bear/m "
    "Squeak:mouse/m Bella:cat/f Freddy:frog/m Rusty:fox/m Polly:pony/f",
    lambda tag: (tag.split("/")[0], tag.endswith("f")),
)
CAST: tuple[Character, ...] = CHILDREN + ANIMALS
"""The forty recurring names."""


@dataclass(frozen=True, slots=True)
class Toy:
    noun: str
    adjectives: tuple[str, ...]
    use: str  # what one does with it: "kick", "fly", "hug"


TOYS = (
    Toy("ball", ("red", "blue", "big", "bouncy", "yellow", "shiny"), "kick"),
    Toy("kite", ("red", "green", "big", "pretty", "yellow"), "fly"),
    Toy("teddy bear", ("soft", "brown", "fluffy", "old", "little"), "hug"),
    Toy("toy car", ("red", "fast", "little", "blue", "shiny"), "race"),
    Toy("doll", ("pretty", "little", "old", "pink"), "play with"),
    Toy("toy boat", ("little", "red", "wooden", "blue"), "sail"),
    Toy("hat", ("funny", "red", "big", "blue", "purple"), "wear"),
    Toy("drum", ("small", "loud", "red", "shiny"), "play"),
    Toy("robot", ("shiny", "silver", "little", "funny"), "play with"),
    Toy("balloon", ("red", "yellow", "big", "pink", "blue"), "hold"),
    Toy("truck", ("big", "yellow", "green", "little"), "push"),
    Toy("shell", ("pretty", "pink", "shiny", "white"), "hold"),
)


@dataclass(frozen=True, slots=True)
class Place:
    name: str  # with its article: "the park"
    sights: tuple[str, ...]  # full clauses: "the trees were tall and green"
    spots: tuple[str, ...]  # where something can hide: "under the bench"
    games: tuple[str, ...]  # "ran around the big slide"


PLACES = (
    Place(
        "the park",
        ("the trees were tall and green", "the birds were singing in the trees", "the grass was soft and warm"),
        ("under the bench", "behind the big tree", "in the tall grass", "near the pond", "by the swings"),
        ("played on the swings", "ran on the soft grass", "went down the slide", "fed the ducks by the pond"),
    ),
    Place(
        "the garden",
        ("the flowers were red and yellow", "the bees were buzzing from flower to flower", "the sun was warm"),
        ("under a big leaf", "behind the flower pots", "near the little fence", "in the bushes"),
        ("smelled the pretty flowers", "watched a butterfly", "dug in the dirt", "looked for bugs"),
    ),
    Place(
        "the beach",
        ("the sand was warm and soft", "the waves went up and down", "the sea was big and blue"),
        ("under a pile of sand", "behind a big rock", "near the water", "by an old boat"),
        ("built a sand castle", "looked for pretty shells", "ran by the waves", "splashed in the water"),
    ),
    Place(
        "the forest",
        ("the trees were very tall", "a little stream was singing over the rocks", "the leaves were green and gold"),
        ("behind a big log", "under a pile of leaves", "near the little stream", "between two rocks"),
        ("picked up pretty leaves", "jumped over a log", "looked at the tall trees", "listened to the birds"),
    ),
    Place(
        "the farm",
        ("the cows were eating grass", "the pigs were rolling in the mud", "the hens were busy and loud"),
        ("in the hay", "behind the red barn", "near the old gate", "under the wagon"),
        ("fed the hens", "said hello to the cows", "jumped in the hay", "rode in the little wagon"),
    ),
    Place(
        "the playground",
        ("the slide was shiny in the sun", "many children were laughing", "the swings went high into the sky"),
        ("under the slide", "in the sandbox", "behind the swings", "next to the bench"),
        ("went down the slide", "played in the sandbox", "swung on the swings", "climbed the little ladder"),
    ),
    Place(
        "the meadow",
        ("the grass was tall and green", "little flowers grew everywhere", "the sky was bright and blue"),
        ("in the tall grass", "behind a big rock", "under a bush", "near the old tree"),
        ("chased butterflies", "rolled down the hill", "picked flowers", "ran in the warm sun"),
    ),
)
HOME_SPOTS = ("under the bed", "behind the sofa", "in the toy box", "under the table", "behind the door")

TRAITS = ("kind", "happy", "curious", "cheerful", "playful", "friendly", "gentle", "sweet", "smart", "little")
DAYS = (
    "One day",
    "One sunny day",
    "One sunny morning",
    "One warm afternoon",
    "One bright morning",
    "One Saturday",
    "Later that day",
    "One fine day",
)
GROWNUPS = ("mom", "dad", "grandma", "grandpa")
COLORS = ("red", "yellow", "blue", "pink", "purple", "orange", "white")


def article(word: str) -> str:
    """``an apple``, ``a ball``: the indefinite article that goes before ``word``."""
    return "an" if word[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


Paragraph = list[str]


class _Teller:
    """Composes one story from the beats of a plot; holds the generator for every choice."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pick = rng.choice

    # ---- shared beats -------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def two(self) -> tuple[Character, Character]:
        hero = self.pick(CAST)
        friend = self.pick(CAST)
        while friend is hero:
            friend = self.pick(CAST)
        return hero, friend

    def toy(self) -> tuple[Toy, str]:
        toy = self.pick(TOYS)
        return toy, f"{self.pick(toy.adjectives)} {toy.noun}"

    def say(self, who: str, line: str, verb: str = "said") -> str:
        """A line of dialogue with its tag, punctuated as a children's book would."""
        if verb == "said" and line.endswith("?"):
            verb = "asked"
        form = self.rng.random()
        if form < 0.55:
            inner = line[:-1] + "," if line.endswith(".") else line
            return f'"{inner}" {verb} {who}.'
        if form < 0.8:
            return f'{who[0].upper()}{who[1:]} {verb}, "{line}"'
        inner = line[:-1] + "," if line.endswith(".") else line
        return f'"{inner}" {who} {verb}.'

    def intro(self, hero: Character, place: Place | None = None) -> Paragraph:
        h, kind = hero, hero.kind
        trait = self.pick(TRAITS)
        where = place.name if place else self.pick(("a big forest", "a quiet street", "a small town", "a little house"))
        first = self.pick(
            (
                f"Once upon a time, there was {with_article(trait)} {kind} named {h.name}.",
                f"Once upon a time, there was a little {kind} named {h.name}.",
                f"There once was {with_article(trait)} {kind} named {h.name}.",
                f"Once upon a time, in {where}, there lived {with_article(kind)} called {h.name}.",
                f"{h.name} was {with_article(trait)} {kind} who lived near {where}.",
            )
        )
        second = self.pick(
            (
                f"{h.He} loved to play outside and laugh with {h.his} friends.",
                f"{h.He} liked to sing little songs all day long.",
                f"Everyone said that {h.name} had the biggest smile in town.",
                f"{h.He} was always ready for a new adventure.",
                f"{h.He} liked to help {h.his} {self.pick(GROWNUPS)} every day.",
                f"{h.He} loved the sun, the trees and the birds.",
                f"{h.He} always said please and thank you.",
                f"{h.He} liked to ask questions about everything {h.he} saw.",
            )
        )
        sentences = [first, second]
        if self.chance(0.4):
            sentences.insert(1, self.looks(hero))
        return sentences

    def looks(self, c: Character) -> str:
        if c.kind in ("girl", "boy"):
            hair = f"{self.pick(('curly', 'long', 'short', 'soft'))} {self.pick(('brown', 'black', 'red', 'yellow'))} hair"
            extra = self.pick(("a big red bow", "a yellow dress", "pink shoes")) if c.female else self.pick(
                ("a blue cap", "a green shirt", "muddy boots")
            )
            return f"{c.He} had {hair} and {extra}."
        if c.kind in ("bird", "duck"):
            return f"{c.He} had {self.pick(('soft', 'shiny', 'bright'))} {self.pick(('yellow', 'brown', 'white', 'blue'))} feathers."
        if c.kind == "frog":
            return f"{c.He} was small and green, and {c.he} could jump very high."
        return f"{c.He} had {self.pick(('soft', 'fluffy', 'warm'))} {self.pick(('brown', 'white', 'gray', 'orange'))} fur."

    # ---- plots ----------------------------------------------------------------------------

    def lost_and_found(self) -> list[Paragraph]:
        hero, friend = self.two()
        h, f = hero, friend
        place = self.pick(PLACES)
        toy, thing = self.toy()
        p1 = self.intro(h, place)
        p1.append(f"{h.He} had {with_article(thing)}. It was {h.his} favorite toy in the whole world.")
        if self.chance(0.6):
            p1.append(self.pick((f"{h.He} took it everywhere {h.he} went.", f"{h.He} liked to {toy.use} it every day.")))
        spots = list(place.spots)
        self.rng.shuffle(spots)
        p2 = [
            f"{self.pick(DAYS)}, {h.name} went to {place.name} with {h.his} {toy.noun}.",
            f"{self.pick(place.sights).capitalize()}. {h.He} {self.pick(place.games)}.",
            self.pick(
                (
                    f"When it was time to go home, {h.name} looked for {h.his} {toy.noun}, but it was gone!",
                    f"After a while, {h.name} saw that {h.his} {toy.noun} was not there anymore.",
                    f"Then {h.name} looked around. {h.His} {toy.noun} was gone!",
                )
            ),
            self.say(h.name, f"Where is my {toy.noun}?", self.pick(("cried", "said"))),
            self.pick((f"{h.He} felt very sad.", f"Tears came to {h.his} eyes.", f"{h.He} was so worried.")),
        ]
        p3 = [
            self.pick(
                (
                    f"Just then, {h.his} friend {f.name} came by.",
                    f"Soon {h.his} friend {f.called} came to see what was wrong.",
                    f"{f.name} saw {h.name} and ran over.",
                )
            ),
            self.say(f.name, self.pick(("Why are you sad?", "What is wrong?", "Are you okay?"))),
            self.say(h.name, f"I lost my {toy.noun}."),
            self.say(f.name, self.pick(("Don't worry. I will help you find it.", "Let's look for it together!"))),
            f"They looked {spots[0]}, but it was not there. They looked {spots[1]}, but it was not there either.",
        ]
        if self.chance(0.5):
            critter = self.pick(("a little squirrel", "a small dog", "a funny bird", "a baby goat"))
            p3.append(f"Then they saw {critter} {spots[2]}. It was playing with the {toy.noun}!")
            p3.append(f"The {critter.split()[-1]} gave the {toy.noun} back and ran away.")
        else:
            p3.append(f"Then {f.name} saw something {spots[2]}. It was the {toy.noun}!")
        p4 = [
            self.pick((f"{h.name} was so happy.", f"{h.name} jumped up and down.", f"{h.name} smiled a big smile.")),
            f"{h.He} gave {f.name} a big hug.",
            self.say(h.name, self.pick(("Thank you for helping me.", "You are a good friend.", "Thank you so much!"))),
            self.pick(
                (
                    f"From that day on, {h.name} always kept {h.his} {toy.noun} close, and {h.he} knew that good friends help each other.",
                    f"{h.name} learned to take good care of the things {h.he} loves.",
                    "It is always better to look for something with a friend than alone.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    def sharing(self) -> list[Paragraph]:
        h, f = self.two()
        place = self.pick(PLACES)
        toy, thing = self.toy()
        grown = self.pick(GROWNUPS)
        p1 = self.intro(h, place)
        p1.append(
            self.pick(
                (
                    f"For {h.his} birthday, {h.his} {grown} gave {h.him} {with_article(thing)}.",
                    f"{h.He} had {with_article(thing)} and {h.he} loved it very much.",
                )
            )
        )
        p2 = [
            f"{self.pick(DAYS)}, {h.name} was playing with {h.his} {toy.noun} at {place.name}.",
            f"{f.called} came over and watched. {f.He} wanted to play too.",
            self.say(f.name, f"Can I play with your {toy.noun}?"),
            self.pick((f"{h.name} held the {toy.noun} tight.", f"{h.name} did not want to share.")),
            self.say(h.name, self.pick(("No, it is mine!", "No! Go away.", "It is my toy, not yours!")), self.pick(("said", "shouted"))),
            f"{f.name} looked sad and walked away.",
        ]
        p3 = [
            self.pick((f"{h.name} played alone, but it was not fun anymore.", f"Soon {h.name} felt lonely.")),
            self.pick(
                (
                    f'{h.He} remembered what {h.his} {grown} always said: "Sharing is caring."',
                    f"{h.He} thought about how sad {f.name} looked, and {h.he} felt bad inside.",
                )
            ),
            f"{h.name} ran after {f.name}.",
            self.say(h.name, f"I am sorry. Do you want to play with my {toy.noun}?"),
            self.say(f.name, "Yes, please!") if self.chance(0.5) else f'"Yes, please!" said {f.name} with a big smile.',
        ]
        p4 = [
            f"They took turns to {toy.use} the {toy.noun}. They laughed and had so much fun.",
            self.pick(
                (
                    f"{h.name} learned that sharing makes playing more fun.",
                    "Sharing made both of them happy, and they played together all afternoon.",
                    f"From that day on, {h.name} always shared {h.his} toys with {h.his} friends.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    _FEARS = (
        # what, where ("" = at home at night), the moment, a line of fear, the try, how it went
        ("the big slide", "the playground", "{name} looked up at the big slide, and {his} legs began to shake.",
         "It is too high!", "climbed up the ladder and went down the slide", "It was fast and fun!"),
        ("the water", "the beach", "{name} looked at the big waves, and {his} legs began to shake.",
         "The waves are too big!", "put {his} feet in the water and then walked in slowly", "The water was cool and nice."),
        ("the big dog next door", "the garden", "The big dog barked by the fence, and {name} hid behind a tree.",
         "He is too big!", "held out {his} hand and let the dog sniff it", "The dog wagged its tail and licked {his} hand."),
        ("the dark", "", "When the light went off, the room was very dark. {name} pulled the blanket over {his} head.",
         "I can't see anything!", "looked out of the window into the night",
         "The moon and the stars were shining. The dark was calm and quiet."),
        ("the loud thunder", "", "Boom! The thunder was very loud. {name} hid under {his} blanket.",
         "It is too loud!", "sat by the window and listened to the rain", "The storm was loud, but it could not hurt anyone."),
        ("the tall tree", "the meadow", "{name} looked up at the tall tree, and {his} legs began to shake.",
         "It is too tall!", "put {his} foot on the first branch and climbed up, one branch at a time",
         "From the top, {he} could see the whole town."),
    )

    def fear(self) -> list[Paragraph]:
        h, f = self.two()
        what, where, moment, line, attempt, turned = self.pick(self._FEARS)
        names = {"name": h.name, "his": h.his, "he": h.he}
        grown = f"{h.his} {self.pick(GROWNUPS)}"
        helper = f"{h.his} friend {f.name}" if where and self.chance(0.4) else grown
        p1 = self.intro(h)
        p1.append(f"But {h.name} had a secret. {h.He} was scared of {what}.")
        if where:
            p2 = [f"{self.pick(DAYS)}, {h.name} went to {where} with {helper}."]
        else:
            p2 = [self.pick(("One night, it was time for bed.", "One night, a big storm came."))]
        p2 += [
            moment.format(**names),
            self.say(h.name, f"I can't do it. {line}", self.pick(("said", "whispered", "cried"))),
        ]
        p3 = [
            self.say(helper, self.pick(("You are braver than you think.", "I will be right here with you.", "Let's try it together."))),
            f"{h.name} took a deep breath. Then {h.he} {attempt.format(**names)}.",
            turned.format(**names),
            self.say(h.name, self.pick(("I did it!", "That was not scary at all!", "I was brave!")), self.pick(("shouted", "said"))),
        ]
        p4 = [
            self.pick((f"{h.name} felt very proud.", f"{h.name} smiled from ear to ear.")),
            self.pick(
                (
                    f"{h.name} learned that being brave means trying even when you feel scared.",
                    f"From that day on, {h.name} was not scared of {what} anymore.",
                    "Sometimes the things that scare us are not so bad when we try.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    _GAMES = ("hide and seek", "tag", "catch", "a game of pretend", "jump rope")

    def friendship(self) -> list[Paragraph]:
        h, f = self.two()
        place = self.pick(PLACES)
        toy, thing = self.toy()
        p1 = self.intro(h, place)
        p1.append(
            self.pick(
                (
                    f"{h.name} had just moved to a new town, and {h.he} did not know anyone.",
                    f"{h.name} was a little shy, and {h.he} did not have many friends.",
                )
            )
        )
        p2 = [
            f"{self.pick(DAYS)}, {h.name} went to {place.name}.",
            f"{self.pick(place.sights).capitalize()}.",
            f"There {h.he} saw {with_article(f.kind)} sitting all alone.",
            f"{h.name} wanted to say hello, but {h.he} felt shy.",
            f"Then {h.he} took a deep breath and walked over.",
            self.say(h.name, f"Hello, my name is {h.name}. What is your name?"),
            self.say(f"the {f.kind}", f"I am {f.name}."),
            self.say(h.name, "Do you want to play with me?"),
            self.say(f.name, self.pick(("Yes, I would love to!", "Oh yes, please!"))),
        ]
        p3 = [
            f"They played {self.pick(self._GAMES)}. Then they {self.pick(place.games)}.",
            f"{h.name} showed {f.name} {h.his} {thing}, and they took turns to {toy.use} it.",
            "When the sun went down, they did not want to say goodbye.",
            self.say(f.name, "Can we play again tomorrow?"),
            self.say(h.name, "Yes! You are my best friend."),
        ]
        p4 = [
            f"From that day on, {h.name} and {f.name} were best friends.",
            self.pick(
                (
                    f"{h.name} learned that a friendly hello is the first step to a new friendship.",
                    "Being kind to someone new can make a friend for life.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    _INDOORS = (
        ("build a fort", "They put blankets over the chairs and made a cozy fort.", "Inside the fort, they read books with a little light."),
        ("bake cookies", "They mixed flour, sugar and eggs in a big bowl.", "Soon the whole house smelled sweet and warm."),
        ("paint pictures", "They got paper and bright paints.", "{name} painted a big sun, a green tree and a happy dog."),
        ("make a puppet show", "They made puppets out of old socks.", "The puppets sang songs and told funny jokes."),
        ("play hide and seek", "{name} hid behind the curtains and under the table.", "They laughed every time someone was found."),
    )

    def rainy_day(self) -> list[Paragraph]:
        h = self.pick(CAST)
        place = self.pick(PLACES)
        grown = self.pick(GROWNUPS)
        idea, step1, step2 = self.pick(self._INDOORS)
        p1 = self.intro(h, place)
        p1.append(f"{h.His} favorite place in the whole world was {place.name}.")
        p2 = [
            f"One morning, {h.name} woke up and looked out of the window. It was raining!",
            self.pick(("Big drops fell on the window, and the sky was gray.", "The sky was dark, and the wind was blowing.")),
            self.say(h.name, f"Oh no! Now I can't go to {place.name}.", self.pick(("said", "cried"))),
            self.pick((f"{h.He} felt sad and bored.", f"{h.He} sat by the window with a long face.")),
        ]
        p3 = [
            f"{h.His} {grown} saw {h.him} and had an idea.",
            self.say(f"{h.his} {grown}", f"Let's {idea}!"),
            step1.format(name=h.name),
            step2.format(name=h.name),
            self.pick((f"{h.name} forgot all about the rain.", f"{h.name} was having so much fun.")),
        ]
        p4 = [
            f"Soon the rain stopped. {h.name} looked outside and saw a big rainbow in the sky.",
            self.say(h.name, self.pick(("Look, it is so pretty!", "A rainbow! Can we go outside now?")), "shouted"),
            self.pick(
                (
                    f"{h.name} learned that a rainy day can be a happy day too.",
                    "Even on a gray day, there is always something fun to do.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    _TROUBLES = (
        # the animal, its trouble, where one looks ("" = a spot of the place), the fix, the end
        ("a little bird", "with a hurt wing", "", "put it in a soft box and gave it some water", "Soon the bird could fly again. It flew up into the sky and sang a happy song."),
        ("a small kitten", "stuck up in a tree", "up into a big tree", "got a ladder and helped it down", "The kitten purred and rubbed its head on {his} leg."),
        ("a baby duck", "that had lost its mom", "", "walked with it to the pond", "The baby duck swam to its mom, and they quacked happily."),
        ("a tiny turtle", "stuck on its back", "", "turned it over very gently", "The turtle walked slowly back to the grass."),
        ("a little puppy", "with its paw stuck in a hole", "", "helped it pull its paw out of the hole", "The puppy licked {his} face and wagged its tail."),
    )

    def helping(self) -> list[Paragraph]:
        h = self.pick(CAST)
        place = self.pick(PLACES)
        grown = self.pick(GROWNUPS)
        animal, trouble, look, fix, after = self.pick(self._TROUBLES)
        p1 = self.intro(h, place)
        p2 = [
            f"{self.pick(DAYS)}, while {h.name} was walking in {place.name}, {h.he} heard a small sound.",
            f"{h.He} looked {look or self.pick(place.spots)} and saw {animal} {trouble}.",
            self.say(h.name, self.pick(("Oh no, you poor thing!", "Don't be scared. I will help you."))),
        ]
        p3 = [
            f"{h.name} ran to get {h.his} {grown}.",
            self.say(f"{h.his} {grown}", "We must be very careful and gentle."),
            f"Together they {fix}.",
            self.pick(("They took good care of it.", f"{h.name} stayed with it the whole time.")),
        ]
        p4 = [
            after.format(his=h.his),
            f"{h.name} waved goodbye and smiled.",
            self.pick(
                (
                    f"{h.name} felt warm inside. Helping others is always a good thing to do.",
                    "It feels good to be kind, even to the smallest animals.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    _FRAGILE = ("favorite vase", "blue cup", "flower pot", "old clock", "pretty lamp")

    def honesty(self) -> list[Paragraph]:
        h = self.pick(CAST)
        grown = self.pick(GROWNUPS)
        thing = self.pick(self._FRAGILE)
        toy, ball = "ball", f"{self.pick(('red', 'blue', 'big', 'bouncy'))} ball"
        p1 = self.intro(h)
        p2 = [
            f"{self.pick(DAYS)}, {h.name} was playing with {h.his} {ball} inside the house.",
            f'{h.His} {grown} had said, "No ball games in the house!"',
            f"The {toy} bounced off the wall and hit {h.his} {grown}'s {thing}.",
            "It fell on the floor and broke into many pieces.",
            self.say(h.name, "What will I do?", "whispered"),
            f"{h.name} was scared. {h.He} wanted to hide the pieces {self.pick(HOME_SPOTS)}.",
        ]
        p3 = [
            f"But {h.he} knew that was not the right thing to do.",
            f"{h.He} went to {h.his} {grown} and looked at the floor.",
            self.say(h.name, f"I am sorry. I broke your {thing}."),
            f"{h.His} {grown} gave {h.him} a hug.",
            self.say(f"{h.his} {grown}", "Thank you for telling me the truth. Next time, play ball outside."),
        ]
        p4 = [
            "Together they cleaned up the pieces.",
            self.pick(
                (
                    f"{h.name} learned that telling the truth is always the best thing to do.",
                    f"{h.name} felt much better. Being honest is brave.",
                )
            ),
        ]
        return [p1, p2, p3, p4]

    def seed(self) -> list[Paragraph]:
        h = self.pick(CAST)
        grown = self.pick(GROWNUPS)
        flower = self.pick((f"{self.pick(COLORS)} flower", "sunflower", f"{self.pick(COLORS)} rose", "tomato plant"))
        p1 = self.intro(h)
        p2 = [
            f"One spring day, {h.his} {grown} gave {h.him} a tiny seed.",
            self.say(f"{h.his} {grown}", "If you plant it and give it water, it will grow."),
            f"{h.name} dug a little hole in the garden and put the seed inside.",
        ]
        p3 = [
            f"Every day, {h.name} gave the seed some water. But nothing happened.",
            self.say(h.name, "Why is it not growing?"),
            self.say(f"{h.his} {grown}", "You have to be patient. Good things take time."),
            f"So {h.name} waited and waited.",
        ]
        p4 = [
            f"One morning, {h.name} saw a little green sprout in the dirt!",
            f"Many days later, it grew into a big {flower}.",
            self.say(h.name, "Look what I grew!", "shouted"),
            self.pick((f"{h.name} learned that waiting can bring wonderful things.", "Patience is a kind of magic.")),
        ]
        return [p1, p2, p3, p4]


PLOTS: tuple[str, ...] = ("lost_and_found", "sharing", "fear", "friendship", "rainy_day", "helping", "honesty", "seed")


def _one_story(teller: _Teller) -> str:
    while True:
        paragraphs = getattr(teller, teller.pick(PLOTS))()
        text = "\n\n".join(" ".join(p) for p in paragraphs)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return text


def generate_stories(n: int | None, seed: int) -> Iterator[str]:
    """Yield ``n`` stories (endless when ``n`` is None), the same ones for the same seed.

    Each story is plain text of 80 to 250 words in a few paragraphs, without separators;
    :mod:`.corpus` puts ``<|endoftext|>`` between documents.
    """
    teller = _Teller(random.Random(seed))
    produced = 0
    while n is None or produced < n:
        yield _one_story(teller)
        produced += 1
