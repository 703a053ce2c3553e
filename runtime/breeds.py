"""The 120 Stanford Dogs breeds and how a user may name one.

A breed is named by WordNet id (`n02099601`), Stanford Dogs folder (`n02099601-golden_retriever`)
or breed name (`golden_retriever`, `Golden Retriever`), case-insensitively.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from edgehound.runtime.errors import EdgehoundError

DEFAULT_PAIR = ("n02099601", "n02111889")  # golden retriever vs Samoyed
_WNID = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class Breed:
    wnid: str
    folder: str  # Stanford Dogs folder name, e.g. n02099601-golden_retriever
    name: str  # human name, e.g. golden retriever

    def to_dict(self) -> dict:
        return {"wnid": self.wnid, "folder": self.folder, "name": self.name}


def check_classes(classes, where: str) -> list[dict]:
    """A model's class list from a file (manifest, checkpoint): at least two entries, each with a
    wnid and a name, as every reader (labels, splits, reports) uses them."""
    if not isinstance(classes, list) or len(classes) < 2:
        raise EdgehoundError(f"{where}: 'classes' is missing or not a list of two or more breeds")
    for i, c in enumerate(classes):
        if not isinstance(c, dict) or not isinstance(c.get("wnid"), str) or not isinstance(c.get("name"), str):
            raise EdgehoundError(f"{where}: classes[{i}] is not a breed (an object with a wnid and a name)")
    return classes


def _key(text: str) -> str:
    """Normalise a breed spelling: case, underscores, hyphens and spaces do not matter."""
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


@lru_cache(maxsize=1)
def all_breeds() -> dict[str, Breed]:
    """WordNet id -> Breed for the 120 Stanford Dogs breeds (from breeds.tsv beside this file)."""
    with open(Path(__file__).with_name("breeds.tsv"), newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {r["wnid"]: Breed(r["wnid"], r["stanford_dogs_folder"], r["breed"]) for r in rows}


@lru_cache(maxsize=1)
def _lookup() -> dict[str, Breed]:
    table: dict[str, Breed] = {}
    for b in all_breeds().values():
        for spelling in (b.wnid, b.folder, b.name):
            table[_key(spelling)] = b
    return table


def find_breed(text: str) -> Breed | None:
    """The known breed a spelling names, or None."""
    key = _key(text)
    if key in _lookup():
        return _lookup()[key]
    wnid = key.split(" ", 1)[0]  # a Stanford-style folder of a breed spelt differently
    if _WNID.match(wnid):
        return all_breeds().get(wnid)
    return None


def resolve_breed(text: str) -> Breed:
    """The breed a spelling names; an unknown spelling is an error that lists what is accepted."""
    breed = find_breed(text)
    if breed is None:
        raise EdgehoundError(
            f"unknown breed {text!r}: name it by WordNet id (n02099601), Stanford Dogs folder "
            f"(n02099601-golden_retriever) or breed name (golden_retriever); "
            f"`edgehound data breeds` lists all 120"
        )
    return breed


def breed_for_folder(folder: str) -> Breed:
    """The class a data folder stands for: a known breed, or the folder's own name as its label."""
    return find_breed(folder) or Breed(wnid=folder, folder=folder, name=folder.replace("_", " "))
