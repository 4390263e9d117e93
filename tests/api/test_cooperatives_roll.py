"""POST /cooperatives/farmers/batch and /farmers/upload: a member roll registered at once, as
JSON or as a CSV file (GBK or UTF-8, Chinese or English headers), each member checked as the
single registration checks it, on anvil and on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from api.cooperatives.identity import coop_salt
from api.cooperatives.roll import MAX_MEMBER_BATCH
from api.cooperatives.roll_file import area_centi_mu
from api.core.chain import org_account
from api.core.errors import Invalid
from api.core.models import Farmer, Plot, Role
from tests.api.test_cooperatives import (  # noqa: F401  (fixtures)
    Org,
    World,
    _login,
    _org_row,
    coop,
    other_coop,
    resident_id,
    world,
)
from traceability.ids import farmer_id, plot_id
from traceability.models import FarmerRegistration, PlotRegistration
from traceability.service import RecordingService

URL = "/cooperatives/farmers/batch"


def _plot(ref: str, **extra: object) -> dict:
    return {"land_reference": ref, "area_centi_mu": 220, "variety": 2, **extra}


def _ids(w: World, org: Org, nid: str, *refs: str) -> tuple[bytes, list[bytes]]:
    """The pseudonyms the service gives a member and its plots at `org`."""
    salt = coop_salt(w.settings, _org_row(w, org))
    return farmer_id(salt, nid), [plot_id(salt, r) for r in refs]


def test_a_roll_registers_its_members_with_their_plots_and_refuses_each_bad_one(world, coop):  # noqa: F811
    known = world.farmer(coop)  # registered one by one before
    wallet_org = world.org(Role.FARMER, "roll wallet farmer")
    taken = world.farmer(coop, farmer_org_id=world.org(Role.FARMER, "roll taken").id)
    first, second, third = resident_id(), resident_id(), resident_id()
    refused_nid = resident_id()
    roll = {
        "members": [
            {"national_id": first, "name": "田一",
             "plots": [_plot("R-1", label=" 东坡 "), _plot("R-2")]},
            {"national_id": second, "name": "田二", "farmer_org_id": wallet_org.id,
             "plots": [_plot("R-3", location="芭蕉乡")]},
            {"national_id": first, "name": "田一again"},  # the same person twice
            {"national_id": refused_nid, "name": "田四", "farmer_org_id": taken["farmer_org_id"]},
            {"national_id": third, "name": "田三", "wallet": "0x" + "5b" * 20},
            {"national_id": resident_id(), "name": "田五", "plots": [_plot("R-1")]},  # plot twice
            {"national_id": resident_id(), "name": "田六", "plots": [_plot("R-9"), _plot("R-9")]},
        ]
    }  # fmt: skip
    again = {"national_id": "x", "name": "already"}
    with world.session() as session:
        row = session.exec(select(Farmer).where(Farmer.farmer_id == known["farmer_id"])).one()
        again["national_id"] = row.national_id
    roll["members"].append(again)
    out = world.http.post(URL, json=roll, headers=coop.headers)
    assert out.status_code == 200, out.text
    body = out.json()
    assert [m["name"] for m in body["registered"]] == ["田一", "田二", "田三"]
    reasons = {r["item"]: r["reason"] for r in body["refused"]}
    assert sorted(reasons) == [2, 3, 5, 6, 7]
    assert "entry 0" in reasons[2] and "national id" in reasons[2]
    assert "already the wallet" in reasons[3]
    assert "entry 0" in reasons[5] and "land reference" in reasons[5]
    assert "same land reference" in reasons[6]
    assert f"already registered as member no. {known['member_number']}" in reasons[7]
    tea = world.chain.contract("TeaTrace")
    one, two, three = body["registered"]
    fid, (p1, p2) = _ids(world, coop, first, "R-1", "R-2")
    assert one["farmer_id"] == "0x" + fid.hex() and one["transaction"]
    assert [p["plot_id"] for p in one["plots"]] == ["0x" + p1.hex(), "0x" + p2.hex()]
    assert one["plots"][0]["label"] == "东坡" and one["plots"][1]["label"] is None
    assert tea.functions.plot(p1).call()[:2] in ([fid, coop.address], (fid, coop.address))
    assert two["wallet"] == wallet_org.address and two["farmer_org_id"] == wallet_org.id
    assert tea.functions.farmer(bytes.fromhex(two["farmer_id"][2:])).call()[1] == wallet_org.address
    assert three["plots"] == [] and three["wallet"].lower() == "0x" + "5b" * 20
    refused_fid, _ = _ids(world, coop, refused_nid)
    assert tea.functions.farmer(refused_fid).call()[0] == "0x" + "00" * 20  # nothing sent
    with world.session() as session:
        stored = session.exec(select(Farmer).where(Farmer.national_id == first)).one()
        assert stored.id == one["member_number"] and stored.cooperative_id == coop.id
        plots = session.exec(select(Plot).where(Plot.farmer_id == one["farmer_id"])).all()
        assert len(plots) == 2
        assert session.exec(select(Farmer).where(Farmer.national_id == refused_nid)).first() is None


def test_the_same_roll_again_sends_nothing_and_refuses_each_member(world, coop):  # noqa: F811
    roll = {"members": [{"national_id": resident_id(), "name": "周一", "plots": [_plot("S-1")]}]}
    assert world.http.post(URL, json=roll, headers=coop.headers).status_code == 200
    block = world.chain.w3.eth.block_number
    again = world.http.post(URL, json=roll, headers=coop.headers)
    assert again.status_code == 200
    assert (
        again.json()["registered"] == []
        and "already registered" in again.json()["refused"][0]["reason"]
    )
    assert world.chain.w3.eth.block_number == block


def test_members_already_on_chain_are_adopted_or_refused_by_whose_they_are(world, coop, other_coop):  # noqa: F811
    mine, theirs, plot_taken = resident_id(), resident_id(), resident_id()
    fid, (pid,) = _ids(world, coop, mine, "A-1")
    stolen, _ = _ids(world, coop, theirs)
    own = RecordingService(world.chain, org_account(world.settings, _org_row(world, coop)))
    other = RecordingService(world.chain, org_account(world.settings, _org_row(world, other_coop)))
    # A registration whose database write was lost, and one of another cooperative's that
    # happens to carry this cooperative's pseudonym (registered outside the service).
    own.register_farmers([FarmerRegistration(farmer=fid)])
    own.register_plots([PlotRegistration(plot=pid, farmer=fid, area_centi_mu=220, variety=2)])
    other.register_farmers([FarmerRegistration(farmer=stolen)])
    roll = {
        "members": [
            {"national_id": mine, "name": "吴一", "plots": [_plot("A-1")]},
            {"national_id": theirs, "name": "吴二"},
            {"national_id": plot_taken, "name": "吴三", "plots": [_plot("A-1")]},
        ]
    }
    out = world.http.post(URL, json=roll, headers=coop.headers).json()
    (adopted,) = out["registered"]
    assert adopted["farmer_id"] == "0x" + fid.hex() and adopted["transaction"] is None
    assert adopted["plots"][0]["plot_id"] == "0x" + pid.hex()
    assert adopted["plots"][0]["transaction"] is None
    reasons = {r["item"]: r["reason"] for r in out["refused"]}
    assert "another cooperative" in reasons[1]
    assert "entry 0" in reasons[2]  # the land reference of entry 0's plot


def test_a_plot_on_chain_for_another_farmer_refuses_the_member(world, coop):  # noqa: F811
    owner, (pid,) = _ids(world, coop, resident_id(), "B-1")
    own = RecordingService(world.chain, org_account(world.settings, _org_row(world, coop)))
    own.register_farmers([FarmerRegistration(farmer=owner)])
    own.register_plots([PlotRegistration(plot=pid, farmer=owner, area_centi_mu=100, variety=1)])
    nid = resident_id()
    roll = {"members": [{"national_id": nid, "name": "郑一", "plots": [_plot("B-1")]}]}
    out = world.http.post(URL, json=roll, headers=coop.headers).json()
    assert out["registered"] == [] and "another farmer" in out["refused"][0]["reason"]
    fid, _ = _ids(world, coop, nid)
    assert world.chain.contract("TeaTrace").functions.farmer(fid).call()[0] == "0x" + "00" * 20


def test_a_roll_refuses_bad_bodies_keys_and_roles(world, coop):  # noqa: F811
    member = {"national_id": resident_id(), "name": "冯一"}
    too_many = {"members": [member] * (MAX_MEMBER_BATCH + 1)}
    for bad in ({"members": []}, {"members": [member], "extra": 1}, too_many,
                {"members": [{**member, "plots": [_plot("C-1", area_centi_mu=0)]}]},
                {"members": [{**member, "national_id": "123"}]}):  # fmt: skip
        response = world.http.post(URL, json=bad, headers=coop.headers)
        assert response.status_code == 422, response.text
    assert world.http.post(URL, json={"members": [member]}).status_code == 401
    lender = world.org(Role.LENDER, "roll bank")
    assert (
        world.http.post(URL, json={"members": [member]}, headers=lender.headers).status_code == 403
    )


# ------------------------------------------------------------------------------ roll files

UPLOAD = "/cooperatives/farmers/upload"


def _upload(w: World, org: Org, text: str, encoding: str = "utf-8", name: str = "roll.csv"):
    files = {"file": (name, text.encode(encoding), "text/csv")}
    return w.http.post(UPLOAD, files=files, headers=org.headers)


def test_a_gbk_roll_file_registers_by_member_and_refuses_by_line(world, coop):  # noqa: F811
    known = world.farmer(coop)
    with world.session() as session:
        row = session.exec(select(Farmer).where(Farmer.farmer_id == known["farmer_id"])).one()
        known_nid = row.national_id
    a, b, c, d, e = (resident_id() for _ in range(5))
    text = (
        "身份证号,姓名,承包合同号,面积（亩）,地块名称,位置\n"
        f"{a},黄一,F-1,2.5,东坡,龙凤镇\n"
        f"{a},,F-2,1.25,,\n"  # the same member's second plot; the name may be left out
        f"{b},黄二,,,,\n"  # no plot yet
        f"{c},黄三,F-3,abc,,\n"  # the area is not a number
        f"{d},黄四,,2,,\n"  # plot details without a land reference
        f"{e},黄五,F-4,1,,\n"
        f"{e},黄六,F-5,1,,\n"  # another name for the same resident id
        f"{known_nid},{row.name},F-6,1,,\n"  # registered already
        ",,,,,\n"  # blank lines are skipped
        ",黄七,,,,\n,黄八,,,,\n"  # no resident id: each row refused alone
    )
    out = _upload(world, coop, text, "gbk")
    assert out.status_code == 200, out.text
    body = out.json()
    assert [m["name"] for m in body["registered"]] == ["黄一", "黄二"]
    first = body["registered"][0]
    assert [p["label"] for p in first["plots"]] == ["东坡", None]
    assert [p["area_centi_mu"] for p in first["plots"]] == [250, 125]
    refused = {r["line"]: r["reason"] for r in body["refused"]}
    assert sorted(refused) == [5, 6, 7, 9, 11, 12]
    assert "national_id" in refused[11] and "national_id" in refused[12]
    assert "area in mu" in refused[5] and "line 5" in refused[5]
    assert "without a land reference" in refused[6]
    assert "line 8" in refused[7] and "another name" in refused[7]
    assert "already registered" in refused[9]
    tea = world.chain.contract("TeaTrace")
    fid, (_, p2) = _ids(world, coop, a, "F-1", "F-2")
    assert tea.functions.plot(p2).call()[0] == fid
    blocked, _ = _ids(world, coop, c)
    assert tea.functions.farmer(blocked).call()[0] == "0x" + "00" * 20
    again = _upload(world, coop, text, "gbk").json()
    assert again["registered"] == [] and len(again["refused"]) == 8


def test_english_headers_utf8_and_wallets_read_the_same(world, coop):  # noqa: F811
    nid = resident_id()
    header = "national_id,name,wallet,land_reference,area_mu,variety\n"
    text = header + f"{nid},Li Lei,0x{'5c' * 20},E-1,3,7\n"
    out = _upload(world, coop, "\ufeff" + text)
    assert out.status_code == 200, out.text
    assert len(out.json()["registered"]) == 1, out.text
    (member,) = out.json()["registered"]
    assert member["wallet"].lower() == "0x" + "5c" * 20 and member["plots"][0]["variety"] == 7


def test_roll_files_with_wrong_columns_or_contents_are_refused_whole(world, coop):  # noqa: F811
    nid = resident_id()
    for text, reason in (
        (f"身份证号,姓名,电话\n{nid},x,138\n", "unknown columns: 电话"),
        (f"身份证号,name,姓名\n{nid},x,x\n", "columns given twice: name"),
        ("姓名\nx\n", "missing columns: national_id"),
        ("身份证号,姓名\n", "1 to"),
    ):
        refused = _upload(world, coop, text)
        assert refused.status_code == 422 and reason in refused.text, refused.text
    binary = world.http.post(UPLOAD, files={"file": ("roll.csv", b"\x00\x01PK", "text/csv")},
                             headers=coop.headers)  # fmt: skip
    assert binary.status_code == 422 and "not a text file" in binary.text
    many = "身份证号,姓名\n" + "".join(f"{resident_id()},x\n" for _ in range(MAX_MEMBER_BATCH + 1))
    assert "at most 500 members" in _upload(world, coop, many).text
    extra = _upload(world, coop, f"身份证号,姓名\n{resident_id()},x,surprise\n").json()
    assert "beyond the header" in extra["refused"][0]["reason"]


def test_areas_are_mu_with_two_decimals_at_most() -> None:
    assert area_centi_mu("2.5") == 250 and area_centi_mu(" 0.01 ") == 1
    for bad in ("0", "-1", "0.001", "abc", "NaN", "Infinity", "1e999999999", "", "42949673"):
        with pytest.raises(Invalid):
            area_centi_mu(bad)


def test_the_members_page_shows_a_hundred_a_page_and_finds_a_member_by_number(world):  # noqa: F811
    big = world.org(Role.COOPERATIVE, "大合作社 big roll coop")
    roll = {"members": [{"national_id": resident_id(), "name": f"社员{i}"} for i in range(101)]}
    out = world.http.post(URL, json=roll, headers=big.headers)
    assert out.status_code == 200 and len(out.json()["registered"]) == 101, out.text
    numbers = [m["member_number"] for m in out.json()["registered"]]
    page = _login(world, big)
    first = page.get("/coop/members").text
    assert first.count('class="card member') == 100 and "page 1 of 2" in first
    assert 'id="next-page"' in first and 'id="prev-page"' not in first
    second = page.get("/coop/members?page=2").text
    assert second.count('class="card member') == 1 and f'data-member="{numbers[-1]}"' in second
    found = page.get(f"/coop/members?member={numbers[-1]}").text
    assert "page 2 of 2" in found and 'id="found-member"' in found
    assert "page 2 of 2" in page.get("/coop/members?page=99").text  # past the end: the last
    assert page.get("/coop/members?member=abc").status_code == 422
    other = world.farmer(world.org(Role.COOPERATIVE, "另一个合作社"))["member_number"]
    assert 'id="not-found"' in page.get(f"/coop/members?member={other}").text
    assert 'id="not-found"' not in found
