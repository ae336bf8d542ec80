"""The file-format loaders (CSV pair, Amazon-M2, RecBole, Beauty layout) on fixtures and on broken copies.

Every loader must give the same validated ``Dataset`` and, for bad input, a ``DataError`` whose message names the
file, the line and the field, so that a user can fix the file without reading the code.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessiondata.errors import DataError
from sessiondata.loaders import load_dataset
from sessiondata.loaders.amazon_m2 import load_amazon_m2, parse_item_list
from sessiondata.loaders.beauty import load_amazon_beauty
from sessiondata.loaders.csvpair import load_csv_pair, typed_ids
from sessiondata.loaders.recbole import load_recbole
from sessiondata.schema import Dataset

FIXTURES = Path(__file__).parent / "fixtures"
M2_FIXTURE = FIXTURES / "amazon_m2"
RECBOLE_FIXTURE = FIXTURES / "recbole" / "tiny"

Edit = Callable[[bytes], bytes]


# --------------------------------------------------------------------------------------------- file helpers


def write_file(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path``, gzip-compressed when the name ends in ``.gz``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(raw)
    else:
        path.write_bytes(raw)


def read_file(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def replace(old: str, new: str) -> Edit:
    """An edit replacing the one occurrence of ``old`` (failing loudly if the fixture changed)."""

    def edit(data: bytes) -> bytes:
        assert data.count(old.encode()) == 1, f"{old!r} should occur once in the fixture"
        return data.replace(old.encode(), new.encode())

    return edit


def append(text: str) -> Edit:
    return lambda data: data + text.encode()


def cut_mid_row(n_bytes: int = 4) -> Edit:
    """Cut the file inside its last value, as an interrupted copy does (no line break after the last row)."""
    return lambda data: data.rstrip(b"\r\n")[:-n_bytes]


def empty() -> Edit:
    return lambda data: b""


def bad_utf8(line: int) -> Edit:
    """Replace physical line ``line`` (1-based) with bytes that are not UTF-8."""

    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[line - 1] = b"\xff\xfe" + lines[line - 1]
        return b"\n".join(lines)

    return edit


def assert_data_error(call: Callable[[], object], *expected: str) -> str:
    """Run ``call``, expect a :class:`DataError`, and check its message contains every ``expected`` text."""
    with pytest.raises(DataError) as caught:
        call()
    message = str(caught.value)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    return message


def ids_of(dataset: Dataset) -> dict[object, list[object]]:
    """Each session's items mapped back to external ids: the form the assertions are written in."""
    return {s.session_id: [dataset.catalog.ids[i] for i in s.items] for s in dataset.sessions}


# --------------------------------------------------------------------------------------------- format builders

CSV_ITEMS = """item_id,title,brand,category
10,Rose Hand Cream &amp; Balm,Neutrogena,Skin
11,Volumising  Mascara,Maybelline,
12,"Argan Oil Shampoo, 250 ml",Moroccanoil,Hair
13,Vitamin C Serum,The Ordinary,Skin
"""

CSV_INTERACTIONS = """session_id,item_id,timestamp
7,11,2021-03-01T10:00:00
7,10,2021-03-01T09:00:00
7,12,2021-03-01T11:00:00+00:00
8,13,1614600000
8,10,1614600060
"""

BEAUTY_ITEMS = """item_id,asin,title
0,B001FB5IIC,"Eucerin Original Healing Creme, 16-Ounce"
1,B00KD73PBQ,Argan Oil &#9733;LIMITED SALE&#9733; Hair Treatment
2,B0015YIHXC,Burt's Bees Lip Balm
"""

BEAUTY_INTERACTIONS = """session_id,reviewer_id,item_id,asin,timestamp
0,A29TL36GESM0P0,2,B0015YIHXC,1311120000
0,A29TL36GESM0P0,0,B001FB5IIC,1311120000
1,A3F7ZWDX2L1XQ1,1,B00KD73PBQ,1311206400
1,A3F7ZWDX2L1XQ1,0,B001FB5IIC,1311292800
"""

BEAUTY_SPLIT = """session_id,split
0,train
1,test
"""


def build_csv(tmp_path: Path) -> Path:
    """A CSV pair with the items file only as ``.gz`` and mixed ISO / unix times."""
    directory = tmp_path / "shop"
    directory.mkdir()
    write_file(directory / "items.csv.gz", CSV_ITEMS)
    write_file(directory / "interactions.csv", CSV_INTERACTIONS)
    return directory


def build_beauty(tmp_path: Path) -> Path:
    """A tiny copy of the bundled Beauty layout."""
    directory = tmp_path / "beauty"
    directory.mkdir()
    write_file(directory / "items.csv.gz", BEAUTY_ITEMS)
    write_file(directory / "interactions.csv.gz", BEAUTY_INTERACTIONS)
    write_file(directory / "split.csv", BEAUTY_SPLIT)
    return directory


def build_m2(tmp_path: Path) -> Path:
    return Path(shutil.copytree(M2_FIXTURE, tmp_path / "amazon_m2"))


def build_recbole(tmp_path: Path) -> Path:
    return Path(shutil.copytree(RECBOLE_FIXTURE, tmp_path / "tiny"))


@dataclass(frozen=True)
class Format:
    build: Callable[[Path], Path]
    load: Callable[[Path], Dataset]


FORMATS = {
    "csv": Format(build_csv, load_csv_pair),
    "beauty": Format(build_beauty, load_amazon_beauty),
    "amazon-m2": Format(build_m2, load_amazon_m2),
    "recbole": Format(build_recbole, load_recbole),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_builders_give_loadable_copies(tmp_path: Path, fmt: str) -> None:
    """The unbroken copies load, so every failure below is caused by its one edit."""
    dataset = FORMATS[fmt].load(FORMATS[fmt].build(tmp_path))
    assert dataset.sessions and len(dataset.catalog)


# --------------------------------------------------------------------------------------------- CSV pair


def test_csv_pair_sessions_titles_metadata(tmp_path: Path) -> None:
    directory = build_csv(tmp_path)
    dataset = load_csv_pair(directory)
    assert dataset.name == "shop"
    assert dataset.predefined_split is None
    assert dataset.catalog.ids == (10, 11, 12, 13)
    assert ids_of(dataset) == {7: [10, 11, 12], 8: [13, 10]}
    first = dataset.sessions[0]
    assert first.times == (1614589200, 1614592800, 1614596400)  # ISO-8601 without zone read as UTC
    assert dataset.sessions[1].times == (1614600000, 1614600060)
    assert dataset.catalog.titles[:2] == ("Rose Hand Cream & Balm", "Volumising Mascara")
    assert dataset.catalog.metadata == {
        "brand": ("Neutrogena", "Maybelline", "Moroccanoil", "The Ordinary"),
        "category": ("Skin", None, "Hair", "Skin"),
    }


def test_csv_pair_options_string_ids_and_registry(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    directory.mkdir()
    write_file(directory / "products.tsv", "sku\tname\nA-1\tGreen Tea\n007\tMatcha &lt;Ceremonial&gt;\n")
    write_file(directory / "log.tsv", "visit\tsku\twhen\nu-1\t007\t5\nu-1\tA-1\t3\nu-2\tA-1\t9\n")
    options = {
        "interactions": "log.tsv",
        "items": "products.tsv",
        "session_column": "visit",
        "item_column": "sku",
        "time_column": "when",
        "items_id_column": "sku",
        "title_column": "name",
        "delimiter": "\t",
        "name": "tea",
    }
    dataset = load_dataset("csv:" + str(directory), **options)
    assert dataset.name == "tea"
    assert dataset.catalog.ids == ("A-1", "007")  # "007" is not a plain integer, so ids stay strings
    assert ids_of(dataset) == {"u-1": ["A-1", "007"], "u-2": ["A-1"]}
    assert dataset.catalog.titles[1] == "Matcha <Ceremonial>"
    assert dataset.catalog.metadata == {}


def test_typed_ids_only_converts_canonical_integers() -> None:
    assert typed_ids(["3", "10", "-2", "0"]) == [3, 10, -2, 0]
    assert typed_ids(["3", "07"]) == ["3", "07"]
    assert typed_ids(["3", "3.0"]) == ["3", "3.0"]
    assert typed_ids(["B00X", "1"]) == ["B00X", "1"]


def test_csv_pair_not_a_directory(tmp_path: Path) -> None:
    assert_data_error(lambda: load_csv_pair(tmp_path / "nowhere"), "nowhere", "not a directory")


def test_csv_pair_missing_file(tmp_path: Path) -> None:
    directory = build_csv(tmp_path)
    (directory / "interactions.csv").unlink()
    assert_data_error(lambda: load_csv_pair(directory), "interactions.csv", "file not found")


# --------------------------------------------------------------------------------------------- Amazon-M2

M2_UK = {
    0: ["B09W9FND7K", "B09JSPLN1M", "B07H8Q5K3R"],
    1: ["B08GYKNCCP", "B0935DN1BN", "B09ZRYDFJC", "B08N5WRWNW", "B07PGL2ZSL", "B09W9FND7K", "B09JSPLN1M"],
    2: ["B07PGL2ZSL", "B08N5WRWNW", "B0935DN1BN"],
    3: ["B07H8Q5K3R", "B08GYKNCCP"],
}
M2_DE = {
    0: ["B076THCGSG", "B007MO8IME", "B08MF65MLV", "B001B4TKA0"],
    1: ["B09W9FND7K", "B076THCGSG", "B08MF65MLV"],
    2: ["B001B4TKA0", "B007MO8IME", "B076THCGSG"],
}


def test_amazon_m2_uk_sessions_in_file_order() -> None:
    dataset = load_amazon_m2(M2_FIXTURE)
    assert dataset.name == "amazon-m2-uk"
    assert dataset.predefined_split is None
    assert ids_of(dataset) == M2_UK  # includes the multi-line and the comma-separated prev_items cells
    assert [s.times for s in dataset.sessions] == [(i,) * len(M2_UK[i]) for i in range(4)]
    assert len(dataset.catalog) == 8
    assert all(isinstance(item_id, str) for item_id in dataset.catalog.ids)


def test_amazon_m2_titles_and_metadata() -> None:
    catalog = load_amazon_m2(M2_FIXTURE).catalog
    title = dict(zip(catalog.ids, catalog.titles, strict=True))
    assert title["B09JSPLN1M"] == "Kindle Paperwhite (16 GB) & leather cover bundle"
    assert title["B0935DN1BN"] == "Fire TV Stick 4K with Alexa Voice Remote"
    assert list(catalog.metadata) == ["price", "brand", "color", "size", "model", "material", "author", "desc"]
    position = catalog.index_of("B09ZRYDFJC")
    assert catalog.metadata["author"][position] == "Richard Osman"
    assert catalog.metadata["price"][position] == "8.99"
    assert catalog.metadata["author"][catalog.index_of("B09W9FND7K")] is None


def test_amazon_m2_locale_filter() -> None:
    german = load_amazon_m2(M2_FIXTURE, locale="de")
    assert ids_of(german) == M2_DE
    assert german.name == "amazon-m2-de"
    assert len(german.catalog) == 5
    assert german.catalog.titles[german.catalog.index_of("B09W9FND7K")].startswith("Echo Dot (5. Generation)")
    japanese = load_amazon_m2(M2_FIXTURE, locale="JP")
    assert ids_of(japanese) == {0: ["B0BB8Y7ZQN", "B09XMTWDVT"]}
    assert ids_of(german) != ids_of(load_amazon_m2(M2_FIXTURE, locale="UK"))


def test_amazon_m2_through_the_registry() -> None:
    dataset = load_dataset("amazon-m2:" + str(M2_FIXTURE), locale="DE", name="m2-de")
    assert dataset.name == "m2-de"
    assert ids_of(dataset) == M2_DE


def test_amazon_m2_unknown_locale_lists_the_present_ones() -> None:
    assert_data_error(
        lambda: load_amazon_m2(M2_FIXTURE, locale="FR"), "products_train.csv", "'locale'", "['DE', 'JP', 'UK']", "'FR'"
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("['B09W9FND7K' 'B09JSPLN1M']", ["B09W9FND7K", "B09JSPLN1M"]),
        ("['B09W9FND7K', 'B09JSPLN1M']", ["B09W9FND7K", "B09JSPLN1M"]),
        ("['B09W9FND7K' 'B09JSPLN1M'\n 'B07H8Q5K3R']", ["B09W9FND7K", "B09JSPLN1M", "B07H8Q5K3R"]),
        ('["B09W9FND7K", "B09JSPLN1M"]', ["B09W9FND7K", "B09JSPLN1M"]),
        ("[]", []),
    ],
)
def test_parse_item_list(cell: str, expected: list[str]) -> None:
    assert parse_item_list(cell, file=Path("s.csv"), line=2) == expected


@pytest.mark.parametrize("cell", ["B09W9FND7K B09JSPLN1M", "['B09W9FND7K' 'B09J", "['B09W9FND7K' '']", "[['a']]"])
def test_parse_item_list_rejects_malformed_cells(cell: str) -> None:
    assert_data_error(lambda: parse_item_list(cell, file=Path("s.csv"), line=4), "s.csv", "line 4", "'prev_items'")


# --------------------------------------------------------------------------------------------- RecBole


def test_recbole_sessions_titles_metadata() -> None:
    dataset = load_recbole(RECBOLE_FIXTURE)
    assert dataset.name == "tiny"
    assert dataset.catalog.ids == (101, 102, 103, 104, 105)
    assert ids_of(dataset) == {"s1": [102, 101, 104], "s2": [103, 101], "s3": [105, 102]}  # sorted by time
    assert dataset.sessions[0].times == (1600000100, 1600000200, 1600000300)
    assert dataset.catalog.titles[:3] == (
        "Lavender Body Lotion & Hand Cream",
        "Nourishing Shampoo 500ml",
        'Matte Lipstick "Ruby Woo"',
    )
    assert list(dataset.catalog.metadata) == ["brand", "categories", "price"]
    assert dataset.catalog.metadata["brand"][3] is None
    assert dataset.catalog.metadata["categories"][0] == "Beauty Skin_Care Body"


def test_recbole_through_the_registry() -> None:
    dataset = load_dataset("recbole:" + str(RECBOLE_FIXTURE))
    assert ids_of(dataset) == ids_of(load_recbole(RECBOLE_FIXTURE))


def test_recbole_user_id_and_movie_title_fallbacks(tmp_path: Path) -> None:
    directory = build_recbole(tmp_path)
    inter, item = directory / "tiny.inter", directory / "tiny.item"
    write_file(inter, replace("session_id:token", "user_id:token")(read_file(inter)))
    write_file(item, replace("title:token_seq", "movie_title:token_seq")(read_file(item)))
    dataset = load_recbole(directory)
    assert ids_of(dataset) == {"s1": [102, 101, 104], "s2": [103, 101], "s3": [105, 102]}
    assert dataset.catalog.titles[0] == "Lavender Body Lotion & Hand Cream"


def test_recbole_single_inter_file_and_name(tmp_path: Path) -> None:
    directory = build_recbole(tmp_path)
    renamed = directory.rename(tmp_path / "elsewhere")
    assert load_recbole(renamed).name == "tiny"  # the only .inter file names the dataset
    shutil.copy(renamed / "tiny.inter", renamed / "other.inter")
    assert_data_error(lambda: load_recbole(renamed), "elsewhere.inter", "exactly one .inter", "other.inter")
    assert load_recbole(renamed, name="tiny").name == "tiny"


def test_recbole_without_item_file(tmp_path: Path) -> None:
    directory = build_recbole(tmp_path)
    (directory / "tiny.item").unlink()
    assert_data_error(lambda: load_recbole(directory), "tiny.item", "not found")


def test_recbole_missing_session_key_names_both_spellings(tmp_path: Path) -> None:
    directory = build_recbole(tmp_path)
    inter = directory / "tiny.inter"
    write_file(inter, replace("session_id:token", "visit:token")(read_file(inter)))
    assert_data_error(lambda: load_recbole(directory), "tiny.inter", "line 1", "'session_id'", "user_id:token")


# --------------------------------------------------------------------------------------------- positive Beauty


def test_beauty_layout_copy_loads(tmp_path: Path) -> None:
    dataset = load_amazon_beauty(build_beauty(tmp_path))
    assert ids_of(dataset) == {0: [2, 0], 1: [1, 0]}  # equal times keep file order
    assert dataset.catalog.titles[1] == "Argan Oil ★LIMITED SALE★ Hair Treatment"
    assert dataset.catalog.metadata["asin"] == ("B001FB5IIC", "B00KD73PBQ", "B0015YIHXC")
    assert dataset.predefined_split == {0: "train", 1: "test"}


# --------------------------------------------------------------------------------------------- bad input


@dataclass(frozen=True)
class Broken:
    """One edit to one file of a valid copy, and the texts the resulting error message must contain."""

    fmt: str
    file: str
    edit: Edit
    expected: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()


BROKEN = {
    # ---- CSV pair
    "csv-missing-column": Broken(
        "csv",
        "interactions.csv",
        replace("session_id,item_id,timestamp", "session_id,item,timestamp"),
        ("interactions.csv", "line 1", "'item_id'", "missing column"),
    ),
    "csv-missing-title": Broken(
        "csv", "items.csv.gz", replace("item_id,title,", "item_id,name,"), ("items.csv.gz", "line 1", "'title'")
    ),
    "csv-bad-time": Broken(
        "csv",
        "interactions.csv",
        replace("1614600000", "yesterday"),
        ("interactions.csv", "line 5", "'timestamp'", "'yesterday'"),
    ),
    "csv-empty": Broken("csv", "interactions.csv", empty(), ("interactions.csv", "empty")),
    "csv-cut-mid-row": Broken(
        "csv", "interactions.csv", cut_mid_row(), ("interactions.csv", "line ", "'timestamp'", "ends in the middle")
    ),
    "csv-gz-cut-mid-row": Broken(
        "csv", "items.csv.gz", cut_mid_row(2), ("items.csv.gz", "line ", "ends in the middle", "line break")
    ),
    "csv-header-only": Broken(
        "csv", "items.csv.gz", lambda data: data.split(b"\n")[0], ("items.csv.gz", "no data rows")
    ),
    "csv-duplicate-item": Broken(
        "csv",
        "items.csv.gz",
        append("12,Argan Oil Shampoo 500 ml,Moroccanoil,Hair\n"),
        ("items.csv.gz", "line 6", "'item_id'", "duplicate", "first on line 4", "'12'"),
    ),
    "csv-unknown-item": Broken(
        "csv",
        "interactions.csv",
        replace("8,13,", "8,99,"),
        ("interactions.csv", "line 5", "'item_id'", "missing from items.csv.gz", "'99'"),
    ),
    "csv-empty-session-id": Broken(
        "csv", "interactions.csv", replace("8,10,", ",10,"), ("interactions.csv", "line 6", "'session_id'", "empty")
    ),
    "csv-not-utf8": Broken("csv", "interactions.csv", bad_utf8(3), ("interactions.csv", "UTF-8")),
    "csv-not-utf8-gz": Broken("csv", "items.csv.gz", bad_utf8(2), ("items.csv.gz", "UTF-8")),
    # ---- Beauty layout
    "beauty-missing-column": Broken(
        "beauty",
        "interactions.csv.gz",
        replace("reviewer_id,item_id,", "reviewer_id,item,"),
        ("interactions.csv.gz", "line 1", "'item_id'", "missing column"),
    ),
    "beauty-bad-time": Broken(
        "beauty",
        "interactions.csv.gz",
        replace("1311206400", "2011-07-2x"),
        ("interactions.csv.gz", "line 4", "'timestamp'", "'2011-07-2x'"),
    ),
    "beauty-empty": Broken("beauty", "items.csv.gz", empty(), ("items.csv.gz", "empty")),
    # Beauty's loader leaves duplicates to Catalog, whose error names field and value but no file or line.
    "beauty-duplicate-item": Broken(
        "beauty", "items.csv.gz", append("1,B00KD73PBQ,Argan Oil again\n"), ("'item_id'", "duplicate", "(value: 1)")
    ),
    "beauty-unknown-item": Broken(
        "beauty",
        "interactions.csv.gz",
        replace("A3F7ZWDX2L1XQ1,1,", "A3F7ZWDX2L1XQ1,9,"),
        ("interactions.csv.gz", "line 4", "'item_id'", "(value: 9)"),
    ),
    "beauty-not-utf8": Broken("beauty", "interactions.csv.gz", bad_utf8(2), ("interactions.csv.gz", "UTF-8")),
    "beauty-bad-split": Broken(
        "beauty", "split.csv", replace("1,test", "1,valid"), ("split.csv", "line 3", "'split'", "'valid'")
    ),
    # ---- Amazon-M2
    "m2-missing-column": Broken(
        "amazon-m2",
        "sessions_train.csv",
        replace("prev_items,next_item,locale", "items,next_item,locale"),
        ("sessions_train.csv", "line 1", "'prev_items'", "missing column"),
    ),
    "m2-missing-title": Broken(
        "amazon-m2",
        "products_train.csv",
        replace("id,locale,title,", "id,locale,name,"),
        ("products_train.csv", "line 1", "'title'"),
    ),
    "m2-missing-locale": Broken(
        "amazon-m2",
        "products_train.csv",
        replace("id,locale,title,", "id,region,title,"),
        ("products_train.csv", "line 1", "'locale'"),
    ),
    "m2-malformed-list": Broken(
        "amazon-m2",
        "sessions_train.csv",
        replace("\"['B07H8Q5K3R']\"", "\"['B07H8Q5K3R'\""),
        ("sessions_train.csv", "line 9", "'prev_items'"),
    ),
    "m2-empty": Broken("amazon-m2", "products_train.csv", empty(), ("products_train.csv", "empty")),
    "m2-duplicate-item": Broken(
        "amazon-m2",
        "products_train.csv",
        append("B09W9FND7K,UK,Echo Dot (5th generation) Charcoal,54.99,Amazon,,,,,,\n"),
        ("products_train.csv", "line 17", "'id'", "duplicate", "first on line 2", "'B09W9FND7K'"),
    ),
    "m2-unknown-next-item": Broken(
        "amazon-m2",
        "sessions_train.csv",
        replace("B07H8Q5K3R,UK", "B0UNKNOWN1,UK"),
        ("sessions_train.csv", "line 2", "'next_item'", "'B0UNKNOWN1'", "products_train.csv"),
    ),
    "m2-unknown-prev-item": Broken(
        "amazon-m2",
        "sessions_train.csv",
        replace("'B07PGL2ZSL', 'B08N5WRWNW'", "'B07PGL2ZSL', 'B0MISSING9'"),
        ("sessions_train.csv", "line 7", "'prev_items'", "'B0MISSING9'"),
    ),
    "m2-item-of-another-locale": Broken(
        "amazon-m2",
        "sessions_train.csv",
        replace("['B07H8Q5K3R']", "['B076THCGSG']"),
        ("sessions_train.csv", "line 9", "'prev_items'", "'B076THCGSG'", "for locale UK"),
    ),
    "m2-not-utf8": Broken("amazon-m2", "sessions_train.csv", bad_utf8(6), ("sessions_train.csv", "UTF-8")),
    # ---- RecBole
    "recbole-missing-column": Broken(
        "recbole",
        "tiny.inter",
        replace("timestamp:float", "time:float"),
        ("tiny.inter", "line 1", "'timestamp'", "missing column"),
    ),
    "recbole-missing-title": Broken(
        "recbole",
        "tiny.item",
        replace("title:token_seq", "name:token_seq"),
        ("tiny.item", "line 1", "'title'", "movie_title:token_seq"),
    ),
    "recbole-bad-header-type": Broken(
        "recbole", "tiny.item", replace("price:float", "price:money"), ("tiny.item", "line 1", "'price:money'")
    ),
    "recbole-bad-time": Broken(
        "recbole", "tiny.inter", replace("1600000500", "soon"), ("tiny.inter", "line 7", "'timestamp'", "'soon'")
    ),
    "recbole-empty": Broken("recbole", "tiny.inter", empty(), ("tiny.inter", "empty")),
    "amazon-m2-cut-mid-row": Broken(  # the locale 'UK' cut to 'U' would otherwise filter the row out
        "amazon-m2", "sessions_train.csv", cut_mid_row(1), ("sessions_train.csv", "'locale'", "ends in the middle")
    ),
    "recbole-duplicate-item": Broken(
        "recbole",
        "tiny.item",
        append("103\tAnother Lipstick\tMAC\tBeauty\t18.00\n"),
        ("tiny.item", "line 7", "'item_id'", "duplicate", "first on line 4", "'103'"),
    ),
    "recbole-unknown-item": Broken(
        "recbole",
        "tiny.inter",
        replace("s3\t105", "s3\t999"),
        ("tiny.inter", "line 7", "'item_id'", "missing from tiny.item", "'999'"),
    ),
    "recbole-not-utf8": Broken("recbole", "tiny.item", bad_utf8(3), ("tiny.item", "UTF-8")),
}


@pytest.mark.parametrize("case", list(BROKEN.values()), ids=list(BROKEN))
def test_bad_input_names_file_line_and_field(tmp_path: Path, case: Broken) -> None:
    fmt = FORMATS[case.fmt]
    directory = fmt.build(tmp_path)
    path = directory / case.file
    write_file(path, case.edit(read_file(path)))
    assert_data_error(lambda: fmt.load(directory), *case.expected)
