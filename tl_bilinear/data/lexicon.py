"""Word lists of the built-in story generator (``tl_bilinear.data.stories``).

Everything is lowercase. Lists are written as whitespace-separated strings (one entry
per word) or ``|``-separated strings (entries of several words). Activities are verb
phrases in the base form ("fly a kite"), used after "to" / "could".
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _phrases(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split("|") if p.strip())


GIRL_NAMES = _words("""
lily mia emma sophie lucy anna sara zoe ella grace ruby chloe amy maya nora ivy rose
daisy molly poppy hannah leah olivia ava isla freya alice clara julia nina tina lola
bella stella luna hazel violet iris willow hope joy faith sky rain summer autumn june
may april jenny kate katie lisa maria rosa elena sofia gina wendy penny holly polly
betty sally annie fiona tara kira mira lena greta heidi ingrid astrid elsa anya olga
dina nadia layla aisha fatima zara yasmin amira noor priya anika meera asha kiki mimi
coco fifi lulu susie trixie dora cora flora laura maude edith ada nell bonnie pearl
amber jade coral ginger honey candy cookie bea tess meg jess beth abby ellie millie
tilly evie josie rosie hattie lottie winnie dolly minnie pippa nola ora una vera
wren mabel opal iva uma yara sienna serena diana carla paula rita nancy peggy
agnes beatrice camille delia esme florence gemma harriet imogen juliet kitty lydia
martha nellie octavia phoebe quinn rosalind sadie thea ursula vivian winona xena
yvonne zelda alma bianca celeste dorothy eloise frida gloria helena irene jasmine
kayla lorna marina nadine odette petra rhea selma talia valerie wanda yolanda
zinnia aurora briony cassie dahlia elodie fern gwen hilda isabel jolene lark
adele blair cleo darcy eden fay gabby hester ida jill kay lila moira nessa orla
pia rae skye tamsin vida willa yara zia ariel brooke della effie gail hallie
""")

BOY_NAMES = _words("""
tom ben max sam jack leo finn tim jim bob joe dan alex noah liam oliver james henry
lucas ethan mason logan owen jacob caleb eli ryan adam peter paul mark luke john
mike nick rick steve tony billy bobby danny jimmy johnny timmy tommy teddy freddy
oscar felix hugo milo otto arlo rex rory jasper simon toby george harry charlie
archie alfie louie ollie ronnie ziggy buddy rocky dusty rusty spike chip pip kip
omar ali hassan yusuf amir karim ravi arjun dev raj kenji hiro kai ren taro jin
chen lee wei bao minh luis carlos diego pablo marco mateo hans karl lars sven ivan
boris igor pedro andre rafael tobias victor walter oscar frank ernie bert gus
hank ned ted zack cody kyle brad chad wade dean glen lenny benny kenny manny sonny
percy rupert basil cedric edgar giles horace jerome lionel morris nigel quentin
albert barney calvin dexter elliot ferdinand gilbert harvey isaac jonah kevin
leon martin nelson orville patrick quincy roland stanley theo umar vincent wesley
xavier yuri zane abel barry clyde duncan emmett floyd gordon hector ian jerry
kurt lowell monty norman otis phil ralph seth tucker ulric vernon warren yves
zeke angus bruno conrad derek edwin
ambrose bartholomew cyrus dmitri eamon fergus gideon hamish ignatius jethro kit
lorenzo magnus nico oswald piers reuben silas thaddeus upton virgil wilbur
""")

ANIMALS = _words("""
cat dog bunny rabbit bear fox owl frog duck mouse bird puppy kitten pig cow horse
sheep goat lamb chick hen rooster turtle fish squirrel deer hedgehog raccoon otter
beaver badger mole lion tiger elephant giraffe zebra monkey hippo panda koala
kangaroo penguin seal whale dolphin shark crab octopus snail butterfly bee ladybug
ant spider worm caterpillar dragonfly firefly parrot robin sparrow crow eagle swan
goose pony donkey camel llama wolf moose bat lizard snake dinosaur dragon unicorn
hamster gerbil ferret chipmunk skunk possum walrus puffin flamingo peacock toucan
alligator cheetah leopard rhino ostrich pelican seagull heron stork jellyfish
starfish seahorse lobster salamander toad newt mule buffalo bison yak hyena jaguar
panther lynx reindeer porcupine armadillo sloth lemur gorilla meerkat weasel vole
shrew wombat platypus beetle cricket grasshopper moth woodpecker hummingbird
""")

JOBS = _words("""
baker farmer doctor teacher painter fisherman sailor pilot builder gardener nurse
mailman firefighter policeman cook king queen prince princess wizard fairy giant
astronaut scientist mechanic carpenter plumber zookeeper beekeeper shepherd ranger
lifeguard chef waiter dentist artist poet magician acrobat juggler explorer inventor
detective drummer potter tailor weaver miller blacksmith goalkeeper captain astronomer
knight pirate clown singer dancer driver vet librarian shopkeeper grandpa grandma
""")

TRAITS = _words("""
kind brave shy curious friendly gentle clever funny silly smart polite helpful
quiet loud cheerful careful playful sleepy lazy busy bold honest caring thoughtful
sweet grumpy messy neat tidy chatty bouncy giggly wise young old little tiny small
big strong fast slow proud humble patient eager jolly lively cute fluffy fuzzy
spotty stripy cuddly clumsy cheeky happy sunny generous loyal daring timid
adventurous mischievous grateful sensible fearless dreamy hungry wiggly speedy tough
fancy noble graceful nimble plucky spunky zany dainty hardworking forgetful
""")

COLORS = _words("""
red blue green yellow orange purple pink brown black white gray gold silver
golden violet tan beige navy teal crimson lavender turquoise rainbow spotted striped
""")

LOOKS = _words("""
shiny soft bright round tall long short smooth bumpy fuzzy sparkly pretty lovely
beautiful huge giant wooden plastic heavy light warm cold wet dry clean dirty shiny
new old fancy plain magic special funny strange tiny little big colorful glittery
squishy fluffy hard bouncy sticky smelly noisy quiet secret hidden broken dusty
""")

TOYS = _phrases("""
ball|kite|doll|teddy bear|toy car|toy train|robot|puzzle|yo-yo|jump rope|top|drum
|whistle|balloon|boat|truck|plane|rocket|castle|block tower|crayon|paint set|book
|hat|scarf|red bike|scooter|wagon|marble|bucket|shovel|spade|sticker|puppet|dollhouse
|music box|toy horn|rubber duck|bubble wand|ribbon|bracelet|necklace|ring|crown
|wand|sword|shield|cape|mask|blanket|pillow|backpack|lunch box|umbrella|jar|box
|basket|bell|key|map|compass|flashlight|lantern|watch|clock|mirror|comb|brush
|button|coin
|card|letter|picture|drawing|painting|camera|phone|radio|guitar|piano|violin
|flute|trumpet|xylophone|harmonica|tambourine|toy boat|sailboat|toy bus|fire truck
|tractor|digger|race car|helicopter|spaceship|toy dinosaur|stuffed bunny|rag doll
|spinning top|kazoo|slinky|pinwheel|sandcastle|snow globe|toy farm|tea set|chalk
|notebook|pencil|glue|scissors|tape|clay|beads|string|rope|net|fishing rod|sled
|skateboard|skates|helmet|paintbrush|magnifying glass|telescope|binoculars
|kaleidoscope|hula hoop|frisbee|boomerang|trampoline|hammock|lantern light|toy piano
|wind chime|piggy bank|treasure box|birdhouse|fish tank|toy castle|toy soldier
|jigsaw|domino|dice|chess set|bowling pin|tricycle|unicycle|pogo stick|snorkel|boots|mittens|gloves|sweater|jacket|dress|shoes|socks
""")

FOODS = _phrases("""
apple|banana|cookie|cake|pie|bread|sandwich|soup|pizza|pasta|rice|carrot|pea
|broccoli|corn|potato|tomato|cheese|egg|pancake|waffle|muffin|cupcake|donut
|candy|lollipop|chocolate|ice cream|yogurt|milk|juice|tea|lemonade|honey|jam
|peanut butter|cereal|oatmeal|strawberry|blueberry|cherry|grape|orange|pear
|peach|plum|melon|watermelon|pineapple|mango|lemon|lime|coconut|nut|pumpkin
|bean|onion|pepper|cucumber|avocado|apricot|kiwi|fig|date|raisin|almond|walnut
|chestnut|hazelnut|turnip|radish|beet|celery|zucchini|eggplant|pretzel stick|pie crust
|cornbread|flatbread|omelet|quiche|risotto|lasagna|ravioli|granola|smoothie|milkshake
|custard|sorbet|brownie|macaron|marshmallow|caramel|toffee|licorice|gumdrop|lettuce|spinach|cabbage|mushroom|noodle|dumpling
|taco|burrito|bagel|pretzel|popcorn|cracker|biscuit|toast|butter|salad|stew
|fish pie|meatball|sausage|bun|roll|pudding|jelly|fudge|gingerbread|cinnamon roll
|berry tart|fruit salad|carrot cake|cheese pie|veggie soup|rice ball|sweet potato
""")

BAD_TASTES = _words("sour bitter yucky salty mushy slimy spicy gross stale cold burnt dry")
GOOD_TASTES = _words("yummy sweet tasty delicious warm fresh crunchy juicy creamy soft fluffy scrumptious")

#: Nouns that take "some" rather than "a".
MASS_NOUNS = frozenset(
    "grass mud sand snow ice moss rice soup bread cheese milk juice tea lemonade honey jam cereal oatmeal popcorn butter pudding jelly fudge string tape clay glue chalk corn".split()
)

PLACES = _phrases("""
park|forest|garden|beach|lake|river|pond|farm|field|meadow|hill|mountain|valley
|cave|zoo|school|library|market|shop|bakery|playground|town|village|city|castle
|jungle|desert|island|ocean|sea|woods|orchard|barn|backyard|yard|kitchen
|living room|bedroom|attic|basement|treehouse|tent|campsite|museum|circus|fair
|pool|swamp|snowy hill|sandbox|street|bridge|station|harbor|lighthouse|nest|den
|burrow|hive|greenhouse|toy shop|candy shop|pet shop|flower shop|ice rink|stage
|swing set|sports field|windmill|canyon|glacier|volcano|waterfall|riverbank
|seaside|harbor town|fishing boat|rooftop|balcony|courtyard|fountain|carousel
|toy museum|aquarium|planetarium|bus stop|train station|post office|fire station
|hospital|dentist|bookshop|bakery shop|farmers market|vegetable patch|pumpkin patch|big tree|old house|little house|cottage|castle garden
""")

HOMES = _phrases("""
little house|big house|small cottage|cozy cottage|blue house|red house|tall tower
|tree house|hole in a tree|burrow|nest|cabin|farm house|flat in the city|castle
|boat|hut|tent|yellow house|white house|house by the sea|house on a hill
""")

SPOTS = _phrases("""
bed|table|chair|sofa|couch|rug|box|basket|bush|tree|rock|log|bench|door|window
|fence|shelf|cupboard|closet|pillow|blanket|bucket|wagon|car|stairs|desk|toy box
|flower pot|slide|swing|hedge|pile of leaves|haystack|wall|gate|tent|drawer|sink
|mailbox|doormat|lamp|bathtub|stove|fridge|oven|piano|bookcase|wardrobe|chimney
|well|wheelbarrow|scarecrow|lamppost|signpost|tree stump|boulder|doghouse|porch
""")

NATURE = _phrases("""
tree|flower|rock|leaf|cloud|rainbow|star|moon|sun|river|puddle|mud|sand|snow|ice
|grass|bush|rose|tulip|daisy|sunflower|mushroom|shell|wave|hill|stone|log|stick
|feather|nest|egg|web|acorn|pinecone|seed|berry|vine|pond|stream|waterfall
|meadow|field|branch|root|petal|bud|weed|moss|fern|pebble|dewdrop|snowflake
""")

FAMILY = _phrases("""
mom|dad|mommy|daddy|mother|father|grandma|grandpa|granny|nana|sister|brother
|big sister|big brother|little sister|little brother|aunt|uncle|cousin|baby sister
""")

SOUNDS = _words("""
thud rattle jingle clang honk beep ding whistle sizzle snap pop whimper meow woof
bang boom crash thump bump creak squeak roar growl buzz hiss whoosh rumble knock
tap click splash crunch crack howl hoot chirp quack moo oink
""")

SCARY = _phrases("""
the dark|thunder|big dogs|loud noises|the monster under the bed|spiders|bees
|the deep water|the tall slide|the big waves|ghosts|the old attic|the night
|the big storm|strangers|the doctor|the vacuum cleaner|the wind|shadows|bats
""")

TIMES = _phrases("""
sunny morning|rainy morning|cold morning|warm afternoon|quiet evening|bright day
|windy day|snowy day|hot summer day|cool autumn day|spring morning|winter night
|sunny day|cloudy day|lazy sunday|busy monday|special day|starry night
""")

WEATHER = _phrases("""
the sun was shining|the sky was blue|the wind was blowing|it was very hot
|it was cold outside|it was a little cloudy|the birds were singing|snow was falling
|the air smelled like flowers|the leaves were falling|the grass was wet with dew
|there was not a cloud in the sky|it was not too hot and not too cold
""")

TOOLS = _phrases("""
glue|tape|a hammer|some string|a needle and thread|a little nail|a bandage
|a screwdriver|some paint|a rope|a stick|a ladder|a big stone|a brush
""")


BUGS = _words("ant bee ladybug beetle butterfly moth cricket grasshopper worm snail fly")

ACTIVITIES = _phrases("""
play in the sand|play with blocks|play hide and seek|play tag|play ball|play catch
|fly a kite|ride a bike|ride a scooter|build a sandcastle|build a fort|draw pictures
|paint pictures|read books|sing songs|dance|jump in puddles|climb trees|swim
|run in the grass|pick flowers|collect shells|collect leaves|look at the stars
|bake cookies|make cakes|help in the garden|water the plants|feed the ducks
|blow bubbles|skip rope|roll down the hill|splash in the water|chase butterflies
|look for bugs|watch the clouds|make music|play the drum|play the piano|go fishing
|go camping|go on walks|walk in the woods|explore the forest|explore the cave
|visit the zoo|visit grandma|tell stories|tell jokes|make friends|share toys
|count the stars|hum a song|bounce on the bed|slide down the slide|swing on the swing
|dig in the dirt|plant seeds|build with clay|fold paper boats|sail paper boats
|make a snowman|throw snowballs|skate on the ice|hop like a frog|race the wind
|roll a ball|stack cups|do puzzles|cook soup|wash the car|feed the cat
|brush the pony|pet the puppy|watch the fish|catch fireflies|eat ice cream
|eat apples|drink lemonade|wear a hat|wear a cape|pretend to be a pirate
|pretend to be a king|dress up|play dress up|make a card|write a letter
|hang lanterns|fix things|sweep the floor|fold clothes|set the table|wash the dishes
|help in the kitchen|ring the bell|lead the parade|march around|wave at the trains
|knit scarves|juggle balls|whistle tunes|polish shoes|build birdhouses|carve pumpkins
|paint fences|wrap presents|decorate cookies|string beads|weave baskets|ride the ponies
|row a boat|sail a raft|pick apples|pick berries|squeeze lemons|mash potatoes
|toss pancakes|sort buttons|arrange flowers|feed the chickens|milk the cow
|groom the horse|rake leaves|shovel snow|glue stickers|trace shapes|cut paper stars
|practice karate|do cartwheels|stretch like a cat|gallop like a horse|waddle like a penguin
|roar like a lion|whisper secrets|spin in circles|wiggle and giggle|tickle the baby
""")

MORALS = _phrases("""
sharing makes everyone happy|it is good to be kind to others|friends help each other
|you should always tell the truth|being brave is not about never being scared
|it is okay to ask for help|trying new things can be fun|patience is important
|hard work pays off|you should never give up|a good friend is a true treasure
|it is better to share than to fight|you should listen to your mom and dad
|things are not always as scary as they seem|being careful keeps you safe
|it is not bad to make mistakes|saying sorry can fix a lot of things
|every problem has a way out if you keep thinking|small things can make a big difference
|kindness is never wasted|it is fun to play together|being different is not a bad thing
|you do not have to be big to be brave|a smile can make a sad day better
|it is important to clean up after playing|helping others feels good
""")

NUMBERS = _words("two three four five six seven eight nine ten")

CLOTHES = _phrases("""
hat|scarf|cape|dress|boots|mittens|jacket|sweater|shoes|socks|raincoat|bow tie
|crown|apron|overalls|skirt|shirt|vest|gloves|pajamas|slippers|cap|sun hat|belt
""")

PETS = _words("cat dog bunny puppy kitten hamster fish turtle parrot pony duck mouse frog goat")

#: Irregular plurals; everything else follows the usual -s / -es / -ies rules.
IRREGULAR_PLURAL = dict(
    p.split(":")
    for p in """
mouse:mice sheep:sheep fish:fish goose:geese wolf:wolves leaf:leaves deer:deer
moose:moose scissors:scissors skates:skates boots:boots mittens:mittens gloves:gloves
shoes:shoes socks:socks beads:beads
""".split()
)


ADVERBS = _words("""
quickly slowly happily sadly carefully quietly loudly gently softly proudly bravely
kindly patiently eagerly sleepily slowly suddenly finally politely calmly nervously
shyly cheerfully merrily boldly curiously excitedly tightly quietly silently
""")

MOVES = _words("""
walked ran hopped skipped jumped raced zoomed tiptoed marched strolled wandered
waddled galloped trotted crawled climbed rolled danced flew swam rushed hurried
dashed bounced stomped sneaked paddled pedaled scooted wobbled
""")

PLACE_LOOKS = _words("""
noisy crowded peaceful sleepy busy muddy sandy grassy rocky shady windy foggy sunny
misty leafy snowy icy breezy enchanted ancient empty lonely friendly green wild
deep dark bright cozy chilly spooky magical gloomy calm pretty huge tiny quiet
""")

HAIR = _words("curly straight messy long short wavy fluffy shiny braided spiky")
EYE_COLORS = _words("blue green brown gray hazel black amber")

TREASURES = _phrases("""
treasure chest|golden key|old map|shiny coin|magic stone|secret letter|glass bottle
|silver bell|tiny door|hidden box|jewel|crystal|pearl|emerald|ruby ring|star-shaped rock
""")
