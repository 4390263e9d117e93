"""Products with GTINs, packed lots, the QR code's GS1 Digital Link and its resolver.

The cooperative routes run on the module's world (anvil, SQLite and PostgreSQL, real keys);
the resolver answers over real HTTP through the app's TestClient.
"""

from __future__ import annotations

import html

import pytest

from api.core.models import Role
from tests.api.test_cooperatives import Org, World, _login, world  # noqa: F401 - shared module fixture
from traceability.digital_link import lot_code_for

GTIN13 = "4006381333931"
GTIN14 = "04006381333931"
OTHER_GTIN = "96385074"  # GTIN-8
LINKSET = "application/linkset+json"


def _product(w: World, coop: Org, gtin: str, **extra) -> dict:
    body = {"gtin": gtin, "name_zh": "恩施玉露", "name_en": "Enshi Yulu", **extra}
    made = w.http.post("/cooperatives/products", json=body, headers=coop.headers)
    assert made.status_code == 201, made.text
    return made.json()


def _pack(w: World, coop: Org, lot: str, gtin: str, code: str | None = None):
    body = {"gtin": gtin} | ({"lot_code": code} if code is not None else {})
    return w.http.put(f"/cooperatives/lots/{lot}/product", json=body, headers=coop.headers)


@pytest.fixture(scope="module")
def packed(world):  # noqa: F811
    """A cooperative with a product and a packed harvest lot, another with a lot of its own."""
    coop = world.org(Role.COOPERATIVE, "恩施玉露茶叶专业合作社")
    other = world.org(Role.COOPERATIVE, "五峰合作社")
    lot = world.harvest(coop, world.member(coop))
    spare = world.harvest(coop, world.member(coop))
    others_lot = world.harvest(other, world.member(other))
    world.index()
    product = _product(world, coop, GTIN13, grade=1, flush="spring")
    done = _pack(world, coop, lot, GTIN13)
    assert done.status_code == 200, done.text
    return {"coop": coop, "other": other, "lot": lot, "spare": spare,
            "others_lot": others_lot, "product": product, "packed": done.json()}  # fmt: skip


# ------------------------------------------------------------------------------------ products


def test_a_product_is_stored_by_its_gtin_14(world, packed):  # noqa: F811
    product = packed["product"]
    assert product["gtin"] == GTIN14 and product["grade"] == 1 and product["flush"] == "spring"
    assert product["digital_link"].endswith(f"/01/{GTIN14}")
    listed = world.http.get("/cooperatives/products", headers=packed["coop"].headers).json()
    assert [p["gtin"] for p in listed["items"]] == [GTIN14] and listed["items"][0]["lots"] == 1


@pytest.mark.parametrize(
    "gtin", ["4006381333932", "400638133393", "123", "9" * 300, "40063813339３1", "abc", 12345678]
)
def test_a_bad_gtin_is_refused_with_a_reason(world, packed, gtin):  # noqa: F811
    body = {"gtin": gtin, "name_zh": "茶", "name_en": "tea"}
    made = world.http.post("/cooperatives/products", json=body, headers=packed["coop"].headers)
    assert made.status_code == 422, made.text
    assert "GTIN" in made.text


def test_a_gtin_is_registered_once(world, packed):  # noqa: F811
    body = {"gtin": "0" + GTIN13, "name_zh": "茶", "name_en": "tea"}  # the same GTIN as 14 digits
    mine = world.http.post("/cooperatives/products", json=body, headers=packed["coop"].headers)
    assert mine.status_code == 409 and "yours" in mine.json()["detail"]
    theirs = world.http.post("/cooperatives/products", json=body, headers=packed["other"].headers)
    assert theirs.status_code == 409 and "another cooperative" in theirs.json()["detail"]


def test_products_are_the_cooperatives_own(world, packed):  # noqa: F811
    other, http = packed["other"], world.http
    assert http.get("/cooperatives/products", headers=other.headers).json()["items"] == []
    retire = http.post(f"/cooperatives/products/{GTIN14}/retire", headers=other.headers)
    assert retire.status_code == 403, retire.text
    lots = http.get(f"/cooperatives/products/{GTIN14}/lots", headers=other.headers)
    assert lots.status_code == 403
    processor = world.org(Role.PROCESSOR)
    body = {"gtin": OTHER_GTIN, "name_zh": "茶", "name_en": "tea"}
    assert (
        http.post("/cooperatives/products", json=body, headers=processor.headers).status_code == 403
    )
    assert http.post("/cooperatives/products", json=body).status_code == 401
    assert http.get("/cooperatives/products", headers=processor.headers).status_code == 403


def test_retiring_keeps_lots_resolving_and_packs_no_more(world, packed):  # noqa: F811
    coop, http = packed["coop"], world.http
    _product(world, coop, "14006381333938", name_zh="恩施玉露礼盒", name_en="Enshi Yulu gift box")
    retired = http.post("/cooperatives/products/14006381333938/retire", headers=coop.headers)
    assert retired.status_code == 200 and retired.json()["retired_at"]
    again = http.post("/cooperatives/products/14006381333938/retire", headers=coop.headers)
    assert again.status_code == 200
    active = http.get("/cooperatives/products", headers=coop.headers).json()["items"]
    assert "14006381333938" not in [p["gtin"] for p in active]
    every = http.get("/cooperatives/products?retired=true", headers=coop.headers).json()["items"]
    assert "14006381333938" in [p["gtin"] for p in every]
    refused = _pack(world, coop, packed["spare"], "14006381333938")
    assert refused.status_code == 409 and "retired" in refused.json()["detail"]
    unknown = http.post("/cooperatives/products/00000096385074/retire", headers=coop.headers)
    assert unknown.status_code == 404
    bad = http.post("/cooperatives/products/14006381333939/retire", headers=coop.headers)
    assert bad.status_code == 400 and "check digit" in bad.json()["detail"]
    assert http.post("/cooperatives/products/1x/retire", headers=coop.headers).status_code == 422


# ------------------------------------------------------------------------------------ lots


def test_a_packed_lot_gets_a_deterministic_code_and_keeps_it(world, packed):  # noqa: F811
    done, lot = packed["packed"], packed["lot"]
    assert done["lot_code"] == lot_code_for(bytes.fromhex(lot[2:])) and done["gtin"] == GTIN14
    assert done["digital_link"].endswith(f"/01/{GTIN14}/10/{done['lot_code']}")
    assert done["trace_url"].endswith(f"/trace/{lot}")
    again = _pack(world, packed["coop"], lot, GTIN13)
    assert again.status_code == 200 and again.json()["lot_code"] == done["lot_code"]
    moved = _pack(world, packed["coop"], lot, GTIN13, "OTHER-1")
    assert moved.status_code == 409 and "do not change" in moved.json()["detail"]
    listed = world.http.get(f"/cooperatives/products/{GTIN13}/lots", headers=packed["coop"].headers)
    assert [x["lot"] for x in listed.json()] == [lot]


def test_only_your_own_lots_are_packed(world, packed):  # noqa: F811
    coop, other = packed["coop"], packed["other"]
    theirs = _pack(world, coop, packed["others_lot"], GTIN13)
    assert theirs.status_code == 403 and "not made by your cooperative" in theirs.json()["detail"]
    unknown = _pack(world, coop, "0x" + "ab" * 32, GTIN13)
    assert unknown.status_code == 404 and "indexed" in unknown.json()["detail"]
    not_their_product = _pack(world, other, packed["others_lot"], GTIN13)
    assert not_their_product.status_code == 403
    assert _pack(world, coop, "0x12", GTIN13).status_code == 422


@pytest.mark.parametrize("code", ["", "A" * 21, "批次1", "a b", "a#b", "x\ny", "\x00"])
def test_a_lot_code_outside_charset_82_is_refused(world, packed, code):  # noqa: F811
    refused = _pack(world, packed["coop"], packed["spare"], GTIN13, code)
    assert refused.status_code == 422, refused.text


def test_a_lot_code_names_one_lot_of_a_product(world, packed):  # noqa: F811
    coop = packed["coop"]
    taken = _pack(world, coop, packed["spare"], GTIN13, packed["packed"]["lot_code"])
    assert taken.status_code == 409 and "another lot" in taken.json()["detail"]


# ------------------------------------------------------------------------------------ page


def test_the_products_page_forms_refuse_with_the_reason(world, packed):  # noqa: F811
    coop, other = packed["coop"], packed["other"]
    browser = _login(world, coop)
    home = browser.get("/coop/products")
    assert home.status_code == 200 and f'data-gtin="{GTIN14}"' in home.text
    assert f'data-lot="{packed["lot"]}"' in home.text and packed["spare"] in home.text
    assert packed["others_lot"] not in home.text, "only the cooperative's own lots to pack"
    csrf = home.text.split('name="csrf" value="')[1].split('"')[0]
    product = {"gtin": "4006381333932", "name_zh": "茶", "name_en": "tea", "csrf": csrf}
    bad = browser.post("/coop/products", data=product)
    assert bad.status_code == 422 and "check digit" in html.unescape(bad.text)
    blank = browser.post("/coop/products", data={**product, "gtin": "96385074", "name_zh": " "})
    assert blank.status_code == 422 and 'id="errors"' in blank.text
    pack = {"lot": packed["others_lot"], "gtin": GTIN14, "lot_code": "", "csrf": csrf}
    foreign = browser.post("/coop/products/lots", data=pack)
    assert foreign.status_code == 403 and "not made by your cooperative" in foreign.text
    for lot, code in (("0x12", ""), ("\x00" * 60, ""), (packed["spare"], "批次")):
        hostile = browser.post("/coop/products/lots", data={**pack, "lot": lot, "lot_code": code})
        assert hostile.status_code in (400, 422), hostile.text[:200]
    forged = browser.post("/coop/products", data={**product, "csrf": "0" * 64})
    assert forged.status_code == 403
    theirs = _login(world, other)
    other_csrf = theirs.get("/coop/products").text.split('name="csrf" value="')[1].split('"')[0]
    retire = theirs.post(f"/coop/products/{GTIN14}/retire", data={"csrf": other_csrf})
    assert retire.status_code == 403


# ------------------------------------------------------------------------------------ QR code


def test_the_qr_code_carries_the_digital_link_once_packed(world, packed, monkeypatch):  # noqa: F811
    import api.public.routes

    encoded: list[str] = []
    real = api.public.routes.qr_svg
    monkeypatch.setattr(api.public.routes, "qr_svg", lambda url: encoded.append(url) or real(url))
    lot, spare = packed["lot"], packed["spare"]
    svg = world.http.get(f"/public/lots/{lot}/qr.svg")
    assert svg.status_code == 200 and "<svg" in svg.text
    world.http.get(f"/public/lots/{spare}/qr.svg")
    code = packed["packed"]["lot_code"]
    assert encoded == [
        f"http://testserver/01/{GTIN14}/10/{code}",
        f"http://testserver/trace/{spare}",
    ]
    # no QR decoder in the venv: the served symbol is the one segno makes of the Digital Link
    assert svg.text == real(f"http://testserver/01/{GTIN14}/10/{code}")


def test_the_trace_page_shows_the_digital_link(world, packed):  # noqa: F811
    page = world.http.get(f"/trace/{packed['lot']}")
    assert page.status_code == 200
    assert f"http://testserver/01/{GTIN14}/10/{packed['packed']['lot_code']}" in page.text
    named = page.text.split('id="product"')[1].split("</p>")[0]
    assert "恩施玉露" in named and "Enshi Yulu" in named and packed["packed"]["lot_code"] in named
    assert 'id="product"' not in world.http.get(f"/trace/{packed['spare']}").text


# ------------------------------------------------------------------------------------ resolver


def test_a_browser_is_sent_to_the_trace_page(world, packed):  # noqa: F811
    code, lot = packed["packed"]["lot_code"], packed["lot"]
    for gtin in (GTIN14, GTIN13):  # a short GTIN in the path resolves the same
        sent = world.http.get(f"/01/{gtin}/10/{code}", headers={"Accept": "text/html"},
                              follow_redirects=False)  # fmt: skip
        assert sent.status_code == 307, sent.text
        assert sent.headers["location"] == f"http://testserver/trace/{lot}"
        assert 'rel="linkset"' in sent.headers["link"]
        assert sent.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("link_type", ["gs1:traceability", "https://gs1.org/voc/traceability"])
def test_traceability_is_the_lots_epcis_document(world, packed, link_type):  # noqa: F811
    code, lot = packed["packed"]["lot_code"], packed["lot"]
    sent = world.http.get(f"/01/{GTIN14}/10/{code}", params={"linkType": link_type},
                          follow_redirects=False)  # fmt: skip
    assert sent.status_code == 307
    assert sent.headers["location"] == f"http://testserver/epcis/lots/{lot}/document"
    document = world.http.get(sent.headers["location"], headers={"Accept": "application/json"})
    assert document.status_code == 200, document.text
    body = document.json()
    assert body["type"] == "EPCISDocument"
    classes = {q["epcClass"] for e in body["epcisBody"]["eventList"]
               for q in e.get("quantityList", [])}  # fmt: skip
    assert f"urn:tealedger:lot:{lot}" in classes


def test_other_link_types(world, packed):  # noqa: F811
    code, lot = packed["packed"]["lot_code"], packed["lot"]
    url = f"/01/{GTIN14}/10/{code}"
    pip = world.http.get(url, params={"linkType": "gs1:pip"}, follow_redirects=False)
    assert pip.headers["location"] == f"http://testserver/01/{GTIN14}"
    other = world.http.get(url, params={"linkType": "gs1:recipeInfo"}, follow_redirects=False)
    assert other.status_code == 307 and other.headers["location"].endswith(f"/trace/{lot}")


@pytest.mark.parametrize(
    ("params", "accept"),
    [
        ({"linkType": "all"}, "text/html"),
        ({}, "application/json"),
        ({}, "application/ld+json"),
        ({}, LINKSET),
    ],
)
def test_machines_get_the_linkset(world, packed, params, accept):  # noqa: F811
    code, lot = packed["packed"]["lot_code"], packed["lot"]
    got = world.http.get(f"/01/{GTIN14}/10/{code}", params=params, headers={"Accept": accept})
    assert got.status_code == 200 and got.headers["content-type"].startswith(LINKSET)
    assert got.headers["vary"] == "Accept" and got.headers["access-control-allow-origin"] == "*"
    (links,) = got.json()["linkset"]
    assert links["anchor"] == f"http://testserver/01/{GTIN14}/10/{code}"
    trail = links["https://gs1.org/voc/traceability"][0]
    assert trail["href"] == f"http://testserver/epcis/lots/{lot}/document"
    assert links["https://gs1.org/voc/defaultLink"][0]["href"] == f"http://testserver/trace/{lot}"
    assert links["https://gs1.org/voc/pip"][0]["href"] == f"http://testserver/01/{GTIN14}"
    assert "恩施玉露" in links["https://gs1.org/voc/pip"][0]["title"]


def test_a_gtin_alone_is_its_product_page(world, packed):  # noqa: F811
    page = world.http.get(f"/01/{GTIN13}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "恩施玉露" in page.text and "Enshi Yulu" in page.text
    assert "恩施玉露茶叶专业合作社" in page.text and "春茶" in page.text
    linkset = world.http.get(f"/01/{GTIN13}", headers={"Accept": "application/json"}).json()
    assert "https://gs1.org/voc/pip" in linkset["linkset"][0]
    trail = world.http.get(f"/01/{GTIN13}", params={"linkType": "gs1:traceability"})
    assert trail.status_code == 404 and "per lot" in trail.json()["detail"]


def test_an_encoded_slash_stays_in_its_lot_code(world, packed):  # noqa: F811
    coop = packed["coop"]
    lot = world.harvest(coop, world.member(coop))
    world.index()
    done = _pack(world, coop, lot, GTIN13, "2026/SP%1")
    assert done.status_code == 200, done.text
    assert done.json()["digital_link"].endswith("/10/2026%2FSP%251")
    sent = world.http.get(f"/01/{GTIN14}/10/2026%2FSP%251", follow_redirects=False)
    assert sent.headers["location"].endswith(f"/trace/{lot}")


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/01/96385074/10/X", 404, "no product here has GTIN 00000096385074"),
        (f"/01/{GTIN14}/10/NOSUCHLOT", 404, "has no lot 'NOSUCHLOT'"),
        ("/01/4006381333932/10/X", 400, "check digit"),
        ("/01/4006381333932", 400, "check digit"),
        ("/01/" + "9" * 3000, 400, ""),
        ("/01/" + "9" * 30 + "/10/A", 400, ""),
        (f"/01/{GTIN14}/10/" + "A" * 21, 400, ""),
        (f"/01/{GTIN14}/10/A%00B", 400, ""),
        (f"/01/{GTIN14}/10/%E6%89%B9%E6%AC%A1", 400, ""),
        (f"/01/{GTIN14}/10/A%20B", 400, ""),
        (f"/01/{GTIN14}/21/12345", 400, "only"),
        (f"/01/{GTIN14}/10/A/21/1", 400, "only"),
        ("/01/", 400, ""),
        ("/01/%FF%FE", 400, ""),
        ("/01/１２３４５６７８", 400, ""),
    ],
)
def test_unknown_and_hostile_links_are_4xx_with_a_message(world, packed, path, status, says):  # noqa: F811
    page = world.http.get(path, follow_redirects=False)
    assert page.status_code == status, page.text[:300]
    assert 'id="error"' in page.text and says in html.unescape(page.text)
    machine = world.http.get(path, headers={"Accept": "application/json"})
    assert machine.status_code == status and says in machine.json()["detail"]


def test_a_line_break_in_a_link_matches_no_route(world, packed):  # noqa: F811
    # Starlette's path patterns stop at a decoded newline: no route, a plain 404 (never a 500).
    assert world.http.get(f"/01/{GTIN14}/10/A%0AB").status_code == 404


def test_a_hostile_link_type_is_4xx(world, packed):  # noqa: F811
    url = f"/01/{GTIN14}/10/{packed['packed']['lot_code']}"
    assert world.http.get(url, params={"linkType": "x" * 500}).status_code == 422
    weird = world.http.get(url, params={"linkType": "gs1:\x00é"}, follow_redirects=False)
    assert weird.status_code == 307  # an unknown type: the default link
