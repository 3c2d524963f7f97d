"""Sentence templates of the built-in story generator (``tl_bilinear.data.stories``).

Templates are ``str.format_map`` strings over a per-story context (see
``stories._context``): ``{name}``/``{he}``/``{him}``/``{his}`` for the hero,
``{name2}``/``{he2}``/... for a friend, ``{pos}``/``{neg}`` for a positive/negative
feeling word, and nouns from ``lexicon``.

Sentiment and negation are deliberate: a feeling is said either directly ("{name} was
{neg}.") or by negating its opposite ("{name} was not {pos}."), and the reaction that
follows (``REACT_POS`` / ``REACT_NEG``) always matches the meaning, so predicting it
requires reading the negation.
"""

from __future__ import annotations

POS_FEELINGS = tuple("happy glad cheerful joyful excited proud calm thankful pleased merry delighted hopeful".split())
NEG_FEELINGS = tuple(
    "sad upset angry scared grumpy lonely worried mad afraid nervous gloomy cross jealous miserable".split()
)

OPENINGS = (
    "once upon a time, there was a {trait} little {kind} named {name}.",
    "once upon a time, there was a {trait} {kind} called {name}.",
    "once upon a time, in a {look} {home}, there lived a {trait} {kind} named {name}.",
    "there once was a {trait} {kind} named {name} who lived in a {home}.",
    "one {time}, a {trait} {kind} named {name} woke up early.",
    "{name} was a {trait} little {kind}. {he} lived in a {home} near the {place}.",
    "once there was a {kind} named {name}. {he} was very {trait}.",
    "in a {home} by the {place}, there was a {trait} {kind}. {his} name was {name}.",
)

DESCRIPTIONS = (
    "{he} had a {color} {toy} that {he} loved very much.",
    "every day, {name} liked to {activity} with {his} {fam}.",
    "{he} liked {food}, but {he} did not like {food2}.",
    "{name}'s favorite color was {color}.",
    "{he} was never scared of {fear}.",
    "{he} was always a little scared of {fear}.",
    "{name} loved to {activity}. it made {him} feel {pos}.",
    "{he} did not like to {activity2}. it made {him} feel {neg}.",
    "{name} lived with {his} {fam} and a {trait2} {pet}.",
    "{his} best friend was a {pet} named {name3}.",
    "{name} was not very big, but {he} was very {trait}.",
    "{he} wanted to be a {job} when {he} grew up.",
    "{he} always wore {his} {color} {clothes}.",
    "{he} had {num} {color} {toy_pl} in {his} room.",
    "{he} had {hair} hair and big {eyes} eyes.",
    "{he} liked to {activity} {adv}.",
    "{name} could {activity3} better than anyone.",
)

EVENTS = (
    "one day, {name} went to the {place} with {his} {fam}.",
    "one {time}, {name} and {his} {fam} went to the {place}.",
    "one day, {name} wanted to {activity}. so {he} went to the {place}.",
    "the next day, {name} walked to the {place} to {activity}.",
    "one day, {name} found {a_look} {toy} near the {spot}.",
    "after breakfast, {name} ran outside to {activity}.",
    "one day, {name} {move} {adv} to the {place}.",
    "one {time}, {name} {move} all the way to the {place}.",
)

SCENERY = (
    "{weather}.",
    "{weather}, and {name} felt {pos}.",
    "at the {place}, {he} saw {a_nature} and {a_bug}.",
    "there were {num} {animal_pl} near the {spot}.",
    "{he} heard {a_sound} and looked around.",
    "the {place} was {place_look} and {place_look2}.",
    "{he} {move} past {a_nature} and {a_bug}.",
    "near the {spot}, {he} found {a_treasure}.",
    "some children were trying to {activity3} by the {spot}.",
)

MEET = (
    "there, {he} met a {trait2} {kind2} named {name2}.",
    "at the {place}, {name} saw a {kind2} named {name2}.",
    "soon, {his} friend {name2} came to play.",
    "then a {trait2} {kind2} named {name2} walked by.",
)

GREET = (
    '"hello, {name2}!" said {name}. "do you want to {activity} with me?"',
    '"hi, {name2}!" said {name}. "will you play with me?"',
    '"look at my {toy}!" said {name}. "do you want to play with it?"',
    '"hi, {name2}! let us {activity} together!" said {name}.',
)

AGREE = (
    '"yes, i would love to!" said {name2}.',
    '"okay, that sounds like fun!" said {name2}.',
    '"yes! i love to {activity}," said {name2}.',
    '"wow, your {toy} is so {look}!" said {name2}. "yes, let us play."',
)

REFUSE = (
    '"no, i do not want to," said {name2}. "i am too {neg}."',
    '"i do not like to {activity}," said {name2}.',
    '"not now," said {name2}. "maybe later."',
)

FEEL_POS = (
    "{name} was {pos}.",
    "{he} was so {pos}.",
    "{he} felt very {pos} inside.",
    "{name} was not {neg} anymore.",
    "{he} was not {neg} at all.",
    "{he} did not feel {neg} anymore.",
    "now {name} was {pos} again.",
    "{he} was not sad.",
)

FEEL_NEG = (
    "{name} was {neg}.",
    "{he} was very {neg}.",
    "{name} was not {pos}.",
    "{he} was not happy at all.",
    "{he} did not feel {pos}.",
    "{he} felt {neg} and {neg2}.",
    "{name} was not {pos} anymore.",
    "{he} was sad.",
)

REACT_POS = (
    "{he} smiled.",
    "{he} smiled a big smile.",
    "{he} laughed and clapped {his} hands.",
    "{he} jumped up and down.",
    "{he} gave {name2} a big hug.",
    "{he} sang a happy song.",
    "{his} eyes were shining.",
)

REACT_NEG = (
    "{he} began to cry.",
    "{he} frowned.",
    "a big tear rolled down {his} cheek.",
    "{he} sat down and sighed.",
    "{he} looked down at the ground.",
    "{he} did not want to play anymore.",
    "{he} hid {his} face.",
)

FOOD_INTRO = (
    "later, {his} {fam} gave {him} {a_food}.",
    "then they sat down to eat {a_food}.",
    "after that, {name} tried the {food}.",
    "at lunch, there was {a_food} on {his} plate.",
)

LIKE = (
    "{name} liked the {food} very much.",
    "{he} loved the {food}.",
    "the {food} was {good_taste}.",
    "it was not bad at all.",
    "the {food} was not {bad_taste} at all.",
    "{he} thought it was very {good_taste}.",
)

DISLIKE = (
    "{name} did not like the {food}.",
    "{he} did not like it.",
    "the {food} was {bad_taste}.",
    "it was not good.",
    "the {food} was not {good_taste} at all.",
    "{he} thought it was too {bad_taste}.",
)

LIKE_REACT = (
    "{he} asked for more.",
    "{he} ate it all up.",
    '"yum!" said {name}.',
    "{he} licked {his} lips.",
)
DISLIKE_REACT = (
    "{he} pushed the plate away.",
    "{he} made a funny face.",
    '"yuck!" said {name}.',
    "{he} put it down.",
)

ENDINGS = (
    "from that day on, {name} and {name2} were best friends.",
    "from that day on, {name} was never scared of {fear} again.",
    "{name} learned that {moral}.",
    "the moral of the story is that {moral}.",
    "that night, {name} went to bed with a smile.",
    "that night, {name} dreamed about {a_toy} and {a_nature}.",
    "they went home and ate {a_food} for dinner.",
    "{name} {move} home {adv}, holding {his} {toy}.",
    "it was the best day ever.",
    "it was not a bad day after all.",
    "{name} and {name2} played together until the sun went down.",
    "and they all lived happily ever after.",
)

# A problem: set-up, what goes wrong, what someone says, how it gets fixed, and what
# happens after. The generator wraps them in feelings (FEEL_NEG before, FEEL_POS after).
PROBLEMS = (
    dict(  # lost toy
        trouble=("but then {name} could not find {his} {toy}.", "suddenly, {his} {toy} was gone."),
        detail=(
            "{he} looked under the {spot} and behind the {spot2}, but it was not there.",
            "{he} looked everywhere, but {he} could not find it.",
        ),
        talk=('"where is my {toy}?" cried {name}.', '"do not worry," said {name2}. "i will help you look."'),
        fix=("then {name2} found the {toy} under the {spot2}.", "at last, {he} saw the {toy} next to the {spot}."),
        after=('"thank you!" said {name}.', "{he} held the {toy} tight and did not let it go."),
    ),
    dict(  # broken toy
        trouble=("{his} {toy} fell on the ground and broke.", "{name2} pulled the {toy} too hard and it broke."),
        detail=("now it did not work anymore.", "it was in {num} pieces."),
        talk=('"my {toy} is broken!" said {name}.', '"i am sorry," said {name2}. "i did not mean to."'),
        fix=("{his} {fam} fixed it with {tool}.", "together they fixed the {toy} with {tool}."),
        after=("the {toy} was as good as new.", "it was not broken anymore."),
    ),
    dict(  # stuck in a tree
        trouble=(
            "the wind blew {his} {toy} into a tall tree.",
            "a {pet} climbed up a tall tree and could not get down.",
        ),
        detail=("it was too high to reach.", "{name} jumped and jumped, but {he} was too small."),
        talk=('"how can we get it down?" asked {name2}.', '"i have an idea!" said {name}.'),
        fix=("{his} {fam} came with a ladder and got it down.", "{name2} climbed up carefully and brought it down."),
        after=("everyone cheered.", "{he} said thank you and gave {name2} a hug."),
    ),
    dict(  # storm
        trouble=("suddenly, dark clouds came and it began to rain.", "then the sky turned gray and thunder went boom."),
        detail=("the wind was strong and cold.", "{name} was all wet."),
        talk=('"i do not like the storm," said {name}.', '"let us go inside," said {name2}. "we will be safe there."'),
        fix=("they ran inside and sat by the warm fire.", "soon the rain stopped and the sun came out."),
        after=("there was a big rainbow in the sky.", "the storm was not so scary after all."),
    ),
    dict(  # a noise in the dark
        trouble=(
            "that night, {name} heard a loud {sound} from under the {spot}.",
            "in the dark, something went {sound}.",
        ),
        detail=("{he} pulled the blanket over {his} head.", "{he} did not want to look."),
        talk=('"who is there?" whispered {name}.', '"it is only me," said a small voice.'),
        fix=("it was just a little {animal}.", "it was only {his} {pet} playing with {a_toy}."),
        after=("{name} laughed.", "it was not scary at all."),
    ),
    dict(  # sad friend
        trouble=("{name2} was sitting alone and looked very sad.", "{name2} had no one to play with."),
        detail=("{he2} did not have a {toy} to play with.", "{he2} was not happy at all."),
        talk=('"why are you sad?" asked {name}.', '"you can play with my {toy}," said {name}.'),
        fix=("{name} shared {his} {toy} with {name2}.", "{name} gave {name2} half of {his} {food}."),
        after=("{name2} smiled and said thank you.", "they were not lonely anymore."),
    ),
    dict(  # sharing fight
        trouble=("{name} and {name2} both wanted the {toy}.", "{name2} took the {toy} and did not give it back."),
        detail=("they pulled and pulled.", "they both yelled, and nobody was having fun."),
        talk=('"it is mine!" shouted {name}.', '"you can share it," said {his} {fam}. "take turns."'),
        fix=("so they took turns with the {toy}.", "they decided to play with the {toy} together."),
        after=("sharing was not so bad after all.", "playing together was more fun."),
    ),
    dict(  # new food
        trouble=("{his} {fam} made {a_food} for lunch.", "at dinner, there was {a_food} on the plate."),
        detail=("{name} had never tried it before.", "{he} thought it would be {bad_taste}."),
        talk=('"i do not want to eat it," said {name}.', '"just try one bite," said {his} {fam}.'),
        fix=("so {name} tried a little bite.", "{name} closed {his} eyes and took a bite."),
        after=("it was not bad at all. it was {good_taste}!", '"i like it!" said {name}. "it is not yucky at all!"'),
    ),
    dict(  # hurt knee
        trouble=("{name} ran too fast and fell down.", "{name} tripped over a {spot} and fell."),
        detail=("{he} hurt {his} knee.", "{his} knee was red and it hurt a lot."),
        talk=('"ouch!" cried {name}.', '"are you okay?" asked {name2}.'),
        fix=("{his} {fam} put a bandage on it and gave {him} a hug.", "{name2} helped {him} get up."),
        after=("soon it did not hurt anymore.", "{he} was brave and did not cry."),
    ),
    dict(  # cannot do something yet
        trouble=(
            "{name} wanted to {activity}, but {he} did not know how.",
            "{name} tried to {activity2}, but {he} could not do it.",
        ),
        detail=("{he} tried again and again.", "it was very hard."),
        talk=('"i can not do it," said {name}.', '"keep trying," said {name2}. "you can do it!"'),
        fix=("{he} practiced every day.", "{name2} showed {him} how to do it, step by step."),
        after=("at last, {he} could do it!", "it was not so hard after all."),
    ),
    dict(  # hurt animal
        trouble=(
            "{name} found a little {animal} with a hurt leg.",
            "a baby {animal} was lost and crying near the {spot}.",
        ),
        detail=("it could not walk.", "it was cold and scared."),
        talk=('"poor little {animal}," said {name}.', '"we must help it," said {name2}.'),
        fix=("they took care of it and gave it some {food}.", "they helped the {animal} find its mom."),
        after=("the {animal} was happy again.", "the {animal} was not scared anymore."),
    ),
    dict(  # lost on the way
        trouble=("{name} walked too far and did not know the way home.", "{name} got lost in the {place}."),
        detail=("all the trees looked the same.", "it was getting dark."),
        talk=('"i want to go home," said {name}.', '"follow me," said a {trait2} {animal}.'),
        fix=("{he} followed the {nature} and found the path.", "the {animal} showed {him} the way home."),
        after=("{his} {fam} was waiting at the door.", "{he} was home and safe."),
    ),
    dict(  # messy room
        trouble=("{name}'s room was very messy.", "there were toys all over the floor."),
        detail=("{he} did not want to clean it.", "{he} could not find anything."),
        talk=('"please clean your room," said {his} {fam}.', '"i do not like cleaning," said {name}.'),
        fix=("{name2} helped, and they made it a game.", "{he} put every {toy} back in the box."),
        after=("the room was clean and neat.", "cleaning was not so boring after all."),
    ),
    dict(  # scary new place
        trouble=("it was {name}'s first day at the {place}.", "{name} had to go to the {place} for the first time."),
        detail=("{he} did not know anyone.", "everything was big and new."),
        talk=('"i am scared," said {name}.', '"it will be fun," said {his} {fam}.'),
        fix=("a {trait2} {kind2} named {name2} came and said hello.", "{name} met a {trait2} {kind2} named {name2}."),
        after=("soon they were playing together.", "the {place} was not scary at all."),
    ),
)
