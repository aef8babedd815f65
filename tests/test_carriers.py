"""Carrier table: domains (exact, subdomains, wildcards, legacy), relay fallback, config overrides."""

from __future__ import annotations

import pytest

from pipeline.classify.carriers import CARRIERS, CarrierTable, carrier_for_domain, expand_pattern
from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError


@pytest.fixture(scope="module")
def table():
    return CarrierTable.default()


@pytest.mark.parametrize("domain,carrier", [
    ("docomo.ne.jp", "docomo"),
    ("mopera.net", "docomo"),
    ("au.com", "au"),
    ("ezweb.ne.jp", "au"),
    ("biz.ezweb.ne.jp", "au"),
    ("biz.au.com", "au"),
    ("uqmobile.jp", "au"),
    ("x.ezweb.ne.jp", "au"),
    ("ido.ne.jp", "au"),
    ("a.ido.ne.jp", "au"),
    ("sky.tkk.ne.jp", "au"),
    ("q.sky.tkc.ne.jp", "au"),
    ("x.sky.tuka.ne.jp", "au"),
    ("sky.tu-ka.ne.jp", "au"),
    ("x.sky.dtg.ne.jp", "au"),
    ("softbank.ne.jp", "softbank"),
    ("i.softbank.jp", "softbank"),
    ("disney.ne.jp", "softbank"),
    ("d.vodafone.ne.jp", "softbank"),
    ("q.vodafone.ne.jp", "softbank"),
    ("jp-k.ne.jp", "softbank"),
    ("jp-s.ne.jp", "softbank"),
    ("email.sky.cdp.ne.jp", "softbank"),
    ("email.sky.tdp.ne.jp", "softbank"),
    ("ymobile.ne.jp", "ymobile"),
    ("yahoo.ne.jp", "ymobile"),
    ("y-mobile.ne.jp", "ymobile"),
    ("emnet.ne.jp", "ymobile"),
    ("willcom.com", "ymobile"),
    ("pdx.ne.jp", "ymobile"),
    ("dk.pdx.ne.jp", "ymobile"),
    ("wcm.ne.jp", "ymobile"),
    ("rakumail.jp", "rakuten"),
    ("DoCoMo.NE.JP", "docomo"),
    ("docomo.ne.jp.", "docomo"),
    ("taro..yamada.@docomo.ne.jp", "docomo"),
])
def test_domains(table, domain, carrier):
    assert table.carrier_for(domain) == carrier


@pytest.mark.parametrize("domain", [
    "gmail.com", "example.jp", "ne.jp", "jp", "", "notdocomo.ne.jp", "docomo.ne.jp.example.com",
    "a.vodafone.ne.jp", "jp-a.ne.jp", "email.sky.xdp.ne.jp", "ezweb.ne.jp.evil",
])
def test_unknown_is_other(table, domain):
    assert table.carrier_for(domain) == "other"


@pytest.mark.parametrize("relay,carrier", [
    ("mfsmax.docomo.ne.jp[203.138.181.112]:25", "docomo"),
    ("msmx.au.com[111.86.247.10]:25", "au"),
    ("msmx.au.com", "au"),
    ("lsean.ezweb.ne.jp[27.85.176.228]:25", "au"),
    ("mx.softbank.ne.jp[1.2.3.4]:25", "softbank"),
    ("ymx1.softbank.ne.jp[1.2.3.4]:25", "ymobile"),
    ("mfsmax.docomo.ne.jp. [203.138.181.112]", "docomo"),
    ("MFSMAX.DOCOMO.NE.JP", "docomo"),
    ("mx.example.com[192.0.2.1]:25", "other"),
    ("none", "other"),
])
def test_relay_fallback_when_domain_unknown(table, relay, carrier):
    assert table.carrier_for("mvno-example.jp", relay) == carrier


def test_domain_wins_over_relay(table):
    assert table.carrier_for("ezweb.ne.jp", "mfsmax.docomo.ne.jp[1.2.3.4]:25") == "au"


def test_config_overrides_merge_over_package_table():
    t = CarrierTable.from_config({"docomo": ["example-docomo.jp"], "au": ["*.kddi-test.jp", "[ab].au-test.jp"]})
    assert t.carrier_for("example-docomo.jp") == "docomo"
    assert t.carrier_for("x.example-docomo.jp") == "docomo"
    assert t.carrier_for("m.kddi-test.jp") == "au"
    assert t.carrier_for("b.au-test.jp") == "au"
    assert t.carrier_for("docomo.ne.jp") == "docomo"  # package table still there
    assert t.carrier_for("msmx.au.com") == "au"


def test_config_override_can_move_a_domain():
    t = CarrierTable.from_config({"ymobile": ["mopera.net"]})
    assert t.carrier_for("mopera.net") == "ymobile"


def test_config_rejects_unknown_carrier_and_non_lists():
    with pytest.raises(ConfigError, match="unknown carrier"):
        CarrierTable.from_config({"kddi": ["x.jp"]})
    with pytest.raises(ConfigError, match="list of domains"):
        CarrierTable.from_config({"docomo": 3})


def test_from_real_config_file(tmp_path):
    cfg_file = tmp_path / "mailhygiene.toml"
    cfg_file.write_text('[carriers]\ndocomo = ["docomo-alias.example.jp"]\n')
    cfg = load_config(cfg_file)
    t = CarrierTable.from_config(cfg["carriers"])
    assert t.carrier_for("docomo-alias.example.jp") == "docomo"
    assert CarrierTable.from_config(load_config(None, data_dir=tmp_path)["carriers"]).carrier_for("x.jp") == "other"


def test_expand_pattern():
    assert expand_pattern("[dh].vodafone.ne.jp") == ["d.vodafone.ne.jp", "h.vodafone.ne.jp"]
    assert len(expand_pattern("jp-[dhtckrnsq].ne.jp")) == 9
    assert expand_pattern("*.ezweb.ne.jp") == ["ezweb.ne.jp"]
    assert expand_pattern("Email.Sky.[CKT]dp.ne.jp") == ["email.sky.cdp.ne.jp", "email.sky.kdp.ne.jp", "email.sky.tdp.ne.jp"]


def test_convenience_function_and_names():
    assert carrier_for_domain("au.com") == "au"
    assert carrier_for_domain("unknown.example", "mfsmax.docomo.ne.jp[1.2.3.4]:25") == "docomo"
    assert CARRIERS == ("docomo", "au", "softbank", "ymobile", "rakuten")


def test_lookups_are_cached(table):
    table.carrier_for("cached.ezweb.ne.jp")
    before = table._cached.cache_info().hits
    table.carrier_for("cached.ezweb.ne.jp")
    assert table._cached.cache_info().hits == before + 1


def test_none_arguments(table):
    assert table.carrier_for(None) == "other"
    assert table.carrier_for(None, None) == "other"


# ------------------------------------------------------------------ providers (pipeline/classify/providers.py)
from datetime import date  # noqa: E402

from pipeline.classify.providers import DEFAULT_PERIOD, ProviderTable  # noqa: E402


def test_provider_by_domain_relay_and_carrier():
    t = ProviderTable.build()
    assert t.name_for("x.docomo.ne.jp") == "docomo"
    assert t.name_for("taro@ezweb.ne.jp") == "au"
    assert t.name_for("mvno.example", "mfsmax.docomo.ne.jp[203.138.181.112]:25") == "docomo"
    assert t.name_for("yahoo.co.uk") == "yahoo"
    assert t.name_for("mvno.example", "mta6.am0.yahoodns.net[67.195.204.74]:25") == "yahoo"
    assert t.name_for("example.net", None, "softbank") == "softbank"
    assert t.name_for("example.net") is None
    assert t.period(t.key_for("example.net")) is DEFAULT_PERIOD


def test_provider_period_by_day():
    t = ProviderTable.build()
    old, new = t.key_for("docomo.ne.jp", day=date(2025, 3, 12)), t.key_for("docomo.ne.jp", day=date(2025, 3, 13))
    assert old != new
    assert t.period(old).until == date(2025, 3, 12) and t.period(new).since == date(2025, 3, 13)
    assert t.key_for("docomo.ne.jp") == new  # no day: today's behaviour


def test_config_carrier_domains_reach_the_provider_table():
    t = ProviderTable.build(None, CarrierTable.from_config({"docomo": ["example-docomo.jp"]}))
    assert t.name_for("example-docomo.jp") == "docomo"
