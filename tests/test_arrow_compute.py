"""pipeline.store.arrow_compute: Arrow's compute functions without importing pyarrow.compute.

Each function must give what pyarrow.compute's function of the same name gives (the same kernel,
called by name), and a Postfix ingest through the block reader, with the store's dedupe against
stored ids and IDN recipients, must not import pyarrow.compute at all (~26 ms of CPU).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as real
import pytest

from pipeline.store import arrow_build as ab
from pipeline.store import arrow_compute as ac

TEXTS = pa.array(["550 5.1.1 <a@docomo.ne.jp>: User unknown", None, "", "421 4.7.0 try later",
                  "宛先不明 550", "250 2.0.0 Ok: queued as 4Xyz", "smtp; 554 [1.2.3.4] blocked"])
CHUNKED = pa.chunked_array([TEXTS.slice(0, 3), TEXTS.slice(3)])
INDICES = ab.indices([6, 0, 0, 3, 1])


def _same(mine, theirs):
    assert type(mine) is type(theirs)
    assert (mine.schema == theirs.schema) if isinstance(mine, pa.Table) else (mine.type == theirs.type)
    assert mine.equals(theirs), (mine, theirs)


@pytest.mark.parametrize("values", [TEXTS, CHUNKED], ids=["array", "chunked"])
def test_each_function_gives_what_pyarrow_compute_gives(values):
    mask = ab.booleans([True, False, True, True, False, True, True])
    _same(ac.take(values, INDICES), real.take(values, INDICES))
    _same(ac.filter(values, mask), real.filter(values, mask))
    _same(ac.is_valid(values), real.is_valid(values))
    _same(ac.dictionary_encode(values), real.dictionary_encode(values))
    _same(ac.dictionary_encode(values, null_encoding="encode"), real.dictionary_encode(values, null_encoding="encode"))
    _same(ac.unique(values), real.unique(values))
    _same(ac.value_counts(values), real.value_counts(values))
    known = ab.strings(["", "421 4.7.0 try later"])
    _same(ac.index_in(values, value_set=known), real.index_in(values, value_set=known))
    _same(ac.is_in(values, value_set=known), real.is_in(values, value_set=known))
    _same(ac.fill_null(values, ab.scalar("-")), real.fill_null(values, "-"))
    _same(ac.equal(values, ab.scalar("")), real.equal(values, ab.scalar("")))
    _same(ac.not_equal(values, ab.scalar("")), real.not_equal(values, ab.scalar("")))
    _same(ac.string_is_ascii(values), real.string_is_ascii(values))
    _same(ac.utf8_lower(values), real.utf8_lower(values))
    _same(ac.utf8_slice_codeunits(values, 0, 3), real.utf8_slice_codeunits(values, 0, 3))
    for pattern in (r"^\d{3} ", r"unknown|blocked", r"(?i)USER"):
        _same(ac.match_substring_regex(values, pattern), real.match_substring_regex(values, pattern))
        _same(ac.count_substring_regex(values, pattern), real.count_substring_regex(values, pattern))
    _same(ac.match_substring_regex(values, "user", ignore_case=True),
          real.match_substring_regex(values, "user", ignore_case=True))
    _same(ac.extract_regex(values, r"(?P<code>[245]\d\d)"), real.extract_regex(values, r"(?P<code>[245]\d\d)"))
    _same(ac.replace_substring_regex(values, r"\d", "#"), real.replace_substring_regex(values, r"\d", "#"))
    _same(ac.replace_substring_regex(values, r"\d", "#", max_replacements=1),
          real.replace_substring_regex(values, r"\d", "#", max_replacements=1))
    ok = ac.is_valid(values)
    _same(ac.and_(ok, ac.match_substring_regex(values, "5")), real.and_(ok, real.match_substring_regex(values, "5")))
    _same(ac.or_(ok, ac.match_substring_regex(values, "5")), real.or_(ok, real.match_substring_regex(values, "5")))
    _same(ac.invert(ok), real.invert(ok))
    sep = ab.scalar("@")
    _same(ac.binary_join_element_wise(values, values, sep), real.binary_join_element_wise(values, values, sep))
    _same(ac.if_else(ok, values, ab.scalar("?")), real.if_else(ok, values, ab.scalar("?")))


def test_cast_is_safe_as_pyarrow_computes_is():
    _same(ac.cast(ab.strings(["550", "421"]), pa.int64()), real.cast(ab.strings(["550", "421"]), pa.int64()))
    status = pa.DictionaryArray.from_arrays(ab.numbers([1, 0, 1], pa.int32()), ab.strings(["sent", "bounced"]))
    _same(ac.cast(status, pa.string()), real.cast(status, pa.string()))
    with pytest.raises(pa.ArrowInvalid):
        ac.cast(ab.strings(["5x0"]), pa.int64())
    with pytest.raises(pa.ArrowInvalid):
        ac.cast(ab.numbers([70000], pa.int64()), pa.int16())   # an overflow raises, as pc.cast's default does


def test_tables_are_taken_and_filtered_whole():
    table = pa.table({"text": TEXTS, "n": ab.numbers(list(range(7)), pa.int64())})
    _same(ac.take(table, INDICES), real.take(table, INDICES))
    keep = ab.booleans([i % 2 == 0 for i in range(7)])
    _same(ac.filter(table, keep), real.filter(table, keep))


def test_a_postfix_ingest_through_the_block_reader_never_imports_pyarrow_compute(tmp_path):
    # two runs of a generated Japanese sender's log (UTF-8 subjects, SMTPUTF8 and IDN recipients,
    # deferrals, expiries): the second rereads it, so the store looks its ids up among those stored
    from fixtures import generated_log

    log = generated_log(tmp_path, "postfix", lines=6000)
    code = ("import sys\nfrom pipeline.cli import cli\n"
            "import pipeline.ingest.engine\npipeline.ingest.engine.BLOCK_MIN_BYTES = 0\n"
            "for extra in ([], ['--reread']):\n"
            "    cli.main(sys.argv[1:] + extra + [LOG], prog_name='mailhygiene', standalone_mode=False)\n"
            "print(sorted(m for m in ('pyarrow.compute', 'pipeline.ingest.parsers.postfix_block') if m in sys.modules))\n"
            ).replace("LOG", repr(str(log)))
    r = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo",
                        "ingest", "--year", "2026", "--no-progress"], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]),
                                          "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    written = [line for line in r.stdout.splitlines() if line.startswith("events written:")]
    assert len(written) == 2 and written[0] != "events written:   0" and written[1].startswith("events written:   0"), r.stdout
    assert r.stdout.strip().splitlines()[-1] == "['pipeline.ingest.parsers.postfix_block']", r.stdout
