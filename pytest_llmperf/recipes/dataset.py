"""Deterministic synthetic food/drink extraction dataset (in the spirit of FoodExtract-1k).

Each row pairs a free-text ``sequence`` (photo caption, menu line or diary snippet)
with ``label_condensed``, a compact extraction of the food and drink items it
mentions, in order of mention:

    food: tomato soup, garlic bread | drink: black coffee
    food: croissant
    drink: green tea, orange juice
    none

Run ``python -m pytest_llmperf.recipes.dataset`` to (re)write the shipped jsonl;
the output is byte-identical across runs and platforms.
"""

from __future__ import annotations

import json
import random

from ..model.builtin import DATASET_FILE

SEED = 1234
NUM_ROWS = 1000
NONE_FRACTION = 0.2
OUTPUT_FILE = DATASET_FILE

# Foods grouped by the serving phrases that read naturally with them.
BOWL_FOODS = [
    "tomato soup", "miso soup", "chicken noodle soup", "lentil soup", "caesar salad",
    "greek salad", "fruit salad", "oatmeal", "ramen", "chili con carne", "fried rice",
    "poke bowl", "greek yogurt", "beef stew", "clam chowder", "mashed potatoes",
]
PLATE_FOODS = [
    "spaghetti carbonara", "lasagna", "grilled salmon", "roast chicken", "beef tacos",
    "pad thai", "chicken curry", "pancakes", "waffles", "scrambled eggs", "sushi rolls",
    "steak frites", "vegetable stir fry",
    "shrimp risotto", "dumplings", "nachos", "chicken wings",
]
SLICE_FOODS = [
    "pepperoni pizza", "margherita pizza", "chocolate cake", "apple pie", "cheesecake",
    "banana bread", "garlic bread", "sourdough toast", "lemon tart", "carrot cake",
]
# Countable foods, mentioned with an indefinite article ("a croissant").
SINGLE_FOODS = [
    "croissant", "bagel", "blueberry muffin", "glazed donut", "hot dog", "burrito",
    "apple", "banana", "chocolate chip cookie", "cinnamon roll", "pretzel", "brownie",
    "falafel wrap", "egg sandwich", "cheeseburger", "veggie burger",
    "pulled pork sandwich", "club sandwich",
]
HOT_DRINKS = [
    "black coffee", "green tea", "hot chocolate", "cappuccino", "espresso",
    "chai latte", "earl grey tea", "flat white", "matcha latte", "peppermint tea",
]
COLD_DRINKS = [
    "orange juice", "apple juice", "red wine", "white wine", "lemonade", "iced tea",
    "sparkling water", "tap water", "whole milk", "mango smoothie",
    "strawberry milkshake", "iced coffee",
]
BOTTLED_DRINKS = [
    "craft beer", "cola", "ginger ale", "kombucha", "coconut water", "root beer",
    "lager", "cider",
]

SERVINGS = {
    "bowl": ["a bowl of", "a big bowl of", "a small bowl of", "a cup of"],
    "plate": ["a plate of", "a portion of", "a heaping plate of", "some"],
    "slice": ["a slice of", "two slices of", "a piece of", "a thick slice of"],
    "hot": ["a cup of", "a mug of", "a steaming mug of", "a small cup of"],
    "cold": ["a glass of", "a tall glass of", "a jug of", "a carafe of"],
    "bottled": ["a bottle of", "a can of", "a pint of", "a cold bottle of"],
}
FOOD_KINDS = [("bowl", BOWL_FOODS), ("plate", PLATE_FOODS), ("slice", SLICE_FOODS),
              ("single", SINGLE_FOODS)]
DRINK_KINDS = [("hot", HOT_DRINKS), ("cold", COLD_DRINKS), ("bottled", BOTTLED_DRINKS)]
FOODS = [(kind, name) for kind, names in FOOD_KINDS for name in names]
DRINKS = [(kind, name) for kind, names in DRINK_KINDS for name in names]

SURFACES = ["wooden table", "marble counter", "picnic blanket", "kitchen island",
            "metal tray", "checkered tablecloth", "stone bench", "glass table"]
PLACES = ["a small cafe", "the office", "a roadside diner", "grandma's house",
          "the beach", "a food court", "a hotel lobby", "the train station",
          "a rooftop bar", "the park", "a night market", "the airport"]
MEALS = ["breakfast", "lunch", "dinner", "brunch", "a late snack", "supper"]
PEOPLE = ["my sister", "an old friend", "the team", "my parents", "a colleague",
          "the kids", "my neighbour", "nobody in particular"]
MOODS = ["Felt great.", "Way too much.", "Would order again.", "Not bad at all.",
         "A bit overpriced.", "Perfect for a rainy day.", "", ""]
LIGHTING = ["in warm evening light", "under bright studio lights", "in soft morning light",
            "next to a window", "shot from above", "slightly out of focus"]

# Templates for rows with any mix of items; {items} lists foods then drinks.
ITEM_TEMPLATES = [
    "A {surface} with {items}.",
    "Close-up photo of {items} on a {surface}, {lighting}.",
    "{Items} served at {place}.",
    "Overhead shot of {items} {lighting}.",
    "Menu board at {place}: {items}.",
    "Today's special: {items}, only ${price}.",
    "Had {items} for {meal} at {place} with {people}. {mood}",
    "Dear diary, {meal} today was {items}. {mood}",
    "Order #{number}: {items}, table {table}.",
    "Instagram post from {place} showing {items}.",
    "Picked up {items} before the meeting. {mood}",
    "Room service brought {items} at {hour} o'clock.",
]
# Templates that mention foods and drinks in separate slots (need both).
SPLIT_TEMPLATES = [
    "{Foods} on a {surface}, next to {drinks}.",
    "{Meal_cap} at {place}: {foods}, washed down with {drinks}.",
    "Combo #{number}: {foods} plus {drinks} for ${price}.",
    "Ate {foods} with {people} and we shared {drinks}. {mood}",
    "Grabbed {drinks} on the way, then {foods} at {place}.",
]

COLORS = ["red", "blue", "rusty", "yellow", "vintage", "shiny black", "green", "white"]
OBJECTS = ["bicycle", "car", "umbrella", "backpack", "kite", "sailboat", "bench",
           "street lamp", "guitar", "laptop", "armchair", "motorcycle", "scooter"]
POSES = ["leaning against", "parked next to", "resting on", "lying beside",
         "standing under", "half hidden behind"]
LANDMARKS = ["a brick wall", "an old oak tree", "the front door", "a snowy fence",
             "a crowded bus stop", "a graffiti mural", "the lighthouse", "a wooden pier"]
ANIMALS = ["A golden retriever", "A tabby cat", "Two pigeons", "A sleepy fox",
           "A herd of goats", "A black horse"]
ANIMAL_ACTIONS = ["sleeping on a porch", "crossing a quiet street", "sitting in the snow",
                  "watching the sunset", "playing in a field of tall grass"]
ACTIVITIES = ["cleaning the garage", "hiking up the ridge", "fixing the printer",
              "reading in the garden", "painting the fence", "answering emails",
              "walking along the river"]
SCENES = ["Sunset over a quiet harbor with fishing boats.",
          "A foggy mountain road winding through pine trees.",
          "Empty kitchen with the lights switched off.",
          "Opening hours: Monday to Friday, nine to five.",
          "Children flying kites on a windy hill.",
          "A library reading room full of students.",
          "Rain streaking down a train window at night.",
          "The menu was closed for renovation, so we left."]
NONE_TEMPLATES = [
    "A {color} {object} {pose} {landmark}.",
    "{animal} {animal_action}.",
    "Spent the morning {activity} with {people}. {mood}",
    "Dear diary, {activity} took all afternoon. {mood}",
    "Photo of a {color} {object} at {place}, {lighting}.",
    "{scene}",
]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _mention(rng: random.Random, kind: str, name: str) -> str:
    """How an item appears in the text: with a serving phrase, an article or bare."""
    if kind == "single":
        return f"{_article(name)} {name}"
    if rng.random() < 0.3:
        return name
    return f"{rng.choice(SERVINGS[kind])} {name}"


def _join(parts: list[str]) -> str:
    """English list: "a", "a and b", "a, b and c"."""
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def _label(foods: list[str], drinks: list[str]) -> str:
    parts = []
    if foods:
        parts.append("food: " + ", ".join(foods))
    if drinks:
        parts.append("drink: " + ", ".join(drinks))
    return " | ".join(parts) or "none"


def _fill(rng: random.Random, template: str, **slots: str) -> str:
    """Fill a template with the given slots plus random scene details."""
    meal = rng.choice(MEALS)
    details = {
        "surface": rng.choice(SURFACES), "place": rng.choice(PLACES), "meal": meal,
        "Meal_cap": _capitalize(meal), "people": rng.choice(PEOPLE),
        "mood": rng.choice(MOODS), "lighting": rng.choice(LIGHTING),
        "price": f"{rng.randint(4, 29)}.{rng.choice(['00', '50', '95', '99'])}",
        "number": str(rng.randint(1, 99)), "table": str(rng.randint(1, 40)),
        "hour": str(rng.randint(6, 11)), "color": rng.choice(COLORS),
        "object": rng.choice(OBJECTS), "pose": rng.choice(POSES),
        "landmark": rng.choice(LANDMARKS), "animal": rng.choice(ANIMALS),
        "animal_action": rng.choice(ANIMAL_ACTIONS), "activity": rng.choice(ACTIVITIES),
        "scene": rng.choice(SCENES),
    }
    # Empty moods leave a trailing space behind; strip it.
    return template.format(**details, **slots).strip()


def _food_row(rng: random.Random) -> dict[str, str]:
    n_items = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
    n_drinks = rng.randint(0, min(2, n_items))
    foods = rng.sample(FOODS, n_items - n_drinks)
    drinks = rng.sample(DRINKS, n_drinks)
    food_text = [_mention(rng, kind, name) for kind, name in foods]
    drink_text = [_mention(rng, kind, name) for kind, name in drinks]
    if foods and drinks and rng.random() < 0.4:
        foods_str, drinks_str = _join(food_text), _join(drink_text)
        sequence = _fill(rng, rng.choice(SPLIT_TEMPLATES), foods=foods_str,
                         drinks=drinks_str, Foods=_capitalize(foods_str))
    else:
        items = _join(food_text + drink_text)
        sequence = _fill(rng, rng.choice(ITEM_TEMPLATES), items=items,
                         Items=_capitalize(items))
    return {"sequence": sequence,
            "label_condensed": _label([n for _, n in foods], [n for _, n in drinks])}


def generate(seed: int = SEED, num_rows: int = NUM_ROWS) -> list[dict[str, str]]:
    """Return ``num_rows`` rows, fully determined by ``seed``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(num_rows):
        if rng.random() < NONE_FRACTION:
            rows.append({"sequence": _fill(rng, rng.choice(NONE_TEMPLATES)),
                         "label_condensed": "none"})
        else:
            rows.append(_food_row(rng))
    return rows


def to_jsonl(rows: list[dict[str, str]]) -> bytes:
    """Serialize rows as UTF-8 jsonl with a fixed key order."""
    lines = [json.dumps({"sequence": r["sequence"], "label_condensed": r["label_condensed"]},
                        ensure_ascii=False) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def main() -> None:
    OUTPUT_FILE.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT_FILE.write_bytes(to_jsonl(generate()))
    print(f"wrote {OUTPUT_FILE}")


if __name__ == "__main__":
    main()
