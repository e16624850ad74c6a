"""The tracking app through Starlette's test client: every route, good and bad input."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x suggests httpx2; the client works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from tracking_support import BROWSER, LATER, LINKS, SECRET, SENT_AT, contact, events_named, sent_mail

from edumail import clock, contacts, events, tokens
from edumail import project as project_module
from edumail.store import Store
from edumail.tracking import MAX_BODY, PIXEL, create_app

API_TOKEN = "api-token-for-tests"


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDUMAIL_NOW", LATER.isoformat())


@pytest.fixture
def store(project_dir: Path) -> Iterator[Store]:
    with Store(project_dir / "edumail.db") as opened:
        yield opened


@pytest.fixture
def client(project_dir: Path, store: Store, now: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("EDUMAIL_API_TOKEN", API_TOKEN)
    app = create_app(project_module.load(project_dir))
    with TestClient(app, headers={"User-Agent": BROWSER}, follow_redirects=False, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def mail(store: Store) -> int:
    return sent_mail(store, contact(store, "lea@example.org"))


def o(mail_id: int) -> str:
    return "/o/" + tokens.sign(SECRET, tokens.Token("o", mail_id)) + ".gif"


def c(mail_id: int, index: int) -> str:
    return "/c/" + tokens.sign(SECRET, tokens.Token("c", mail_id, index))


def u(mail_id: int) -> str:
    return "/u/" + tokens.sign(SECRET, tokens.Token("u", mail_id))


def p(mail_id: int) -> str:
    return "/p/" + tokens.sign(SECRET, tokens.Token("p", mail_id))


def k(contact_id: int) -> str:
    return "/k/" + tokens.sign(SECRET, tokens.Token("k", contact_id))


def consent_of(store: Store, email: str) -> str:
    found = store.contact_by_email(email)
    assert found is not None
    return found["consent"]


# --- open pixel -------------------------------------------------------------------------


def test_open_pixel_returns_an_uncached_gif_and_records_a_human_open(
    client: TestClient, store: Store, mail: int
) -> None:
    response = client.get(o(mail))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == PIXEL
    assert "no-store" in response.headers["cache-control"]
    [opened] = events_named(store, events.EMAIL_OPENED)
    assert opened["mail_id"] == mail and opened["machine"] == 0
    assert opened["at"] == LATER


def test_open_from_apple_privacy_proxy_is_machine(project_dir: Path, store: Store, mail: int, now: None) -> None:
    app = create_app(project_module.load(project_dir))
    with TestClient(app, client=("17.58.63.1", 40000), headers={"User-Agent": "Mozilla/5.0"}) as apple:
        assert apple.get(o(mail)).status_code == 200
    [opened] = events_named(store, events.EMAIL_OPENED)
    assert opened["machine"] == 1
    assert json.loads(opened["data"])["machine"] == "apple-proxy"


def test_open_with_the_generic_proxy_agent_is_machine(client: TestClient, store: Store, mail: int) -> None:
    client.get(o(mail), headers={"User-Agent": "Mozilla/5.0"})
    assert events_named(store, events.EMAIL_OPENED)[0]["machine"] == 1


def test_open_within_seconds_of_delivery_is_a_prefetch(
    client: TestClient, store: Store, mail: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDUMAIL_NOW", (SENT_AT + timedelta(seconds=3)).isoformat())
    client.get(o(mail))
    assert events_named(store, events.EMAIL_OPENED)[0]["machine"] == 1


def test_open_through_gmail_image_proxy_later_is_a_person(client: TestClient, store: Store, mail: int) -> None:
    agent = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    client.get(o(mail), headers={"User-Agent": agent})
    [opened] = events_named(store, events.EMAIL_OPENED)
    assert opened["machine"] == 0
    assert json.loads(opened["data"])["proxy"] == "google"


@pytest.mark.parametrize(
    "path",
    [
        "/o/nothing.gif",
        "/o/.gif",
        "/o/o1-AAAAAAAAAAAAAAAA.gif",
    ],
)
def test_forged_open_tokens_get_404_and_record_nothing(client: TestClient, store: Store, mail: int, path: str) -> None:
    assert client.get(path).status_code == 404
    assert events_named(store, events.EMAIL_OPENED) == []


def test_tampered_and_truncated_open_tokens_get_404(client: TestClient, store: Store, mail: int) -> None:
    good = o(mail)
    tampered = good.replace("/o/o", "/o/o1", 1)
    assert client.get(tampered).status_code == 404
    assert client.get(good[:-8] + ".gif").status_code == 404
    other_key = "/o/" + tokens.sign(b"another project", tokens.Token("o", mail)) + ".gif"
    assert client.get(other_key).status_code == 404
    assert events_named(store, events.EMAIL_OPENED) == []


def test_a_click_token_is_not_an_open_token(client: TestClient, store: Store, mail: int) -> None:
    assert client.get("/o/" + c(mail, 0)[3:] + ".gif").status_code == 404


def test_open_of_a_mail_that_does_not_exist_is_404(client: TestClient, store: Store) -> None:
    assert client.get(o(999)).status_code == 404


def test_open_for_a_forgotten_contact_records_nothing(client: TestClient, store: Store, mail: int) -> None:
    store.execute("UPDATE contacts SET forgotten_at = ?", (clock.to_db(SENT_AT),))
    assert client.get(o(mail)).status_code == 200
    assert events_named(store, events.EMAIL_OPENED) == []


# --- clicks --------------------------------------------------------------------------------


def test_click_records_the_url_and_redirects_to_the_mails_link(client: TestClient, store: Store, mail: int) -> None:
    response = client.get(c(mail, 1))
    assert response.status_code == 302
    assert response.headers["location"] == LINKS[1]
    [clicked] = events_named(store, events.EMAIL_CLICKED)
    data = json.loads(clicked["data"])
    assert (data["url"], data["index"]) == (LINKS[1], 1)
    assert clicked["machine"] == 0 and clicked["mail_id"] == mail
    assert store.contact_by_email("lea@example.org")["last_inbound_at"] == LATER


def test_click_with_an_index_outside_the_mail_is_404(client: TestClient, store: Store, mail: int) -> None:
    assert client.get(c(mail, 2)).status_code == 404
    assert events_named(store, events.EMAIL_CLICKED) == []


def test_forged_click_token_redirects_nowhere(client: TestClient, store: Store, mail: int) -> None:
    forged = "/c/c1.0-AAAAAAAAAAAAAAAA?url=https://evil.example"
    response = client.get(forged)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert events_named(store, events.EMAIL_CLICKED) == []


def test_query_string_cannot_change_the_redirect(client: TestClient, mail: int) -> None:
    response = client.get(c(mail, 0) + "?url=https://evil.example&next=https://evil.example")
    assert response.headers["location"] == LINKS[0]


def test_a_link_that_is_not_http_is_never_a_redirect_target(client: TestClient, store: Store) -> None:
    mail = sent_mail(store, contact(store, "max@example.org"), links=["javascript:alert(1)"])
    assert client.get(c(mail, 0)).status_code == 404


def test_click_within_seconds_of_delivery_is_a_scanner(
    client: TestClient, store: Store, mail: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDUMAIL_NOW", (SENT_AT + timedelta(seconds=2)).isoformat())
    assert client.get(c(mail, 0)).status_code == 302
    [clicked] = events_named(store, events.EMAIL_CLICKED)
    assert clicked["machine"] == 1
    assert json.loads(clicked["data"])["machine"] == "too-fast"
    assert store.contact_by_email("lea@example.org")["last_inbound_at"] is None


@pytest.mark.parametrize("agent", ["BarracudaCentral (http://www.barracudacentral.org)", "python-requests/2.31", ""])
def test_click_from_a_scanner_agent_is_machine(client: TestClient, store: Store, mail: int, agent: str) -> None:
    client.get(c(mail, 0), headers={"User-Agent": agent})
    assert events_named(store, events.EMAIL_CLICKED)[0]["machine"] == 1


def test_all_links_clicked_together_are_all_flagged(client: TestClient, store: Store, mail: int) -> None:
    client.get(c(mail, 0))
    assert events_named(store, events.EMAIL_CLICKED)[0]["machine"] == 0
    client.get(c(mail, 1))
    assert [e["machine"] for e in events_named(store, events.EMAIL_CLICKED)] == [1, 1]


def test_the_same_link_clicked_twice_stays_human(client: TestClient, store: Store, mail: int) -> None:
    client.get(c(mail, 0))
    client.get(c(mail, 0), headers={"User-Agent": BROWSER + " Edg/124.0"})  # another browser of the person
    assert [e["machine"] for e in events_named(store, events.EMAIL_CLICKED)] == [0, 0]


def test_replays_of_one_click_link_by_one_client_are_recorded_once_and_all_redirect(
    client: TestClient, store: Store, mail: int
) -> None:
    for _ in range(200):
        response = client.get(c(mail, 1))
        assert response.status_code == 302 and response.headers["location"] == LINKS[1]
    assert len(events_named(store, events.EMAIL_CLICKED)) == 1


def test_a_click_replayed_after_the_window_counts_again(
    client: TestClient, store: Store, mail: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get(c(mail, 1))
    monkeypatch.setenv("EDUMAIL_NOW", (LATER + timedelta(minutes=9, seconds=59)).isoformat())
    client.get(c(mail, 1))
    assert len(events_named(store, events.EMAIL_CLICKED)) == 1
    monkeypatch.setenv("EDUMAIL_NOW", (LATER + timedelta(minutes=20)).isoformat())
    client.get(c(mail, 1))
    assert len(events_named(store, events.EMAIL_CLICKED)) == 2


def test_the_same_link_from_another_client_is_recorded(
    project_dir: Path, client: TestClient, store: Store, mail: int, now: None
) -> None:
    client.get(c(mail, 1))
    client.get(c(mail, 1), headers={"User-Agent": BROWSER + " Firefox/125.0"})
    with TestClient(create_app(project_module.load(project_dir)), client=("198.51.100.7", 5000)) as other:
        other.get(c(mail, 1), headers={"User-Agent": BROWSER}, follow_redirects=False)
    assert len(events_named(store, events.EMAIL_CLICKED)) == 3


def test_replays_of_the_open_pixel_by_one_client_are_recorded_once(
    client: TestClient, store: Store, mail: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(50):
        assert client.get(o(mail)).content == PIXEL
    assert len(events_named(store, events.EMAIL_OPENED)) == 1
    monkeypatch.setenv("EDUMAIL_NOW", (LATER + timedelta(minutes=11)).isoformat())
    client.get(o(mail))
    assert len(events_named(store, events.EMAIL_OPENED)) == 2


def test_the_client_is_kept_only_as_a_salted_hash(client: TestClient, store: Store, mail: int) -> None:
    client.get(c(mail, 1))
    [clicked] = events_named(store, events.EMAIL_CLICKED)
    assert "testclient" not in clicked["data"] and "Mozilla" not in clicked["data"]


def test_head_request_on_a_click_is_machine(client: TestClient, store: Store, mail: int) -> None:
    assert client.head(c(mail, 0)).status_code == 302
    assert events_named(store, events.EMAIL_CLICKED)[0]["machine"] == 1


def test_click_for_a_forgotten_contact_redirects_but_records_nothing(
    client: TestClient, store: Store, mail: int
) -> None:
    store.execute("UPDATE contacts SET forgotten_at = ?", (clock.to_db(SENT_AT),))
    assert client.get(c(mail, 0)).headers["location"] == LINKS[0]
    assert events_named(store, events.EMAIL_CLICKED) == []


# --- unsubscribe -------------------------------------------------------------------------------


def test_unsubscribe_get_shows_a_french_page_and_changes_nothing(client: TestClient, store: Store, mail: int) -> None:
    response = client.get(u(mail))
    assert response.status_code == 200
    assert "Centre de formation Exemple" in response.text
    assert '<form method="post">' in response.text and "<button" in response.text
    assert "désinscription" in response.text
    assert "set-cookie" not in response.headers
    assert consent_of(store, "lea@example.org") == events.OPTED_IN
    assert events_named(store, events.UNSUBSCRIBED) == []


def test_one_click_post_unsubscribes_with_proof(client: TestClient, store: Store, mail: int) -> None:
    response = client.post(u(mail), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "désinscrit" in response.text
    assert consent_of(store, "lea@example.org") == events.OPTED_OUT
    [unsubscribed] = events_named(store, events.UNSUBSCRIBED)
    assert unsubscribed["mail_id"] == mail
    assert json.loads(unsubscribed["data"]) == {
        "method": "one-click",
        "scope": "all",
        "previous": {"consent": "opted_in", "basis": "opt_in"},
    }
    log = store.consent_log(store.contact_by_email("lea@example.org")["id"])[-1]
    proof = json.loads(log["proof"])
    assert log["consent"] == events.OPTED_OUT and log["source"] == "unsubscribe link"
    assert proof["ip"] == "testclient" and proof["user_agent"] == BROWSER
    assert proof["mail_id"] == mail and proof["message_id"].startswith("<")
    assert [e["name"] for e in events_named(store, events.CONSENT_CHANGED)][-1:] == ["consent_changed"]


def test_one_click_post_as_multipart_unsubscribes(client: TestClient, store: Store, mail: int) -> None:
    response = client.post(u(mail), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert consent_of(store, "lea@example.org") == events.OPTED_OUT


def test_the_pages_button_unsubscribes(client: TestClient, store: Store, mail: int) -> None:
    response = client.post(u(mail), data={"confirm": "yes"})
    assert response.status_code == 200
    assert json.loads(events_named(store, events.UNSUBSCRIBED)[0]["data"])["method"] == "confirmation page"


def test_unsubscribing_twice_records_one_unsubscribe(client: TestClient, store: Store, mail: int) -> None:
    client.post(u(mail), data={"List-Unsubscribe": "One-Click"})
    client.post(u(mail), data={"List-Unsubscribe": "One-Click"})
    assert len(events_named(store, events.UNSUBSCRIBED)) == 1
    assert "déjà" in client.get(u(mail)).text


def test_forged_unsubscribe_token_is_404_and_changes_nothing(client: TestClient, store: Store, mail: int) -> None:
    response = client.post("/u/u1-AAAAAAAAAAAAAAAA", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert "Lien introuvable" in response.text
    assert consent_of(store, "lea@example.org") == events.OPTED_IN


def test_unsubscribe_for_a_forgotten_contact_records_nothing(client: TestClient, store: Store, mail: int) -> None:
    store.execute("UPDATE contacts SET forgotten_at = ?", (clock.to_db(SENT_AT),))
    assert client.post(u(mail), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert events_named(store, events.UNSUBSCRIBED) == []


def test_unsubscribe_ends_marketing_journeys(client: TestClient, store: Store, mail: int) -> None:
    from tracking_support import journey

    journey_id = journey(store, "relance", store.contact_by_email("lea@example.org")["id"], SENT_AT)
    client.post(u(mail), data={"List-Unsubscribe": "One-Click"})
    ended = store.row("SELECT state, end_reason FROM journeys WHERE id = ?", (journey_id,))
    assert ended == {"state": "exited", "end_reason": "unsubscribed"}
    assert [r["outcome"] for r in store.journey_log(journey_id)] == ["exited"]


# --- preferences ------------------------------------------------------------------------------


def test_preferences_page_shows_the_current_choice(client: TestClient, mail: int) -> None:
    response = client.get(p(mail))
    assert response.status_code == 200
    assert 'name="news" value="on" checked' in response.text
    assert "l•••@example.org" in response.text


def test_preferences_opt_out_keeps_service_mail(client: TestClient, store: Store, mail: int) -> None:
    response = client.post(p(mail), data={})
    assert "Vos préférences sont enregistrées" in response.text
    assert "checked" not in response.text
    assert consent_of(store, "lea@example.org") == events.OPTED_OUT
    found = store.contact_by_email("lea@example.org")
    assert contacts.may_receive(found, events.SERVICE) is None
    assert contacts.may_receive(found, events.MARKETING) == "opted out"
    assert len(events_named(store, events.UNSUBSCRIBED)) == 1


def test_preferences_resubscribe_needs_the_box_ticked(client: TestClient, store: Store, mail: int) -> None:
    client.post(p(mail), data={})
    client.post(p(mail), data={"other": "x"})
    assert consent_of(store, "lea@example.org") == events.OPTED_OUT
    client.post(p(mail), data={"news": "on"})
    found = store.contact_by_email("lea@example.org")
    assert found["consent"] == events.OPTED_IN and found["consent_basis"] == "opt_in"
    proof = json.loads(store.consent_log(found["id"])[-1]["proof"])
    assert proof["form"] == "preferences page" and "actualités" in proof["wording"]


def test_preferences_kept_unchanged_logs_nothing(client: TestClient, store: Store, mail: int) -> None:
    before = len(store.consent_log(store.contact_by_email("lea@example.org")["id"]))
    client.post(p(mail), data={"news": "on"})
    assert len(store.consent_log(store.contact_by_email("lea@example.org")["id"])) == before


def test_forged_preferences_token_is_404(client: TestClient, mail: int) -> None:
    assert client.get("/p/p1-AAAAAAAAAAAAAAAA").status_code == 404
    assert client.get(u(mail).replace("/u/", "/p/")).status_code == 404


# --- double opt-in ----------------------------------------------------------------------------


def test_confirmation_get_does_not_confirm(client: TestClient, store: Store) -> None:
    contact_id = contact(store, "new@example.org", consent=events.UNKNOWN)
    response = client.get(k(contact_id))
    assert response.status_code == 200 and "Je confirme" in response.text
    assert consent_of(store, "new@example.org") == events.UNKNOWN


def test_confirmation_post_opts_in_with_proof(client: TestClient, store: Store) -> None:
    contact_id = contact(store, "new@example.org", consent=events.UNKNOWN)
    response = client.post(k(contact_id), data={})
    assert response.status_code == 200 and "confirmée" in response.text
    found = store.contact_by_email("new@example.org")
    assert found["consent"] == events.OPTED_IN and found["consent_basis"] == "opt_in"
    log = store.consent_log(contact_id)[-1]
    proof = json.loads(log["proof"])
    assert proof["form"] == "double opt-in link" and proof["user_agent"] == BROWSER and proof["ip"] == "testclient"
    changed = events_named(store, events.CONSENT_CHANGED)[-1]
    assert json.loads(changed["data"])["to"] == events.OPTED_IN


def test_confirmation_twice_logs_once(client: TestClient, store: Store) -> None:
    contact_id = contact(store, "new@example.org", consent=events.UNKNOWN)
    client.post(k(contact_id))
    client.post(k(contact_id))
    assert [e["consent"] for e in store.consent_log(contact_id)].count(events.OPTED_IN) == 1


def test_confirmation_for_a_forgotten_or_unknown_contact_is_404(client: TestClient, store: Store) -> None:
    contact_id = contact(store, "new@example.org", consent=events.UNKNOWN)
    store.execute("UPDATE contacts SET forgotten_at = ?", (clock.to_db(SENT_AT),))
    assert client.post(k(contact_id)).status_code == 404
    assert client.post(k(4242)).status_code == 404
    assert client.post("/k/k1-AAAAAAAAAAAAAAAA").status_code == 404
    assert consent_of(store, "new@example.org") == events.UNKNOWN


# --- events API ---------------------------------------------------------------------------------


def auth(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_records_an_event_and_creates_unknown_contacts(client: TestClient, store: Store) -> None:
    body = {"email": "Paul@Example.org", "name": "inscription_commencee", "data": {"formation": "Excel"}}
    response = client.post("/api/events", json=body, headers=auth())
    assert response.status_code == 201
    assert response.json()["contact_created"] is True
    found = store.contact_by_email("paul@example.org")
    assert found["consent"] == events.UNKNOWN
    [event] = events_named(store, "inscription_commencee")
    assert json.loads(event["data"]) == {"formation": "Excel"}
    assert event["source"] == "api" and event["at"] == LATER


def test_api_at_is_read_in_the_project_timezone(client: TestClient, store: Store) -> None:
    body = {"email": "paul@example.org", "name": "rdv", "at": "2026-11-03T10:00"}
    assert client.post("/api/events", json=body, headers=auth()).status_code == 201
    assert events_named(store, "rdv")[0]["at"] == clock.from_db("2026-11-03T09:00:00.000000Z")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}])
def test_api_without_the_token_is_401(client: TestClient, store: Store, headers: dict[str, str]) -> None:
    response = client.post("/api/events", json={"email": "a@example.org", "name": "x"}, headers=headers)
    assert response.status_code == 401
    assert events_named(store, "x") == []


def test_api_is_closed_when_no_token_is_set(project_dir: Path, store: Store, now: None) -> None:
    app = create_app(project_module.load(project_dir))
    with TestClient(app) as anonymous:
        assert anonymous.post("/api/events", json={}, headers={"Authorization": "Bearer "}).status_code == 401
        assert anonymous.post("/api/events", json={}, headers=auth("")).status_code == 401


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"name": "x"}', "email"),
        (b'{"email": "a@example.org"}', "name"),
        (b'{"email": "a@example.org", "name": "  "}', "name"),
        (b'{"email": "not-an-address", "name": "x"}', "invalid e-mail"),
        (b'{"email": "a@example.org", "name": "x", "at": "yesterday"}', "ISO 8601"),
        (b'{"email": "a@example.org", "name": "x", "at": 12}', "ISO 8601"),
        (b'{"email": "a@example.org", "name": "x", "data": [1]}', "object"),
        (b'{"email": "a@example.org", "name": "x", "extra": 1}', "unknown field"),
        (b'{"email": "a@example.org", "name": "email_opened"}', "recorded by edumail"),
        (b'{"email": "a@example.org", "name": "complained"}', "recorded by edumail"),
        (b'{"email": "a@example.org", "name": "email_delivered"}', "recorded by edumail"),
        (b"\xff\xfe", "not JSON"),
        (b'{"email": "a@example.org", "name": "x", "data": {"n": NaN}}', "not JSON"),
        (b'{"email": "a@example.org", "name": "x", "at": "9999-12-31T23:59:59"}', "outside 1900-2199"),
        (b'{"email": "a@example.org", "name": "x", "at": "0001-01-01T00:00+01:00"}', "outside 1900-2199"),
        (b'{"email": "a@example.org", "name": "x", "data": {"session_end": "9999-12-31"}}', "data.session_end"),
        (b'{"email": "a@example.org", "name": "x\\ud800"}', "Unicode"),
        (b'{"email": "a@example.org", "name": "x", "data": {"n": "\\udc00"}}', "Unicode"),
        (b'{"email": "a@example.org", "name": "x", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nested"),
        (b'{"email": "a@example.org", "name": "x", "data": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}", "nested"),
    ],
)
def test_api_bad_input_is_400_with_a_message(client: TestClient, store: Store, body: bytes, message: str) -> None:
    response = client.post("/api/events", content=body, headers={**auth(), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert store.contact_by_email("a@example.org") is None


def test_api_refuses_a_forgotten_address(client: TestClient, store: Store) -> None:
    contact_id = contact(store, "gone@example.org")
    store.add_suppression(contacts.suppression_hash(store, "gone@example.org"), clock.to_db(SENT_AT), "forget")
    store.execute(
        "UPDATE contacts SET email = 'forgotten-1@invalid', forgotten_at = ? WHERE id = ?",
        (clock.to_db(SENT_AT), contact_id),
    )
    response = client.post("/api/events", json={"email": "gone@example.org", "name": "x"}, headers=auth())
    assert response.status_code == 409
    assert "forgotten" in response.json()["error"]
    assert events_named(store, "x") == []
    assert store.contact_by_email("gone@example.org") is None


# --- safety ------------------------------------------------------------------------------------


def test_oversized_body_is_413(client: TestClient, store: Store, mail: int) -> None:
    big = b"x" * (MAX_BODY + 1)
    assert client.post("/api/events", content=big, headers=auth()).status_code == 413
    assert client.post(u(mail), content=big).status_code == 413
    assert consent_of(store, "lea@example.org") == events.OPTED_IN


def test_oversized_chunked_body_is_413(client: TestClient, mail: int) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 10_000

    response = client.post("/api/events", content=chunks(), headers=auth())
    assert response.status_code == 413


def test_an_internal_error_is_a_plain_500_without_traceback(client: TestClient, store: Store, mail: int) -> None:
    store.execute("DROP TABLE events")
    response = client.get(o(mail))
    assert response.status_code == 500
    assert "Traceback" not in response.text and "sqlite" not in response.text.lower()


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


def test_unknown_routes_and_methods(client: TestClient, mail: int) -> None:
    assert client.get("/").status_code == 404
    assert client.post(o(mail)).status_code == 405
    assert client.get("/api/events").status_code == 405


def test_create_app_needs_a_secret(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edumail.errors import EdumailError

    monkeypatch.delenv("EDUMAIL_SECRET")
    with pytest.raises(EdumailError, match="no secret key"):
        create_app(project_module.load(project_dir))


def test_two_links_clicked_a_minute_apart_stay_human(
    client: TestClient, store: Store, mail: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get(c(mail, 0))
    monkeypatch.setenv("EDUMAIL_NOW", (LATER + timedelta(seconds=45)).isoformat())
    client.get(c(mail, 1))
    assert [e["machine"] for e in events_named(store, events.EMAIL_CLICKED)] == [0, 0]
