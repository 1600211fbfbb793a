"""Substance: what a statement names that its passage must contain.

Embeddings see that "le délai est de trois mois" and "le délai est de deux mois" mean
nearly the same thing; a lawyer does not. So besides meaning, a statement is held to what
it names:
- numbers (digits and French/English number words, "1er", "dix-huit", "quatre-vingt-dix"),
  with their unit when they have one (days, months, years, euros, percent, a month of a
  date): "trois mois" needs 3 months in the passage, "deux ans" does not pass for
  "deux mois"; identifiers written with hyphens or slashes ("22-12.922", "12/03/2020")
  must appear as written;
- article references ("article 1240", "art. 1241", "L. 1234-9"): each must be in the passage;
- parties and roles ("le bailleur", "the tenant", "M. [K]"): each must be in the passage
  (a role in either language counts: "landlord" is found as "bailleur");
- content words: the share of the statement's content words (stop words removed, stemmed
  with the French and the English Snowball stemmers) found in the passage, `coverage`.

Pure functions, no I/O: `Substance.of(text)` once per text, `compare(statement, passage)`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

from legal_assistant.documents.keyword import is_stop_word

_STEMMERS = (Stemmer.Stemmer("french"), Stemmer.Stemmer("english"))

# ------------------------------------------------------------------ number words
_UNITS = {
    # French
    "zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6,
    "sept": 7, "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13,
    "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20, "vingts": 20, "trente": 30,
    "quarante": 40, "cinquante": 50, "soixante": 60,
    # English
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"cent": 100, "cents": 100, "hundred": 100, "mille": 1000, "thousand": 1000,
           "million": 10**6, "millions": 10**6, "milliard": 10**9, "milliards": 10**9,
           "billion": 10**9}  # fmt: skip
_ORDINALS = {
    "premier": 1, "premiere": 1, "first": 1, "second": 2, "seconde": 2, "deuxieme": 2,
    "third": 3, "troisieme": 3, "fourth": 4, "quatrieme": 4, "fifth": 5, "cinquieme": 5,
    "sixth": 6, "sixieme": 6, "seventh": 7, "septieme": 7, "eighth": 8, "huitieme": 8,
    "ninth": 9, "neuvieme": 9, "tenth": 10, "dixieme": 10,
}  # fmt: skip
# "un"/"une"/"one"/"a" are articles far more often than numbers: they count only before a unit.
_WEAK = frozenset({"un", "une", "one"})

# Unit words: the unit a number counts (a month name is the unit of a date's day).
_MONTHS = [
    ("janvier", "january"), ("fevrier", "february"), ("mars", "march"), ("avril", "april"),
    ("mai", "may"), ("juin", "june"), ("juillet", "july"), ("aout", "august"),
    ("septembre", "september"), ("octobre", "october"), ("novembre", "november"),
    ("decembre", "december"),
]  # fmt: skip
_UNIT_WORDS: dict[str, str] = {
    **{w: "day" for w in ("jour", "jours", "day", "days", "journee", "journees")},
    **{w: "week" for w in ("semaine", "semaines", "week", "weeks")},
    **{w: "month" for w in ("mois", "month", "months", "mensualite", "mensualites")},
    **{w: "year" for w in ("an", "ans", "annee", "annees", "year", "years", "yrs")},
    **{w: "hour" for w in ("heure", "heures", "hour", "hours", "h")},
    **{w: "euro" for w in ("euro", "euros", "eur", "€")},
    **{w: "percent" for w in ("%", "percent", "pourcent", "pourcents")},
    **{w: f"month:{i}" for i, names in enumerate(_MONTHS, 1) for w in names},
}
# "pour cent" / "per cent" are two words.
_PERCENT_PHRASE = re.compile(r"\b(?:pour|per)\s+cent\b")

# Digits: "1 500" / "1 500" / "1.500" (FR) / "1,500" (EN) thousands; "1,5" / "1.5" decimals;
# "1er"; identifiers with hyphens or slashes kept whole.
_IDENTIFIER = re.compile(r"\b\d+(?:[-/]\d+)+(?:\.\d+)?\b")
_DIGITS = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+(?!\d)|\d+(?:[.,]\d+)?)"
    r"(?:er|re|e|st|nd|rd|th)?\b"
)
# Words split at apostrophes and hyphens ("l'article" -> "l", "article"; "dix-huit").
_TOKEN = re.compile(r"%|€|[^\W\d_]+|\d+(?:[.,]\d+)?")

# ------------------------------------------------------------------ articles
# "article 1240", "articles 1240 et 1241", "art. 1240", "article L. 1234-9", "L1234-9".
_ARTICLE_HEAD = re.compile(r"\b(?:articles?|arts?\.?)\s+", re.IGNORECASE)
_ARTICLE_NUMBER = re.compile(
    r"((?:[LRDA]\.?\s?\*?)?\d+(?:-\d+)*(?:\s(?:bis|ter|quater))?)", re.IGNORECASE
)
_CODE_ARTICLE = re.compile(r"\b([LRD])\.?\s?(\d+(?:-\d+)+)\b")
_ARTICLE_LIST_SEP = re.compile(r"\s*(?:,|et|and|à|to|-)\s*", re.IGNORECASE)

# ------------------------------------------------------------------ parties and roles
_ROLE_GROUPS: list[tuple[str, ...]] = [
    ("bailleur", "bailleresse", "loueur", "landlord", "lessor"),
    ("preneur", "locataire", "tenant", "lessee"),
    ("vendeur", "venderesse", "seller", "vendor"),
    ("acheteur", "acquereur", "buyer", "purchaser"),
    ("employeur", "employer"),
    ("salarie", "salariee", "employee"),
    ("creancier", "creanciere", "creditor"),
    ("debiteur", "debitrice", "debtor"),
    ("demandeur", "demanderesse", "claimant", "plaintiff", "applicant"),
    ("defendeur", "defenderesse", "defendant", "respondent"),
    ("donateur", "donatrice", "donor"),
    ("donataire", "donee"),
    ("mandant",),
    ("mandataire",),
    ("usufruitier", "usufruitiere", "usufructuary"),
    ("nu-proprietaire", "bare owner"),
    ("caution", "guarantor", "surety"),
    ("assureur", "insurer"),
    ("heritier", "heritiere", "heir"),
    ("tuteur", "tutrice", "guardian"),
    ("mineur", "mineure"),
    ("epoux", "epouse", "spouse", "spouses", "husband", "wife"),
    ("procureur", "prosecutor"),
    ("cour d'appel", "court of appeal", "appeal court"),
]
_ROLE_OF: dict[str, int] = {}
for _i, _group in enumerate(_ROLE_GROUPS):
    for _word in _group:
        _ROLE_OF[_word] = _i
        if " " not in _word and "'" not in _word and not _word.endswith("s"):
            _ROLE_OF[_word + "s"] = _i
_MULTIWORD_ROLES = sorted((w for w in _ROLE_OF if " " in w or "'" in w), key=len, reverse=True)
# A named party: "M. [K]", "Mme Dupont", "la société Alpha", "Mr Smith".
_NAMED_PARTY = re.compile(
    r"\b(?:M\.|Mme|Mlle|Me|Mr\.?|Mrs\.?|Ms\.?|(?:la |the )?soci[ée]t[ée]|company)\s+"
    r"(\[[^\]]{1,20}\]|[A-ZÀ-Ý][\w'-]+)"
)


def fold(text: str) -> str:
    """Lower case, accents removed, typographic apostrophes made plain."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=8192)
def _stems(word: str) -> tuple[str, str]:
    lowered = word.lower()
    return (fold(_STEMMERS[0].stemWord(lowered)), fold(_STEMMERS[1].stemWord(lowered)))


@dataclass(frozen=True, slots=True)
class Substance:
    """What one text names."""

    content: tuple[str, ...]  # content words as written (lower case), in order
    stems: frozenset[str]  # FR and EN stems of every word (passage side)
    numbers: frozenset[tuple[float, str | None]]  # (value, unit or None)
    identifiers: frozenset[str]  # "22-12.922", "12/03/2020"
    articles: frozenset[str]  # "1240", "L1234-9"
    roles: frozenset[int]  # indexes into _ROLE_GROUPS
    parties: frozenset[str]  # "[k]", "dupont"
    folded: str  # the whole text, folded (where a named party is looked for)
    language: str | None  # "fr", "en", or None when its words do not say

    @classmethod
    def of(cls, text: str) -> Substance:
        articles, rest = _articles(text)
        identifiers = frozenset(m.group(0) for m in _IDENTIFIER.finditer(rest))
        rest = _IDENTIFIER.sub(" ", rest)
        words = [m.group(0) for m in _TOKEN.finditer(rest)]
        content = tuple(
            w.lower()
            for w in words
            if w[0].isalpha() and len(w) > 1 and not _is_number_word(w) and not _is_stop(w)
        )
        stems = frozenset(s for w in words if w[0].isalpha() for s in _stems(w))
        return cls(
            content=content,
            stems=stems,
            numbers=frozenset(_numbers(rest)),
            identifiers=identifiers,
            articles=articles,
            roles=frozenset(_roles(text)),
            parties=frozenset(fold(m.group(1)) for m in _NAMED_PARTY.finditer(text)),
            folded=fold(text),
            language=language_of(words),
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    coverage: float  # share of the statement's content words found in the passage, 0..1
    missing: str | None  # the first thing named and absent: "number", "article", "party"
    # The statement and the passage are in different languages: they share no words, and
    # only meaning (and the language-free substance: numbers, articles, roles) can tell.
    cross_language: bool = False


def compare(statement: Substance, passage: Substance) -> Comparison:
    cross = None not in (statement.language, passage.language) and (
        statement.language != passage.language
    )
    return Comparison(coverage(statement, passage), missing(statement, passage), cross)


# The commonest function words of each language: which one a text is written in.
# fmt: off
_MARKERS = {
    "fr": frozenset({
        "le", "la", "les", "des", "du", "de", "et", "est", "une", "un", "que", "qui", "dans",
        "pour", "par", "sur", "au", "aux", "ne", "pas", "ce", "cette", "son", "sa", "ses",
        "il", "elle", "ils", "sont", "peut", "doit",
    }),
    "en": frozenset({
        "the", "of", "and", "is", "to", "an", "in", "that", "for", "by", "on", "with", "be",
        "are", "or", "not", "their", "its", "this", "it", "may", "must", "shall", "which",
    }),
}
# fmt: on


def language_of(words: list[str]) -> str | None:
    """ "fr" or "en" when one language's function words clearly dominate, else None."""
    counts = {lang: sum(1 for w in words if w.lower() in m) for lang, m in _MARKERS.items()}
    fr, en = counts["fr"], counts["en"]
    if fr >= 2 * max(en, 1):
        return "fr"
    if en >= 2 * max(fr, 1):
        return "en"
    return None


def coverage(statement: Substance, passage: Substance) -> float:
    if not statement.content:
        return 0.0  # "Voir aussi [2]." says nothing a passage could share
    found = sum(1 for w in statement.content if any(s in passage.stems for s in _stems(w)))
    return found / len(statement.content)


def missing(statement: Substance, passage: Substance) -> str | None:
    """What the statement names that the passage lacks (None: nothing is missing)."""
    if not all(_article_found(a, passage) for a in statement.articles):
        return "article"
    if not statement.identifiers <= passage.identifiers:
        return "number"
    if not all(_number_found(v, u, passage) for v, u in statement.numbers):
        return "number"
    if not statement.roles <= passage.roles:
        return "party"
    if not all(p in passage.folded for p in statement.parties):
        return "party"
    return None


def _article_found(article: str, passage: Substance) -> bool:
    if article in passage.articles:
        return True
    # "article 1240" in the statement, "1240" bare in the passage (a table, a heading).
    bare = article.lstrip("LRDA")
    if bare in passage.identifiers or bare in passage.articles:
        return True
    return bare.isdigit() and any(v == float(bare) for v, _ in passage.numbers)


def _number_found(value: float, unit: str | None, passage: Substance) -> bool:
    if unit is None:
        if value.is_integer() and str(int(value)) in passage.articles:
            return True  # "1240" alone, the passage's "article 1240"
        return any(v == value for v, _ in passage.numbers)
    return (value, unit) in passage.numbers or (value, None) in passage.numbers


def _is_stop(word: str) -> bool:
    lowered = word.lower()
    return len(lowered) < 2 or is_stop_word(lowered)


def _is_number_word(word: str) -> bool:
    w = fold(word)
    return w in _UNITS or w in _SCALES or w in _ORDINALS


def _articles(text: str) -> tuple[frozenset[str], str]:
    """The article references of `text`, normalised ("L. 1234-9" -> "L1234-9"), and the
    text with them blanked (their digits are not quantities)."""
    found: set[str] = set()
    spans: list[tuple[int, int]] = []
    for head in _ARTICLE_HEAD.finditer(text):
        pos = head.end()
        while True:
            number = _ARTICLE_NUMBER.match(text, pos)
            if not number:
                break
            found.add(_normal_article(number.group(1)))
            spans.append((number.start(), number.end()))
            sep = _ARTICLE_LIST_SEP.match(text, number.end())
            if not sep or not _ARTICLE_NUMBER.match(text, sep.end()):
                break
            pos = sep.end()
    for code in _CODE_ARTICLE.finditer(text):
        found.add(code.group(1).upper() + code.group(2))
        spans.append((code.start(), code.end()))
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return frozenset(found), "".join(chars)


def _normal_article(raw: str) -> str:
    return re.sub(r"[\s.*]", "", raw).upper().replace("BIS", " bis").replace("TER", " ter")


def _numbers(text: str) -> list[tuple[float, str | None]]:
    """(value, unit) for every quantity of `text`: digits and number words."""
    folded = _PERCENT_PHRASE.sub(" % ", fold(text))
    tokens = [m.group(0) for m in _TOKEN.finditer(_DIGITS.sub(_digit_token, folded))]
    out: list[tuple[float, str | None]] = []
    i = 0
    while i < len(tokens):
        value, used = _read_number(tokens, i)
        if value is None:
            i += 1
            continue
        unit = _unit_after(tokens, i + used)
        if value == 1 and tokens[i] in _WEAK and unit is None:
            i += used  # "un contrat": an article, not a quantity
            continue
        out.append((value, unit))
        i += used
    return out


def _digit_token(match: re.Match[str]) -> str:
    raw = match.group(1)
    if re.fullmatch(r"\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+", raw):
        raw = re.sub(r"[ \u00a0\u202f.,]", "", raw)
    return f" {raw.replace(',', '.')} "


def _read_number(tokens: list[str], i: int) -> tuple[float | None, int]:
    """The number starting at tokens[i] and how many tokens it spans."""
    token = tokens[i]
    if token[0].isdigit():
        try:
            return float(token), 1
        except ValueError:
            return None, 1
    if token in _ORDINALS:
        return float(_ORDINALS[token]), 1
    if token not in _UNITS and token not in _SCALES:
        return None, 1
    total, current, j, after_et = 0, 0, i, False
    while j < len(tokens):
        word = tokens[j]
        follows = tokens[j + 1] if j + 1 < len(tokens) else ""
        if word == "et" and j > i and follows in ("un", "une", "onze"):
            j, after_et = j + 1, True  # "vingt et un", "soixante et onze"
            continue
        if word in ("vingt", "vingts") and current % 100 == 4:
            current += 76  # "quatre-vingt(s)": 4 -> 80
        elif word in _UNITS and (j == i or after_et or word not in _WEAK or _tens(current)):
            current += _UNITS[word]
        elif word in _SCALES and _SCALES[word] == 100:
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        else:
            break
        j, after_et = j + 1, False
    return float(total + current), j - i


def _tens(current: int) -> bool:
    """ "twenty-one": a weak "one" right after a multiple of ten counts."""
    return current >= 20 and current % 10 == 0 and current % 100 != 0


def _unit_after(tokens: list[str], j: int) -> str | None:
    if j < len(tokens) and tokens[j] in _UNIT_WORDS:
        return _UNIT_WORDS[tokens[j]]
    # "deux mois de salaire", "1er janvier": only the next word is a unit
    return None


def _roles(text: str) -> set[int]:
    folded = fold(text)
    found = {_ROLE_OF[w] for w in _MULTIWORD_ROLES if w in folded}
    for word in re.findall(r"[a-z][a-z-]*", folded):
        if word in _ROLE_OF:
            found.add(_ROLE_OF[word])
    return found
