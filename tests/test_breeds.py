import pytest

from edgehound.runtime.breeds import all_breeds, resolve_breed
from edgehound.runtime.errors import EdgehoundError


@pytest.mark.parametrize("spelling", ["n02099601", "n02099601-golden_retriever", "golden_retriever",
                                      "golden retriever", "Golden Retriever", "GOLDEN_RETRIEVER"])
def test_every_spelling_names_the_same_breed(spelling):
    assert resolve_breed(spelling).wnid == "n02099601"


def test_hyphenated_names_and_the_swapped_pair():
    assert resolve_breed("shih tzu").wnid == "n02086240"
    assert resolve_breed("black_and_tan_coonhound").wnid == "n02089078"
    # fast.ai's tables swap these two; ours follows Stanford Dogs / classes.tsv
    assert resolve_breed("english foxhound").wnid == "n02089973"
    assert resolve_breed("border terrier").wnid == "n02093754"


def test_table_has_120_unique_breeds():
    breeds = all_breeds()
    assert len(breeds) == 120
    assert len({b.name.lower() for b in breeds.values()}) == 120


def test_unknown_breed_is_a_clear_error():
    with pytest.raises(EdgehoundError, match="unknown breed 'labradoodle'"):
        resolve_breed("labradoodle")
