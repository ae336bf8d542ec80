"""Property-based tests (hypothesis) of every entry to the recommender: the id parser, every loader,
``recommend()`` and the CLI's argument parsing.

Invariants: bad input raises only the documented error (:class:`InvalidRequest` for requests,
:class:`DataError` for files, exit status 2 with one line on stderr for the CLI), on one line of at most
300 characters; an answer holds k distinct catalogue items and none of its session's. Generation is
derandomized (tests/property_helpers.py); about 10,000 generated cases per run (ids count one by one),
``HYPOTHESIS_PROFILE=slow`` for 20x.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from property_helpers import examples, one_line

from sessiondata.errors import DataError, InvalidRequest
from sessiondata.ids import MAX_ITEMS, parse_item_id, resolve_items
from sessiondata.loaders import load_dataset
from sessiondata.schema import Catalog

FIXTURES = Path(__file__).parent / "fixtures"
NUMERIC = Catalog(ids=(5, 7, 8, 12093, -3, 2**62), titles=("a", "b", "c", "d", "e", "f"))
TEXTUAL = Catalog(ids=("B01", "B02", "x y"), titles=("a", "b", "c"))

# anything a caller might pass as one id, or as a whole request field
scalars = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=40),
    st.text(alphabet="0123456789+- \t", max_size=30),
    st.binary(max_size=10),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=3), scalars, max_size=2))


# ------------------------------------------------------------------------------------------------ id parser


@examples(400)
@given(raws=st.lists(values, min_size=10, max_size=20), numeric=st.booleans())
def test_an_id_parses_to_the_catalogue_type_or_is_one_clear_error(raws, numeric):
    """About 6,000 ids per run (400 examples of 10-20 ids each)."""
    catalog = NUMERIC if numeric else TEXTUAL
    for raw in raws:
        try:
            parsed = parse_item_id(catalog, raw)
        except InvalidRequest as error:
            assert one_line(str(error)), str(error)
            assert error.name == "items" and error.reason
            continue
        if numeric:
            assert isinstance(parsed, int) and not isinstance(parsed, bool) and -(2**63) <= parsed < 2**63
            assert parsed == (raw if isinstance(raw, int) else int(raw.strip()))
        else:
            assert isinstance(parsed, str) and parsed == raw.strip() and parsed


@examples(200)
@given(
    numbers=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=10, max_size=20),
    pad=st.sampled_from(["", " ", "\t", "  "]),
)
def test_every_64_bit_integer_round_trips_through_text(numbers, pad):
    """About 3,000 integers per run."""
    for number in numbers:
        assert parse_item_id(NUMERIC, f"{pad}{number}{pad}") == number == parse_item_id(NUMERIC, number)


@examples(300)
@given(request=values)
def test_a_request_is_a_list_of_ids_never_a_string_read_as_characters(request):
    try:
        resolved = resolve_items(NUMERIC, request)
    except InvalidRequest as error:
        assert one_line(str(error)), str(error)
        return
    assert isinstance(request, list | tuple) and len(request) <= MAX_ITEMS
    assert len(resolved.indices) + len(resolved.unknown) == len(request)
    assert all(0 <= i < len(NUMERIC) for i in resolved.indices)


def test_bare_strings_bytes_and_oversized_requests_are_refused():
    for bad in ("5788", b"5788", None, 5788, {"items": [5]}):
        with pytest.raises(InvalidRequest, match="must be a list of item ids"):
            resolve_items(NUMERIC, bad)
    with pytest.raises(InvalidRequest, match="at most 10,000 item ids"):
        resolve_items(NUMERIC, [5] * (MAX_ITEMS + 1))
    with pytest.raises(InvalidRequest, match="64-bit"):
        parse_item_id(NUMERIC, "9" * 25)
    with pytest.raises(InvalidRequest, match="at most 200 characters") as caught:
        parse_item_id(NUMERIC, "9" * 5000)
    assert one_line(str(caught.value)) and len(str(caught.value)) < 150


# ------------------------------------------------------------------------------------------------ loaders


def _beauty_layout(root: Path) -> None:
    """A tiny directory in the bundled Beauty layout (the gzip files written plain-compressed)."""
    import gzip

    items = "item_id,asin,title\n1,A1,Lip Balm\n2,A2,Hair Oil\n3,A3,Sun Cream\n"
    inter = "session_id,reviewer_id,item_id,asin,timestamp\n10,r,1,A1,1600000000\n10,r,2,A2,1600000100\n"
    inter += "11,q,2,A2,1600000200\n11,q,3,A3,1600000300\n"
    (root / "items.csv.gz").write_bytes(gzip.compress(items.encode()))
    (root / "interactions.csv.gz").write_bytes(gzip.compress(inter.encode()))


def _csv_layout(root: Path) -> None:
    (root / "items.csv").write_text("item_id,title\n1,Lip Balm\n2,Hair Oil\n3,Sun Cream\n")
    (root / "interactions.csv").write_text(
        "session_id,item_id,timestamp\na,1,1600000000\na,2,1600000100\nb,2,1600000200\nb,3,2021-01-01T10:00:00\n"
    )


LAYOUTS = {
    "csv": _csv_layout,
    "recbole": lambda root: shutil.copytree(FIXTURES / "recbole" / "tiny", root, dirs_exist_ok=True),
    "amazon-m2": lambda root: shutil.copytree(FIXTURES / "amazon_m2", root, dirs_exist_ok=True),
    "beauty": _beauty_layout,
}
cell_noise = st.sampled_from(
    [b"", b",", b"\t", b'"', b"\n", b"\r\n", b"-", b"9" * 25, b"1e400", b"nan", b"\xff\xfe", b"'", b"[", b"]"]
)


@st.composite
def mutations(draw):
    """A layout, one of its files and edits: cut at a byte, overwrite bytes, insert delimiters or digits."""
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    return (
        layout,
        draw(st.integers(0, 3)),
        draw(st.lists(st.tuples(st.floats(0, 1), cell_noise), max_size=4)),
        draw(st.one_of(st.none(), st.floats(0.05, 1))),
    )


def _load(layout: str, root: Path):
    if layout == "beauty":
        from sessiondata.loaders.beauty import load_amazon_beauty

        return load_amazon_beauty(root)
    return load_dataset(f"{layout}:{root}")


@examples(400)
@given(case=mutations())
def test_every_loader_gives_a_dataset_or_one_data_error_naming_the_file(case):
    import gzip

    layout, which, edits, cut = case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        LAYOUTS[layout](root)
        files = sorted(p for p in root.iterdir() if p.is_file())
        path = files[which % len(files)]
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for where, noise in edits:
            at = int(where * len(raw))
            raw = raw[:at] + noise + raw[at + len(noise) // 2 :]
        if cut is not None:
            raw = raw[: int(cut * len(raw))]
        path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
        try:
            dataset = _load(layout, root)
        except DataError as error:
            message = str(error)
            assert one_line(message, 400), message
            assert str(root) in message or "catalogue" in message or "session" in message, message
            return
        assert len(dataset.catalog) > 0
        for session in dataset.sessions:
            assert all(0 <= i < len(dataset.catalog) for i in session.items)
            assert all(-(2**63) <= t < 2**63 for t in session.times)


def test_a_row_with_extra_fields_and_a_timestamp_past_int64_are_named(tmp_path):
    _csv_layout(tmp_path)
    path = tmp_path / "interactions.csv"
    path.write_text(path.read_text() + "c,1,1600000400,extra\n")
    with pytest.raises(DataError, match=r"interactions\.csv, line 6, field 'timestamp': row has 4 fields"):
        load_dataset(f"csv:{tmp_path}")
    _csv_layout(tmp_path)
    path.write_text(path.read_text() + f"c,1,{2**63}\n")
    with pytest.raises(DataError, match=r"line 6, field 'timestamp': out of the 64-bit integer range"):
        load_dataset(f"csv:{tmp_path}")


# ------------------------------------------------------------------------------------------------ recommend()


@pytest.fixture(scope="module")
def served(slice_prepared, slice_settings):
    from graphs.api import SemSR

    semsr = SemSR(slice_settings)
    catalog = semsr.services.profile().catalog
    sessions = [[catalog.ids[i] for i in case.prompt] for case in slice_prepared.test.cases]
    return semsr, catalog, sessions


@st.composite
def requests(draw, catalog, sessions):
    ids = list(catalog.ids)
    session = draw(st.sampled_from(sessions))
    items = draw(
        st.one_of(
            st.just(session),
            st.lists(st.sampled_from(ids), min_size=1, max_size=120),  # past the 50-item model window
            st.lists(st.one_of(st.sampled_from(ids), st.sampled_from(ids).map(str), scalars), max_size=6),
            values,
        )
    )
    call = {"items": items}
    if draw(st.booleans()):
        call["k"] = draw(st.one_of(st.integers(-2, 120), st.floats(0, 30), st.sampled_from(["10", None, True])))
    if draw(st.integers(0, 4)) == 0:
        call["thread_id"] = draw(st.one_of(st.text(max_size=8).map(lambda t: f"prop-{t}"), scalars))
    if draw(st.integers(0, 4)) == 0:
        call["query"] = draw(st.one_of(st.text(max_size=60), scalars))
    if draw(st.integers(0, 5)) == 0:
        call["exclude"] = draw(st.one_of(st.lists(st.sampled_from(ids), max_size=3), values))
    return call


def test_recommend_answers_or_refuses_with_the_documented_error(served):
    semsr, catalog, sessions = served

    @examples(200)
    @given(call=requests(catalog, sessions))
    def check(call):
        try:
            answer = semsr.recommend(**call)
        except InvalidRequest as error:
            assert one_line(str(error)), str(error)
            return
        got = [row["item_id"] for row in answer.recommendations]
        assert len(got) == call.get("k", 10) and len(set(got)) == len(got)
        assert all(item in catalog for item in got)
        assert not set(got) & set(answer.session)
        assert not set(got) & set(answer.turn.get("exclude", []))

    check()


def test_a_refused_request_on_a_thread_writes_no_state(served):
    semsr, _, sessions = served
    for bad in ({"items": sessions[0], "k": 1.5}, {"items": ["not-an-id"]}, {"items": [10**9]}):
        with pytest.raises(InvalidRequest):
            semsr.recommend(**bad, thread_id="prop-never-written")
        with pytest.raises(InvalidRequest, match="unknown thread"):
            semsr.thread_session("prop-never-written")


# ------------------------------------------------------------------------------------------------ CLI parsing


@pytest.fixture(scope="module")
def cli_env(slice_prepared, slice_settings):
    saved = {key: os.environ.get(key) for key in ("SEMSR_HOME", "SEMSR_DATASET", "SEMSR_THREADS")}
    os.environ.update(
        {"SEMSR_HOME": str(slice_settings.home), "SEMSR_DATASET": slice_settings.dataset, "SEMSR_THREADS": "1"}
    )
    yield [slice_prepared.dataset.catalog.ids[i] for i in slice_prepared.test.cases[0].prompt]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _main(argv: list[str]) -> tuple[int, str, str]:
    from semsr.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = sys.argv
    sys.argv = ["semsr", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = previous
    return int(done.value.code or 0), out.getvalue(), err.getvalue()


token = st.one_of(
    st.sampled_from(["--k", "--items", "-i", "--thread", "--query", "--json", "--", "--bogus", "-x", "1.5", "-5"]),
    st.text(alphabet="0123456789-+.ex", min_size=1, max_size=8),
    st.integers(-(10**6), 10**25).map(str),
)


def test_cli_arguments_parse_or_fail_on_one_line_with_status_2(cli_env):
    session = [str(i) for i in cli_env]

    @examples(40)
    @given(extra=st.lists(token, max_size=5))
    def check(extra):
        assume("--json" not in extra or len(extra) > 1)
        code, _, err = _main(["recommend", "--items", session[0], *extra])
        if code != 0:
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
            assert len(lines[0]) <= 300, lines[0]

    check()


def test_cli_k_not_an_integer_and_ids_starting_with_minus(cli_env):
    code, _, err = _main(["recommend", "--items", str(cli_env[0]), "--k", "1.5"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Invalid value for '--k'" in err
    code, _, err = _main(["recommend", "--items", "-5", "--items", str(cli_env[0]), "--json"])
    assert code == 0, err  # -5 is a well-formed id the catalogue lacks: reported, not a usage error
    code, _, err = _main(["recommend", "--k", "3", "--", "-7", str(cli_env[0])])
    assert code == 0, err
