"""Anonymising one candidate: afterwards a dump of the whole database (pg_dump, sqlite
.dump and the raw SQLite file) and the blob directory hold nothing of the candidate, and
interview texts are matched on whole names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise import Tortoise

from core.models import (
    Application,
    Candidate,
    Document,
    EmailTemplate,
    InboundEmail,
    Interview,
    Message,
    MessageEvent,
    Position,
    RejectionReason,
)
from core.models.enums import (
    ApplicationStatus,
    AttendeeResponse,
    MessageDirection,
    MessageKind,
    MessageStatus,
    TemplateKind,
)
from core.services import interviews, messaging, recording
from core.services.anonymize import anonymize_candidate, anonymize_candidates
from core.services.documents import create_documents, stage_bytes, upload_document
from tests.support.personal_data import (
    SECRETS,
    ZEB_EMAIL,
    _blob_files,
    _database_views,
    _found,
)

if TYPE_CHECKING:  # a EnvInfo imported for real would be collected as a test class
    from tests.conftest import EnvInfo
    from tests.support.fixtures import Tenant
    from tests.support.sink import Sink

Worker = Callable[..., Awaitable[None]]

S = MessageStatus

# The other candidate's, which must stay (also proves the dump scanning sees blobs).
KEPT = ["philomena", "marchbanks", "gooseberry-lantern", "hedgehog-raw", "philo-doc-badger"]


# --- the scene -------------------------------------------------------------------------


async def _scene(tenant: Tenant, sink: Sink, run_worker: Worker) -> dict[str, Any]:
    cid = tenant.company.id
    emp = tenant.employee
    zeb = await Candidate.create(company_id=cid, first_name="Zebulon", last_name="Quixotic",
                                 email=ZEB_EMAIL)
    phi = await Candidate.create(company_id=cid, first_name="Philomena", last_name="Marchbanks",
                                 email="philomena.marchbanks@example.net")
    pos = await Position.create(company_id=cid, title="Backend Engineer")
    reason = await RejectionReason.create(company_id=cid, label="Skills")
    rejected_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    z_app = await Application.create(
        company_id=cid, candidate=zeb, position=pos, status=ApplicationStatus.REJECTED,
        rejection_reason=reason, rejected_at=rejected_at,
        rejection_note="Zebulon wanted too-much-wombat")
    p_app = await Application.create(company_id=cid, candidate=phi, position=pos)

    # Documents: Zebulon's own CV, one attached only to his message (no candidate on the
    # row), a bulk attachment shared with Philomena's message, a template attachment.
    cv = await upload_document(employee=emp, candidate_id=zeb.id, staged=await stage_bytes(
        b"CV of Zebulon Quixotic: PLATYPUS wrangler", filename="Zebulon_CV.txt",
        content_type="text/plain"))
    [annex] = await create_documents(
        [await stage_bytes(b"annex: general terms", filename="annex.txt",
                           content_type="text/plain")],
        company_id=cid, candidate_id=None, uploaded_by=emp.id)
    [shared] = await create_documents(
        [await stage_bytes(b"company brochure", filename="brochure.txt",
                           content_type="text/plain")],
        company_id=cid, candidate_id=None, uploaded_by=emp.id)
    [tpl_doc] = await create_documents(
        [await stage_bytes(b"benefits overview", filename="benefits.txt",
                           content_type="text/plain")],
        company_id=cid, candidate_id=None, uploaded_by=emp.id)
    tpl = await EmailTemplate.create(company_id=cid, name="Hello", kind=TemplateKind.MESSAGE,
                                     subject="Hello", body="Hi")
    await tpl.attachments.add(tpl_doc, annex)  # annex is on a template too: it must stay
    p_doc = await upload_document(employee=emp, candidate_id=phi.id, staged=await stage_bytes(
        b"PHILO-DOC-BADGER", filename="philo.txt", content_type="text/plain"))
    [private] = await create_documents(
        [await stage_bytes(b"for Zebulon only: platypus clause", filename="clause.txt",
                           content_type="text/plain")],
        company_id=cid, candidate_id=None, uploaded_by=emp.id)

    # A message refused by the relay: the error and the history quote the address.
    sink.handler.refuse_rcpt[ZEB_EMAIL] = f"550 5.1.1 <{ZEB_EMAIL}>: bounced-llama unknown"
    failed = await messaging.send_message(employee=emp, candidate_id=zeb.id, subject="Kumquat 1",
                                          body="Dear Zebulon, marmalade-ostrich")
    await run_worker()
    sink.handler.refuse_rcpt.clear()

    sent = await messaging.send_message(
        employee=emp, candidate_id=zeb.id, application_id=z_app.id,
        subject="Kumquat plan for Zebulon", body="Dear Zebulon Quixotic, the marmalade-ostrich",
        cc=["zq-second@example.com"], document_ids=[cv.id, shared.id, private.id],
        new_files=[await stage_bytes(b"Offer for Zebulon Quixotic", filename="offer.txt",
                                     content_type="text/plain")])
    p_msg = await messaging.send_message(employee=emp, candidate_id=phi.id, subject="Hi",
                                         body="Dear Philomena, gooseberry-lantern",
                                         document_ids=[shared.id, p_doc.id])
    iv = await interviews.schedule_interview(
        employee=emp, application_id=z_app.id, title="Interview with Zebulon Quixotic",
        starts_at=datetime(2027, 12, 14, 13, 0, tzinfo=UTC),
        ends_at=datetime(2027, 12, 14, 14, 0, tzinfo=UTC),
        video_link="https://meet.example/zebulon-quixotic")
    invitation = await interviews.send_invitation(
        employee=emp, interview_id=iv.id, subject="Interview, Zebulon",
        body="Dear {{ candidate.first_name }}, see you (marmalade-ostrich).")
    await run_worker()
    await sink.wait_for(3)
    for m in (failed, sent, invitation, p_msg):
        await m.refresh_from_db()
    assert failed.status == S.FAILED and ZEB_EMAIL in (failed.error or "")
    assert sent.status == S.SENT and invitation.status == S.SENT and p_msg.status == S.SENT
    assert ZEB_EMAIL in (invitation.ics or "").lower()
    # Scheduled for tomorrow (after the burst worker ran: a deferred job keeps it alive).
    later = await messaging.send_message(
        employee=emp, candidate_id=zeb.id, subject="Kumquat later", body="marmalade-ostrich 2",
        scheduled_at=recording.now() + timedelta(days=1))

    # What the gateway would have stored: a calendar answer, a reply with its raw copy,
    # a DSN for the sent message, and an unrouted mail from his address.
    await Interview.filter(id=iv.id).update(
        candidate_response=AttendeeResponse.ACCEPTED, candidate_responded_at=recording.now(),
        candidate_comment="Looking forward, narwhal!")
    await InboundEmail.create(
        company_id=cid, mail_from=ZEB_EMAIL, rcpt_to=["i-token@in.mail.test"], size=10,
        raw_mail=f"ATTENDEE:mailto:{ZEB_EMAIL}\r\nCOMMENT:Looking forward, narwhal!".encode(),
        outcome="CALENDAR_REPLY", detail="candidate answered ACCEPTED with comment 'narwhal'",
        interview_id=iv.id)
    reply = await Message.create(
        company_id=cid, candidate_id=zeb.id, application_id=z_app.id, kind=MessageKind.REPLY,
        direction=MessageDirection.INBOUND, status=S.RECEIVED, from_name="Zebulon Quixotic",
        from_address=ZEB_EMAIL, to_addrs=["r-token@in.mail.test"], subject="Re: Kumquat plan",
        body="Thanks! xylophone-tangerine\n\n> Dear Zebulon Quixotic",
        rfc_message_id="zebulon.quixotic.1@example.org", in_reply_to=sent.rfc_message_id)
    await MessageEvent.create(message_id=reply.id, status=S.RECEIVED, at=recording.now(),
                              detail=f"reply from {ZEB_EMAIL}")
    [attached] = await create_documents(
        [await stage_bytes(b"Zebulon's portfolio, xylophone-tangerine", filename="portfolio.txt",
                           content_type="text/plain")],
        company_id=cid, candidate_id=zeb.id, uploaded_by=None)
    await reply.attachments.add(attached)
    await InboundEmail.create(
        company_id=cid, mail_from=ZEB_EMAIL, rcpt_to=["r-token@in.mail.test"], size=100,
        raw_mail=(f"From: Zebulon Quixotic <{ZEB_EMAIL}>\r\nSubject: Re: Kumquat plan\r\n\r\n"
                  "Thanks! xylophone-tangerine").encode(),
        outcome="REPLY", detail="reply stored", message_id=reply.id, candidate_id=zeb.id)
    await InboundEmail.create(
        company_id=cid, mail_from="", rcpt_to=["b-token@in.mail.test"], size=50,
        raw_mail=f"Final-Recipient: rfc822; {ZEB_EMAIL}\r\nbounced-llama".encode(),
        outcome="BOUNCE", detail=f"bounce for {ZEB_EMAIL}", message_id=sent.id)
    await InboundEmail.create(
        company_id=None, mail_from=ZEB_EMAIL.upper(), rcpt_to=["nobody@in.mail.test"], size=5,
        raw_mail=b"Zebulon writes to nobody", outcome="REJECTED", detail="no such recipient")
    await InboundEmail.create(
        company_id=cid, mail_from="philomena.marchbanks@example.net",
        rcpt_to=["r-token@in.mail.test"], size=5, raw_mail=b"Philomena says hedgehog-raw",
        outcome="REPLY", detail="reply stored", message_id=p_msg.id, candidate_id=phi.id)
    return {
        "zeb": zeb, "phi": phi, "z_app": z_app, "p_app": p_app, "reason": reason, "iv": iv,
        "rejected_at": rejected_at, "later": later, "sent": sent, "failed": failed,
        "invitation": invitation, "reply": reply, "p_msg": p_msg, "shared": shared,
        "tpl_doc": tpl_doc, "annex": annex, "p_doc": p_doc, "cv": cv, "private": private,
    }


async def test_nothing_of_the_candidate_is_left_anywhere(
    tenant: Tenant, sink: Sink, run_worker: Worker, db: EnvInfo
) -> None:
    if db.backend == "sqlite":
        # SQLite's own default (Debian's build turns it on): nothing zeroed until we ask.
        await Tortoise.get_connection("default").execute_script("PRAGMA secure_delete = OFF")
    s = await _scene(tenant, sink, run_worker)
    zeb, phi = s["zeb"], s["phi"]
    if db.backend == "sqlite":
        # Into the main file, as on a long-running system, so the raw look below means
        # something (deleted cells, old row versions) beyond a truncated WAL.
        await Tortoise.get_connection("default").execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = _database_views(db)["raw file db.sqlite3"]
        assert all(n.encode() in raw for n in ("zebulon", "marmalade-ostrich", "narwhal"))
    # The scanning works: before, every secret is visible in the dump and the blobs.
    before = {**_database_views(db), **_blob_files(db)}
    assert not set(SECRETS) - {n for _, n in _found(before, SECRETS)}
    zeb_docs = await Document.filter(candidate_id=zeb.id).count()
    zeb_msgs = await Message.filter(candidate_id=zeb.id).count()
    blobs_before = set(_blob_files(db))

    result = await anonymize_candidate(zeb.id, company_id=tenant.company.id)

    assert result.candidates == 1 and result.newly_anonymized == 1 and result.missing == []
    assert result.messages == zeb_msgs == 5
    assert result.messages_cancelled == 1
    assert result.documents == zeb_docs + 1 == 4  # CV, offer, portfolio + the private one
    assert result.blobs == 4
    assert result.inbound_emails == 4
    assert result.in_flight_message_ids == []

    # Nowhere: not in the dump, not in the raw database file, not in a blob.
    assert _found(_database_views(db), SECRETS) == []
    assert _found(_blob_files(db), SECRETS) == []

    # The candidate: a row without personal data.
    await zeb.refresh_from_db()
    assert (zeb.first_name, zeb.last_name, zeb.email) == (None, None, None)
    assert zeb.anonymized_at is not None and zeb.full_name == "Anonymized candidate"
    # Statistics keep their rows.
    msgs = {m.id: m for m in await Message.filter(candidate_id=zeb.id)}
    assert len(msgs) == 5
    assert msgs[s["sent"].id].status == S.SENT and msgs[s["sent"].id].sent_at is not None
    assert msgs[s["invitation"].id].status == S.SENT
    assert msgs[s["invitation"].id].kind == MessageKind.INTERVIEW_INVITATION
    assert msgs[s["failed"].id].status == S.FAILED and msgs[s["failed"].id].error is None
    assert msgs[s["reply"].id].status == S.RECEIVED
    assert msgs[s["later"].id].status == S.CANCELLED  # never mail an erased candidate
    for m in msgs.values():
        assert m.subject == "[anonymized]" and m.body == "" and m.body_html is None
        assert m.to_addrs == [] and m.cc_addrs == [] and m.ics is None
    assert msgs[s["reply"].id].from_address == "" and msgs[s["reply"].id].from_name == ""
    assert msgs[s["sent"].id].from_name == "Ada Admin"  # our side stays
    history = [(e.status, e.detail) for e in
               await MessageEvent.filter(message_id=s["failed"].id).order_by("id")]
    assert history == [(S.QUEUED, None), (S.SENDING, None), (S.FAILED, None)]
    later_history = [e.status for e in
                     await MessageEvent.filter(message_id=s["later"].id).order_by("id")]
    assert later_history == [S.SCHEDULED, S.CANCELLED]
    app = await Application.get(id=s["z_app"].id)
    assert app.status == ApplicationStatus.REJECTED and app.rejection_note is None
    assert app.rejection_reason_id == s["reason"].id and app.rejected_at == s["rejected_at"]
    iv = await Interview.get(id=s["iv"].id)
    assert iv.title == "Interview" and iv.candidate_comment is None and iv.video_link is None
    assert iv.candidate_response == AttendeeResponse.ACCEPTED
    assert iv.candidate_responded_at is not None
    # Shared documents stay with their links; his own are gone with their files.
    assert await Document.filter(candidate_id=zeb.id).count() == 0
    for doc in (s["shared"], s["tpl_doc"], s["annex"], s["p_doc"]):
        assert await Document.exists(id=doc.id)
    assert not await Document.exists(id=s["private"].id)
    assert {d.id for d in await s["p_msg"].attachments.all()} == {s["shared"].id, s["p_doc"].id}
    assert {d.id for d in await msgs[s["sent"].id].attachments.all()} == {s["shared"].id}
    assert len(blobs_before - set(_blob_files(db))) == 4

    # The other candidate keeps everything.
    await phi.refresh_from_db()
    assert (phi.first_name, phi.email, phi.anonymized_at) == (
        "Philomena", "philomena.marchbanks@example.net", None)
    p_msg = await Message.get(id=s["p_msg"].id)
    assert p_msg.body.startswith("Dear Philomena, gooseberry-lantern")
    assert p_msg.to_addrs == ["philomena.marchbanks@example.net"] and p_msg.status == S.SENT
    assert await InboundEmail.filter(candidate_id=phi.id).count() == 1
    everything = {**_database_views(db), **_blob_files(db)}
    assert sorted({n for _, n in _found(everything, KEPT)}) == sorted(KEPT)

    # Twice is harmless.
    again = await anonymize_candidates([zeb.id], company_id=tenant.company.id)
    assert again.newly_anonymized == 0 and again.documents == 0 and again.inbound_emails == 0
    assert again.messages_cancelled == 0
    await zeb.refresh_from_db()
    assert zeb.anonymized_at is not None
    assert await Message.filter(candidate_id=zeb.id, status=S.SENT).count() == 2
    assert _found(_database_views(db), SECRETS) == []


def test_interview_texts_are_matched_on_whole_names() -> None:
    from core.services.anonymize import _name_needles, _names

    needles = _name_needles({"first_name": "Al", "last_name": "de Vries", "email": "al.dv@x.org"})
    assert _names("Interview with Al", needles) and _names("Call: de Vries", needles)
    assert _names("Vries, second round", needles) and _names("https://meet.x/al.dv", needles)
    assert not _names("Data Analyst", needles) and not _names("Interview de produit", needles)
