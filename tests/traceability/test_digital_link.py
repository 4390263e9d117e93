"""GS1 identifiers: GTIN check digits and normalisation, lot codes, Digital Link URIs."""

import pytest

from traceability.digital_link import (
    DigitalLink,
    DigitalLinkError,
    check_lot_code,
    digital_link,
    link_type,
    lot_code_for,
    normalise_gtin,
    parse_digital_link,
)

GTIN13 = "4006381333931"


@pytest.mark.parametrize(
    ("given", "gtin14"),
    [
        ("96385074", "00000096385074"),  # GTIN-8
        ("036000291452", "00036000291452"),  # GTIN-12 (UPC-A)
        (GTIN13, "04006381333931"),
        ("14006381333938", "14006381333938"),  # GTIN-14, packaging level 1
        (" 4006381333931 ", "04006381333931"),
    ],
)
def test_gtins_are_normalised_to_14_digits(given, gtin14):
    assert normalise_gtin(given) == gtin14


@pytest.mark.parametrize(
    "bad",
    [
        "4006381333932",  # check digit off by one
        "14006381333939",
        "96385075",
        "400638133393",  # 12 digits, wrong check
        "40063813339311",
        "123",
        "9" * 400,
        "00000000000000",
        "40063813339３1",  # a full-width digit
        "4006381333\x0031",
        "",
    ],
)
def test_bad_gtins_are_refused(bad):
    with pytest.raises(DigitalLinkError):
        normalise_gtin(bad)


def test_check_digit_message_names_the_expected_digit():
    with pytest.raises(DigitalLinkError, match="Expected 1, got 2"):
        normalise_gtin("4006381333932")


@pytest.mark.parametrize("code", ["A", "2026-SPRING/01", "!\"%&'()*+,-./:;<=>?_", "Z" * 20])
def test_lot_codes_of_charset_82(code):
    assert check_lot_code(code) == code


@pytest.mark.parametrize("code", ["", "Z" * 21, "a b", "批次1", "a#b", "x\ny", "é", "a\x7f"])
def test_lot_codes_outside_charset_82_are_refused(code):
    with pytest.raises(DigitalLinkError):
        check_lot_code(code)


def test_generated_lot_codes_are_short_deterministic_and_valid():
    lot = bytes.fromhex("ab" * 32)
    code = lot_code_for(lot)
    assert code == lot_code_for(lot) != lot_code_for(bytes.fromhex("ac" + "ab" * 31))
    assert len(code) == 10 and check_lot_code(code) == code and code.isupper()


def test_uri_round_trip_percent_encodes_reserved_characters():
    uri = digital_link("https://tea.example/", GTIN13, "AB/1%?&")
    assert uri == "https://tea.example/01/04006381333931/10/AB%2F1%25%3F%26"
    assert parse_digital_link(uri) == DigitalLink("04006381333931", "AB/1%?&")
    assert digital_link("http://x:8000", "96385074") == "http://x:8000/01/00000096385074"
    assert parse_digital_link("http://x:8000/01/00000096385074") == DigitalLink("00000096385074")


def test_uris_with_a_prefix_or_a_short_gtin_parse():
    assert parse_digital_link(f"https://id.example/tea/01/{GTIN13}/10/X1") == DigitalLink(
        "04006381333931", "X1"
    )


@pytest.mark.parametrize(
    "uri",
    [
        "https://x/01/04006381333932/10/A",  # bad check digit
        "https://x/01/04006381333931/10/" + "9" * 21,
        "https://x/01/" + "9" * 5000,
        "https://x/01/04006381333931/10/a%00b",
        "https://x/01/04006381333931/10/a b",
        "https://x/01/04006381333931/10/%E6%89%B9",
        "https://x/01/04006381333931/21/5",  # a serial: not what our packages carry
        "https://x/01/04006381333931/10/A/21/5",
        "https://x/trace/0xab",
        "ftp://x/01/04006381333931",
    ],
)
def test_bad_uris_are_refused(uri):
    with pytest.raises(DigitalLinkError):
        parse_digital_link(uri)


def test_link_types_short_and_full():
    assert link_type("gs1:traceability") == "traceability"
    assert link_type("https://gs1.org/voc/traceability") == "traceability"
    assert link_type("all") == "all"
