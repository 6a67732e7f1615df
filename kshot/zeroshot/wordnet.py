"""Class names and descriptions of WordNet noun ids (mini-ImageNet's class labels, e.g. n01532829),
read from WordNet's own database file `data.noun` (Debian's `wordnet-base` package installs it
under /usr/share/wordnet), so no network is needed. A line of data.noun is

    01532829 05 n 03 house_finch 0 linnet 2 Carpodacus_mexicanus 0 002 @ ... | small finch ...

the synset offset (the id without its "n"), then the lemma count in hex and the lemmas, and after
" | " the gloss.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

DEFAULT_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet")


def wordnet_file(wordnet_dir: str | Path | None = None) -> Path:
    candidates = [wordnet_dir] if wordnet_dir else [os.environ.get("KSHOT_WORDNET"), *DEFAULT_DIRS]
    for d in candidates:
        if d and (Path(d) / "data.noun").is_file():
            return Path(d) / "data.noun"
    where = wordnet_dir or " or ".join(DEFAULT_DIRS)
    raise DataError(
        f"no WordNet data.noun in {where}: install it (Debian/Ubuntu: apt-get install wordnet-base) or "
        "pass --wordnet DIR, or give the class texts yourself with --descriptions FILE (id<TAB>text lines)"
    )


def parse_line(line: str) -> tuple[str, list[str], str]:
    """(noun id, lemmas, gloss) of one data.noun line."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    count = int(fields[3], 16)
    lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
    return "n" + fields[0], lemmas, gloss.strip()


def describe(ids: list[str], wordnet_dir: str | Path | None = None) -> dict[str, str]:
    """id -> "name, other name: gloss" for each WordNet noun id asked for."""
    wanted, found = set(ids), {}
    with open(wordnet_file(wordnet_dir), encoding="utf-8", errors="replace") as f:
        for line in f:
            if line[:8].isdigit() and "n" + line[:8] in wanted:
                noun, lemmas, gloss = parse_line(line)
                found[noun] = f"{', '.join(lemmas)}: {gloss}"
    missing = [i for i in ids if i not in found]
    if missing:
        raise DataError(
            f"{len(missing)} class ids are not WordNet nouns in {wordnet_file(wordnet_dir)} (first: {missing[0]!r}); "
            "give their texts with --descriptions FILE (id<TAB>text lines)"
        )
    return found


def read_descriptions(path: str | Path) -> dict[str, str]:
    """id -> text from a user's file of `id<TAB>text` lines."""
    texts = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read descriptions file {path}: {e}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, tab, text = line.partition("\t")
        if not tab or not text.strip():
            raise DataError(f"{path}, line {n}: expected 'id<TAB>text', got {line[:60]!r}")
        texts[key.strip()] = text.strip()
    return texts
