"""Build the labelled set the claim checker is calibrated and measured on.

    scripts/uv run python benchmarks/claims_set.py    # writes benchmarks/data/claims/pairs.jsonl

Each line: {"id", "lang", "kind", "statement", "passage", "source", "supports", "split"}.
Passages are real text from ../shared/corpus: Code civil articles ("Article N" + its text,
as a dossier passage carries its label) and numbered paragraphs of Cour de cassation
decisions. Statements are derived from them by rules (below), and, in English, written by
hand for this set: they are my own faithful translations of the French articles, not
official ones.

Kinds (supports = true):
- quotation: a sentence of the passage, alone or introduced ("Selon l'article N, ...");
- paraphrase: a sentence rewritten by meaning-preserving rules (synonyms, "doit" -> "est
  tenu de", number words <-> digits), or an English translation.
Kinds (supports = false), the hard negatives:
- number: a number of the statement changed ("deux ans" -> "trois ans", a date's day);
- period: the unit of a duration changed ("deux ans" -> "deux mois");
- article: the statement names another article than the passage's;
- party: a role or a party swapped ("le vendeur" <-> "l'acheteur", "M. [K]" -> "M. [V]");
- neighbour: a sentence of a neighbouring article (same chapter) or paragraph (same
  decision), attributed to this passage.

Split: by source (every pair of one article or decision paragraph goes to the same half),
half dev, half held-out, seeded: the checker's thresholds are tuned on dev only.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

SEED = 20
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus")
OUT = Path(__file__).resolve().parent / "data" / "claims" / "pairs.jsonl"
ARTICLES = 110  # Code civil articles sampled
PARAGRAPHS = 90  # decision paragraphs sampled

# ------------------------------------------------------------------ rewriting rules
_FR_NUMBERS = [
    "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "quinze",
    "dix-huit", "vingt", "trente", "soixante",
]  # fmt: skip
_FR_VALUES = {"deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
              "neuf": 9, "dix": 10, "quinze": 15, "dix-huit": 18, "vingt": 20, "trente": 30,
              "soixante": 60}  # fmt: skip
_FR_PERIODS = {"ans": "mois", "an": "mois", "mois": "ans", "jours": "mois", "semaines": "jours",
               "années": "mois", "année": "semaine"}  # fmt: skip
_PARAPHRASES = [
    (r"\bne peut être\b", "ne saurait être"),
    (r"\bne peuvent être\b", "ne sauraient être"),
    (r"\bne peut\b", "ne saurait"),
    (r"\best tenu de\b", "doit"),
    (r"\bToutefois\b", "Cependant"),
    (r"\bNéanmoins\b", "Cependant"),
    (r"\blorsque\b", "quand"),
    (r"\bà compter du\b", "à partir du"),
    (r"\bà compter de\b", "à partir de"),
    (r"\bafin de\b", "pour"),
    (r"\ben vertu de\b", "selon"),
    (r"\bTout propriétaire\b", "Chaque propriétaire"),
    (r"\bToute personne\b", "Chaque personne"),
    (r"\bmutuellement\b", "réciproquement"),
    (r"\bsans délai\b", "immédiatement"),
    (r"\bdoit\b", "est tenu de"),
    (r"\bdoivent\b", "sont tenus de"),
    (r"\bpeut\b", "a la faculté de"),
    (r"\bpeuvent\b", "ont la faculté de"),
    (r"\bLes époux\b", "Les conjoints"),
    (r"\bdemeure\b", "reste"),
    (r"\bcependant\b", "toutefois"),
    (r"\bnotamment\b", "en particulier"),
    (r"\bégalement\b", "aussi"),
    (r"\bla cour d'appel\b", "les juges d'appel"),
    (r"\bl'arrêt\b", "la décision"),
]
# "de être" -> "d'être" after a rewrite.
_ELISION = re.compile(r"\b(de|ne) ([aeiouyéèêâîôûh])", re.IGNORECASE)
_ROLE_SWAPS = [
    ("vendeur", "acheteur"), ("bailleur", "preneur"), ("créancier", "débiteur"),
    ("donateur", "donataire"), ("mandant", "mandataire"), ("usufruitier", "nu-propriétaire"),
    ("employeur", "salarié"), ("demandeur", "défendeur"), ("tuteur", "mineur"),
    ("propriétaire", "locataire"),
]  # fmt: skip

# English statements: my own faithful translations of the articles (not official ones).
EN: list[tuple[str, str]] = [
    ("144", "Marriage cannot be contracted before the age of eighteen."),
    ("146", "There is no marriage when there is no consent."),
    ("212", "Spouses owe each other respect, fidelity, support and assistance."),
    ("213", "Spouses together ensure the moral and material direction of the family."),
    ("215", "Spouses are mutually bound to a community of life."),
    ("230", "Divorce may be requested jointly by the spouses when they agree on the "
            "breakdown of the marriage and its effects."),
    ("371", "A child, at any age, owes honour and respect to their father and mother."),
    ("544", "Ownership is the right to enjoy and dispose of things in the most absolute "
            "manner, provided they are not used in a way prohibited by laws or regulations."),
    ("545", "No one may be compelled to give up their property except for public utility "
            "and in return for fair and prior compensation."),
    ("552", "Ownership of the ground carries ownership of what is above and below it."),
    ("637", "A servitude is a charge imposed on an estate for the use and benefit of an "
            "estate belonging to another owner."),
    ("815", "No one can be compelled to remain in joint ownership, and partition may always "
            "be requested."),
    ("1101", "A contract is an agreement by which one or more persons bind themselves "
             "towards one or more others to give, to do or not to do something."),
    ("1108", "Four conditions are essential for the validity of an agreement."),
    ("1134", "Lawfully formed agreements take the place of law for those who made them."),
    ("1134", "Agreements must be performed in good faith."),
    ("1315", "Whoever claims the performance of an obligation must prove it."),
    ("1382", "Any act of a person that causes damage to another obliges the person through "
             "whose fault it occurred to repair it."),
    ("1383", "Everyone is liable for the damage they cause not only by their own act but "
             "also by their negligence or imprudence."),
    ("1386", "The owner of a building is liable for the damage caused by its collapse when "
             "it results from a lack of maintenance or a construction defect."),
    ("1582", "A sale is an agreement by which one party undertakes to deliver a thing and "
             "the other to pay for it."),
    ("1641", "The seller must guarantee against hidden defects of the thing sold that make "
             "it unfit for its intended use."),
    ("1648", "An action for latent defects must be brought by the buyer within two years "
             "of discovering the defect."),
    ("1709", "The lease of things is a contract by which one party undertakes to let the "
             "other enjoy a thing for a certain time in return for a certain price."),
    ("1728", "The tenant is bound by two main obligations."),
    ("1737", "A lease made in writing ends automatically when the agreed term expires, "
             "with no need to give notice."),
    ("1965", "The law grants no action for a gambling debt or for the payment of a bet."),
    ("2044", "A settlement is a contract by which the parties end an existing dispute or "
             "prevent a future one."),
    ("2044", "This contract must be made in writing."),
    ("2224", "Personal actions and actions concerning movables are time-barred after five "
             "years from the day the right holder knew or should have known the facts "
             "allowing them to exercise it."),
    ("2232", "Postponing, suspending or interrupting prescription cannot extend the "
             "extinctive prescription period beyond twenty years from the day the right "
             "arose."),
    ("2272", "The limitation period required to acquire ownership of real property is "
             "thirty years."),
    ("2272", "A person who acquires real property in good faith and with just title "
             "acquires ownership by prescription after ten years."),
    ("2276", "As regards movables, possession is equivalent to title."),
    ("2276", "A person who has lost a thing or had it stolen may claim it back for three "
             "years from the day of the loss or theft."),
]  # fmt: skip
# Articles on one topic: an English statement is a neighbour negative for the others.
EN_TOPICS = [
    ["144", "146", "212", "213", "215", "230", "371"],
    ["544", "545", "552", "637", "815"],
    ["1101", "1108", "1134", "1315", "1965", "2044"],
    ["1382", "1383", "1386"],
    ["1582", "1641", "1648", "1709", "1728", "1737"],
    ["2224", "2232", "2272", "2276"],
]
_EN_NUMBER_SWAPS = [
    ("eighteen", "sixteen"), ("two years", "three years"), ("five years", "ten years"),
    ("twenty years", "thirty years"), ("thirty years", "twenty years"),
    ("ten years", "fifteen years"), ("three years", "two years"), ("Four", "Three"),
    ("two main", "three main"),
]  # fmt: skip
_EN_PERIOD_SWAPS = [("years", "months")]
_EN_ROLE_SWAPS = [("seller", "buyer"), ("buyer", "seller"), ("tenant", "landlord"),
                  ("owner", "tenant")]  # fmt: skip


def sentences(text: str) -> list[str]:
    """Sentences of a passage (a full stop, then a capital), stripped of list markers."""
    out = []
    for line in text.splitlines():
        for piece in re.split(r"(?<=[.;:])\s+(?=[A-ZÀ-Ý])", line.strip()):
            piece = re.sub(r"^(?:\d+°|-)\s*", "", piece).strip()
            if 50 <= len(piece) <= 320 and piece[0].isupper() and piece[-1] in ".;":
                out.append(piece.rstrip(";").rstrip() + ("" if piece.endswith(".") else "."))
    return out


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 3}


def near_duplicate(a: str, b: str) -> bool:
    """A neighbour sentence that repeats the passage is not a negative."""
    wa, wb = words(a), words(b)
    return not wa or len(wa & wb) / len(wa) >= 0.7


def lower_first(text: str) -> str:
    """ "Le mariage ..." -> "le mariage ..." after an introduction; an acronym stays."""
    return text if re.match(r"[A-ZÀ-Ý]{2}", text) else text[0].lower() + text[1:]


def _has_number(text: str) -> bool:
    return bool(re.search(r"(?<![\w.])\d{1,4}(?![\w.,-])", text)) or any(
        re.search(rf"\b{w}\b", text) for w in _FR_NUMBERS
    )


def change_number(text: str, rng: random.Random) -> str | None:
    words_found = [w for w in _FR_NUMBERS if re.search(rf"\b{w}\b", text)]
    digits = re.findall(r"(?<![\w.-])\d{1,4}(?![\w.,-])", text)
    if words_found:
        word = rng.choice(words_found)
        others = [w for w in _FR_NUMBERS if _FR_VALUES[w] != _FR_VALUES[word] and "-" not in w]
        return re.sub(rf"\b{word}\b", rng.choice(others), text, count=1)
    if digits:
        d = rng.choice(digits)
        changed = str(int(d) + rng.choice([1, 2, 3]))
        return re.sub(rf"(?<![\w.-]){d}(?![\w.,-])", changed, text, count=1)
    return None


def change_period(text: str) -> str | None:
    for number in [*_FR_NUMBERS, r"\d+"]:
        m = re.search(rf"\b({number})\s+(ans|an|mois|jours|semaines|années|année)\b", text)
        if m:
            return text[: m.start(2)] + _FR_PERIODS[m.group(2)] + text[m.end(2) :]
    return None


def paraphrase(text: str) -> str | None:
    out = text
    for pattern, repl in _PARAPHRASES:
        out = re.sub(pattern, repl, out)
    for word, value in _FR_VALUES.items():
        out = re.sub(rf"\b{word} (ans|mois|jours)\b", rf"{value} \1", out)
    out = _ELISION.sub(lambda m: m.group(1)[0] + "'" + m.group(2), out)
    return out if out != text else None


def swap_role(text: str) -> str | None:
    for a, b in _ROLE_SWAPS:
        for x, y in ((a, b), (b, a)):
            if re.search(rf"\b{x}\b", text):
                return re.sub(rf"\b{x}\b", y, text, count=1)
    return None


# ------------------------------------------------------------------ sources
def code_civil() -> list[tuple[str, str, str]]:
    """(number, folder, passage) of every article, in path order."""
    out = []
    for path in sorted((CORPUS / "code-civil").rglob("article-*.md")):
        number = path.stem.removeprefix("article-")
        body = path.read_text(encoding="utf-8").split("\n", 1)[1].strip()
        out.append((number, str(path.parent), f"Article {number}\n{body}"))
    return out


def decision_paragraphs() -> list[tuple[str, int, str]]:
    """(decision id, paragraph number, text) of the numbered paragraphs of each decision."""
    out = []
    for path in sorted((CORPUS / "judgments").glob("*.txt")):
        for m in re.finditer(r"^(\d{1,3})\. (.{80,900})$", path.read_text(encoding="utf-8"), re.M):
            out.append((path.stem, int(m.group(1)), m.group(2).strip()))
    return out


def pair(lang: str, kind: str, statement: str, passage: str, source: str) -> dict[str, object]:
    return {
        "lang": lang,
        "kind": kind,
        "statement": statement,
        "passage": passage,
        "source": source,
        "supports": kind in ("quotation", "paraphrase"),
    }


def article_pairs(rng: random.Random) -> Iterator[dict[str, object]]:
    articles = code_civil()
    by_folder: dict[str, list[int]] = {}
    for i, (_, folder, _) in enumerate(articles):
        by_folder.setdefault(folder, []).append(i)
    eligible = [i for i, a in enumerate(articles) if sentences(a[2].split("\n", 1)[1])]
    # Numbers are where a wrong answer hurts most: 40 % of the articles carry one.
    numbered = [i for i in eligible if _has_number(articles[i][2].split("\n", 1)[1])]
    chosen = set(rng.sample(numbered, min(len(numbered), ARTICLES * 2 // 5)))
    chosen |= set(rng.sample([i for i in eligible if i not in chosen], ARTICLES - len(chosen)))
    for i in sorted(chosen):
        number, folder, passage = articles[i]
        source = f"code-civil:{number}"
        found = sentences(passage.split("\n", 1)[1])
        sentence = rng.choice([s for s in found if _has_number(s)] or found)
        yield pair("fr", "quotation", sentence, passage, source)
        intro = rng.choice([f"Selon l'article {number}, ", f"L'article {number} dispose que ",
                            "Le Code civil prévoit que "])  # fmt: skip
        yield pair("fr", "quotation", intro + lower_first(sentence), passage, source)
        if (p := paraphrase(sentence)) is not None:
            yield pair("fr", "paraphrase", p, passage, source)
            yield pair("fr", "paraphrase", intro + lower_first(p), passage, source)
        if (n := change_number(sentence, rng)) is not None:
            yield pair("fr", "number", n, passage, source)
            yield pair("fr", "number", intro + lower_first(n), passage, source)
        if (p := change_period(sentence)) is not None:
            yield pair("fr", "period", p, passage, source)
        if (r := swap_role(sentence)) is not None:
            yield pair("fr", "party", r, passage, source)
        other = articles[rng.choice([j for j in by_folder[folder] if j != i] or [i - 1])][0]
        yield pair("fr", "article", f"Selon l'article {other}, {lower_first(sentence)}",
                   passage, source)  # fmt: skip
        neighbours = [j for j in by_folder[folder] if j != i and abs(j - i) <= 3]
        for j in rng.sample(neighbours, min(1, len(neighbours))):
            candidates = [s for s in sentences(articles[j][2].split("\n", 1)[1])
                          if not near_duplicate(s, passage)]  # fmt: skip
            if candidates:
                s = rng.choice(candidates)
                s = rng.choice([s, f"Selon l'article {number}, {lower_first(s)}"])
                yield pair("fr", "neighbour", s, passage, source)


def judgment_pairs(rng: random.Random) -> Iterator[dict[str, object]]:
    paragraphs = decision_paragraphs()
    eligible = [i for i, p in enumerate(paragraphs) if sentences(p[2])]
    for i in sorted(rng.sample(eligible, PARAGRAPHS)):
        decision, number, passage = paragraphs[i]
        source = f"{decision}:{number}"
        found = sentences(passage)
        sentence = rng.choice([s for s in found if _has_number(s)] or found)
        yield pair("fr", "quotation", sentence, passage, source)
        if (p := paraphrase(sentence)) is not None:
            yield pair("fr", "paraphrase", p, passage, source)
        if (n := change_number(sentence, rng)) is not None:
            yield pair("fr", "number", n, passage, source)
        parties = re.findall(r"\b(M\.|Mme) \[([A-Z]{1,3})\]", sentence)
        if parties:
            title, letters = parties[0]
            other = rng.choice([c for c in "BCDEGHJLNPQSTVWXYZ" if c != letters])
            swapped = sentence.replace(f"{title} [{letters}]", f"{title} [{other}]", 1)
            yield pair("fr", "party", swapped, passage, source)
        elif (r := swap_role(sentence)) is not None:
            yield pair("fr", "party", r, passage, source)
        same = [
            j
            for j in range(i - 2, i + 3)
            if 0 <= j < len(paragraphs) and j != i and paragraphs[j][0] == decision
        ]
        for j in same[:1]:
            candidates = [s for s in sentences(paragraphs[j][2]) if not near_duplicate(s, passage)]
            if candidates:
                yield pair("fr", "neighbour", rng.choice(candidates), passage, source)


def english_pairs(rng: random.Random) -> Iterator[dict[str, object]]:
    texts = {number: passage for number, _, passage in code_civil()}
    for number, statement in EN:
        passage, source = texts[number], f"code-civil:{number}"
        yield pair("en", "paraphrase", statement, passage, source)
        yield pair("en", "paraphrase", f"Under article {number}, {lower_first(statement)}",
                   passage, source)  # fmt: skip
        for a, b in _EN_NUMBER_SWAPS:
            if a in statement:
                yield pair("en", "number", statement.replace(a, b, 1), passage, source)
                break
        for a, b in _EN_PERIOD_SWAPS:
            if a in statement:
                yield pair("en", "period", statement.replace(a, b, 1), passage, source)
        for a, b in _EN_ROLE_SWAPS:
            if re.search(rf"\b{a}\b", statement):
                swapped = re.sub(rf"\b{a}\b", b, statement, count=1)
                yield pair("en", "party", swapped, passage, source)
                break
        topic = next(t for t in EN_TOPICS if number in t)
        other = rng.choice([n for n in topic if n != number])
        yield pair("en", "article", f"Under article {other}, {lower_first(statement)}",
                   passage, source)  # fmt: skip
        neighbours = [s for n, s in EN if n in topic and n != number]
        for s in rng.sample(neighbours, min(2, len(neighbours))):
            yield pair("en", "neighbour", s, passage, source)


def build() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    pairs = [*article_pairs(rng), *judgment_pairs(rng), *english_pairs(rng)]
    sources = sorted({str(p["source"]) for p in pairs})
    rng.shuffle(sources)
    heldout = set(sources[: len(sources) // 2])
    for i, p in enumerate(pairs):
        p["id"] = i
        p["split"] = "heldout" if p["source"] in heldout else "dev"
    return pairs


def main() -> None:
    pairs = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for p in pairs:
        key = f"{p['lang']}/{p['kind']}/{p['split']}"
        kinds[key] = kinds.get(key, 0) + 1
    print(f"{len(pairs)} pairs -> {OUT}")
    for key in sorted(kinds):
        print(f"  {key:28} {kinds[key]}")


if __name__ == "__main__":
    main()
