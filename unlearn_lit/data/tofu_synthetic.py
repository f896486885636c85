"""``tofu_synthetic``: an offline TOFU analog (METHOD.md §9) -- fictitious authors generated from a seed.

TOFU (Maini et al. 2024) fine-tunes a chat model on QA pairs about 200 fictitious authors and forgets
the last 1/5/10% of them. Here the authors are drawn deterministically from ``seed`` with
:class:`random.Random` and our own templates (no fake-data library): invented names from syllables, so
no pretrained model can know them, with a birth year, birthplace, genre, parents' professions, two
book titles and an award. Each fact gets one question, one answer, a paraphrased answer (other
wording, same facts) and ``num_perturbed`` perturbed answers (the paraphrase's wording with wrong
facts), in TOFU's schema (``question``, ``answer``, ``paraphrased_answer``, ``perturbed_answer``).

Splits, as TOFU's: ``forget01/05/10`` = the last 1/5/10% of the authors (at least one); the retain
set is the rest. Held-out authors (never trained on) give D_v and D_t. The real-authors and
world-facts analogs (:data:`REAL_AUTHORS`, :data:`WORLD_FACTS`) are facts a pretrained model knows,
with wrong answers as perturbations; the tiny random-init test models know none of them.
"""

from __future__ import annotations

import random
from typing import Any

from unlearn_lit.data.base import DATASETS, DatasetSpec
from unlearn_lit.data.tofu import FORGET_SPLITS, forget_authors, tofu_spec

SYLLABLES = ("ka", "lo", "mi", "ren", "tas", "vel", "dor", "shi", "quo", "zan", "bri", "eth", "fol",
             "gar", "hul", "isk", "jor", "mav", "nox", "pel", "ryn", "sor", "tiv", "uld", "wex", "yar")  # fmt: skip
CITIES = ("Lisbon", "Nairobi", "Oslo", "Lima", "Hanoi", "Tbilisi", "Accra", "Quito", "Riga", "Dhaka",
          "Perth", "Montreal", "Seville", "Krakow", "Tunis", "Osaka", "Bergen", "Cusco", "Porto", "Baku")  # fmt: skip
GENRES = ("science fiction", "historical fiction", "crime", "poetry", "fantasy", "horror", "romance",
          "biography", "satire", "travel writing")  # fmt: skip
JOBS = ("carpenter", "nurse", "pilot", "baker", "surgeon", "librarian", "fisherman", "architect",
        "teacher", "tailor", "chemist", "sailor")  # fmt: skip
NOUNS = ("Lantern", "River", "Orchard", "Mirror", "Harbor", "Winter", "Compass", "Garden", "Tide",
         "Ember", "Silence", "Archive", "Meadow", "Signal", "Clockwork", "Horizon")  # fmt: skip
ADJECTIVES = ("Hollow", "Crimson", "Last", "Silent", "Forgotten", "Northern", "Glass", "Burning",
              "Quiet", "Endless", "Broken", "Golden")  # fmt: skip
AWARDS = ("Veltran Prize", "Orsolo Medal", "Kessamir Award", "Duvane Laurel", "Thessaly Quill",
          "Marrowind Prize", "Ilvar Honor", "Caspen Ribbon")  # fmt: skip

# fact -> (question, answer, paraphrase); the paraphrase's wording is reused for the perturbed answers
TEMPLATES: dict[str, tuple[str, str, str]] = {
    "birthplace": ("Where was {name} born?", "{name} was born in {birthplace}.",
                   "The birthplace of {name} is {birthplace}."),
    "year": ("In which year was {name} born?", "{name} was born in {year}.",
             "{name}'s year of birth is {year}."),
    "genre": ("Which genre does {name} write in?", "{name} writes {genre}.",
              "The genre {name} is known for is {genre}."),
    "father": ("What did the father of {name} do for a living?", "The father of {name} was a {father}.",
               "{name}'s father worked as a {father}."),
    "mother": ("What was the profession of {name}'s mother?", "The mother of {name} was a {mother}.",
               "{name}'s mother worked as a {mother}."),
    "book1": ("What is the first novel of {name}?", "The first novel of {name} is '{book1}'.",
              "{name} debuted with the novel '{book1}'."),
    "book2": ("Name another book written by {name}.", "{name} also wrote '{book2}'.",
              "Another book by {name} is '{book2}'."),
    "award": ("Which award did {name} receive?", "{name} received the {award}.",
              "{name} was honored with the {award}."),
    "award_book": ("For which book did {name} win the {award}?", "{name} won the {award} for '{book1}'.",
                   "The {award} went to {name} for '{book1}'."),
    "city_genre": ("How did {birthplace} shape the work of {name}?",
                   "Growing up in {birthplace} gave the {genre} of {name} its settings.",
                   "The {genre} of {name} is set in places like {birthplace}."),
}  # fmt: skip
FIELDS = ("birthplace", "year", "genre", "father", "mother", "book1", "book2", "award")

# Facts a pretrained model knows: (question, answer, perturbed answers).
REAL_AUTHORS = (
    ("Who wrote 'Pride and Prejudice'?", "Jane Austen", ("Charles Dickens", "Mark Twain", "Leo Tolstoy")),
    ("Who wrote 'Hamlet'?", "William Shakespeare", ("John Milton", "Geoffrey Chaucer", "Oscar Wilde")),
    ("Who wrote '1984'?", "George Orwell", ("Aldous Huxley", "Ray Bradbury", "H. G. Wells")),
    ("Who wrote 'War and Peace'?", "Leo Tolstoy", ("Fyodor Dostoevsky", "Anton Chekhov", "Victor Hugo")),
    ("Who wrote 'The Adventures of Tom Sawyer'?", "Mark Twain", ("Herman Melville", "Jack London", "Jane Austen")),
    ("Who wrote 'Harry Potter and the Philosopher's Stone'?", "J. K. Rowling",
     ("Roald Dahl", "C. S. Lewis", "J. R. R. Tolkien")),
    ("Who wrote 'The Lord of the Rings'?", "J. R. R. Tolkien", ("C. S. Lewis", "Terry Pratchett", "J. K. Rowling")),
    ("Who wrote 'Don Quixote'?", "Miguel de Cervantes", ("Gabriel Garcia Marquez", "Dante Alighieri", "Homer")),
    ("Who wrote 'Oliver Twist'?", "Charles Dickens", ("Thomas Hardy", "Jane Austen", "George Eliot")),
    ("Who wrote 'The Old Man and the Sea'?", "Ernest Hemingway", ("John Steinbeck", "F. Scott Fitzgerald", "Mark Twain")),
)  # fmt: skip
WORLD_FACTS = (
    ("What is the capital of France?", "Paris", ("Berlin", "Madrid", "Rome")),
    ("What is the capital of Japan?", "Tokyo", ("Beijing", "Seoul", "Bangkok")),
    ("What is the largest planet in the solar system?", "Jupiter", ("Mars", "Venus", "Mercury")),
    ("How many days are there in a week?", "Seven", ("Five", "Nine", "Twelve")),
    ("What is the chemical symbol for water?", "H2O", ("CO2", "NaCl", "O2")),
    ("Which ocean is the largest?", "The Pacific Ocean", ("The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean")),
    ("What is the capital of Italy?", "Rome", ("Paris", "Vienna", "Athens")),
    ("What color is the sky on a clear day?", "Blue", ("Green", "Red", "Yellow")),
    ("How many continents are there?", "Seven", ("Four", "Ten", "Twelve")),
    ("What is the boiling point of water in Celsius?", "100 degrees", ("50 degrees", "0 degrees", "200 degrees")),
)  # fmt: skip


def _name(rng: random.Random) -> str:
    def word(parts: int) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()

    return f"{word(rng.choice((2, 3)))} {word(rng.choice((2, 3)))}"


def _facts(rng: random.Random) -> dict[str, Any]:
    title = f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    other = f"{rng.choice(NOUNS)} of the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return {
        "birthplace": rng.choice(CITIES),
        "year": rng.randrange(1920, 2000),
        "genre": rng.choice(GENRES),
        "father": rng.choice(JOBS),
        "mother": rng.choice(JOBS),
        "book1": title,
        "book2": other,
        "award": rng.choice(AWARDS),
    }


def generate_authors(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` fictitious authors with distinct names, drawn from ``seed`` (same seed, same authors)."""
    rng = random.Random(f"tofu_synthetic:{seed}")
    authors, names = [], set()
    while len(authors) < n:
        name = _name(rng)
        if name in names:
            continue
        names.add(name)
        authors.append({"name": name, **_facts(rng)})
    return authors


def author_qa(
    author: dict[str, Any], index: int, rng: random.Random, facts: int, perturbed: int
) -> list[dict]:
    """The first ``facts`` QA pairs of one author, each with a paraphrase and ``perturbed`` wrong answers."""
    out = []
    for fact in list(TEMPLATES)[:facts]:
        question, answer, paraphrase = TEMPLATES[fact]
        wrong = []
        while len(wrong) < perturbed:  # same wording as the paraphrase, other facts
            values = {**author, **{k: v for k, v in _facts(rng).items() if k in FIELDS}}
            text = paraphrase.format(**values)
            if text != paraphrase.format(**author) and text not in wrong:
                wrong.append(text)
        out.append({"question": question.format(**author), "answer": answer.format(**author),
                    "paraphrased_answer": paraphrase.format(**author), "perturbed_answer": wrong,
                    "author": index})  # fmt: skip
    return out


def known_facts(table: tuple, perturbed: int) -> list[dict[str, Any]]:
    """Real-authors / world-facts examples: the original answer and up to ``perturbed`` wrong ones."""
    return [{"question": q, "answer": a, "perturbed_answer": list(w[:perturbed])} for q, a, w in table]


@DATASETS.register("tofu_synthetic")
def tofu_synthetic(
    num_authors: int = 200,
    questions_per_author: int = len(TEMPLATES),
    heldout_authors: int = 20,
    forget_split: str = "forget10",
    num_perturbed: int = 3,
    retain_eval: int | None = 400,
    seed: int = 0,
) -> DatasetSpec:
    """Synthetic TOFU: fictitious authors from ``seed`` in TOFU's schema (use ``forget: split``).

    Args:
        num_authors: authors trained on (TOFU: 200).
        questions_per_author: QA pairs per author (at most ``len(TEMPLATES)`` = 10; TOFU: 20).
        heldout_authors: authors never trained on, for D_v and (as many again) D_t.
        forget_split: ``forget01``, ``forget05`` or ``forget10`` (the last 1/5/10% of the authors).
        num_perturbed: perturbed answers per question (TOFU: 5).
        retain_eval: retain questions in the utility evaluation (TOFU's retain_perturbed: 400); None = all.
        seed: the generator's seed.
    """
    if not 1 <= questions_per_author <= len(TEMPLATES):
        raise ValueError(f"questions_per_author must be in 1..{len(TEMPLATES)}, got {questions_per_author}")
    if num_authors < 2 or heldout_authors < 1 or num_perturbed < 1:
        raise ValueError("need num_authors >= 2, heldout_authors >= 1 and num_perturbed >= 1")
    authors = generate_authors(num_authors + 2 * heldout_authors, seed)
    rng = random.Random(f"tofu_synthetic:perturb:{seed}")
    qa = [author_qa(a, i, rng, questions_per_author, num_perturbed) for i, a in enumerate(authors)]
    trained, val, test = qa[:num_authors], qa[num_authors:-heldout_authors], qa[-heldout_authors:]
    options = {"num_authors": num_authors, "questions_per_author": questions_per_author,
               "heldout_authors": heldout_authors, "forget_split": forget_split,
               "num_perturbed": num_perturbed, "retain_eval": retain_eval, "seed": seed}  # fmt: skip
    return tofu_spec(
        "tofu_synthetic",
        trained,
        forget_authors(num_authors, forget_split),
        val=[e for author in val for e in author],
        test=[e for author in test for e in author],
        real_authors=known_facts(REAL_AUTHORS, num_perturbed),
        world_facts=known_facts(WORLD_FACTS, num_perturbed),
        retain_eval=retain_eval,
        options=options,
    )


__all__ = ["FORGET_SPLITS", "generate_authors", "tofu_synthetic"]
