"""The GraphQL documents and setup steps the template-language integration tests share:
templates and their translations, previews and sends, and a candidate with an
application (``candidate_with_application``) or an interview whose invitation was sent
(``invited_interview``)."""

from __future__ import annotations

CREATE_CANDIDATE = """mutation($input: CreateCandidateInput!) {
  createCandidate(input: $input) { candidate { id } errors { code field message } } }"""
CREATE_POSITION = """mutation { createPosition(input: {title: "Backend Engineer"}) {
  position { id } errors { code } } }"""
CREATE_APPLICATION = """mutation($c: ID!, $p: ID!) {
  createApplication(input: {candidateId: $c, positionId: $p}) { application { id } errors { code } } }"""
SCHEDULE = """mutation($input: ScheduleInterviewInput!) {
  scheduleInterview(input: $input) { interview { id title } errors { code field message } } }"""
TEMPLATE_FIELDS = "id name kind language isDefault subject body translations { language subject body }"
TEMPLATES = "query($kind: TemplateKind) { emailTemplates(kind: $kind) { " + TEMPLATE_FIELDS + " } }"
CREATE_TEMPLATE = """mutation($input: EmailTemplateInput!) {
  createEmailTemplate(input: $input) { template { """ + TEMPLATE_FIELDS + """ }
  errors { code field message } } }"""
UPDATE_TEMPLATE = """mutation($id: ID!, $input: EmailTemplateInput!) {
  updateEmailTemplate(id: $id, input: $input) { template { """ + TEMPLATE_FIELDS + """ }
  errors { code field message } } }"""
PREVIEW = """query($input: PreviewMessageInput!) { previewMessage(input: $input) {
  subject body language missingPlaceholders errors { code field message } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id subject body } errors { code field message } } }"""
INVITE = """mutation($input: SendInterviewInvitationInput!) {
  sendInterviewInvitation(input: $input) { message { id subject body }
  errors { code field message } } }"""
REJECT = """mutation($input: RejectApplicationsInput!) {
  rejectApplications(input: $input) { bulkOperation { id total } errors { code field message } } }"""


async def candidate_with_application(api, tenant, first, language, *, tz="Europe/Amsterdam",
                                     position=None):
    c = await api.gql(tenant, CREATE_CANDIDATE, input={
        "firstName": first, "lastName": "Tester", "email": f"{first.lower()}@example.org",
        "language": language, "timezone": tz})
    assert c["createCandidate"]["errors"] == []
    cid = c["createCandidate"]["candidate"]["id"]
    if position is None:
        position = (await api.gql(tenant, CREATE_POSITION))["createPosition"]["position"]["id"]
    a = await api.gql(tenant, CREATE_APPLICATION, c=cid, p=position)
    return cid, a["createApplication"]["application"]["id"], position


async def invited_interview(api, tenant, app_id, *, video="https://meet.example/abc"):
    """A scheduled interview with its invitation sent (so a reschedule or cancel notifies)."""
    data = await api.gql(tenant, SCHEDULE, input={
        "applicationId": app_id, "startsAt": "2027-12-14T13:00:00Z",
        "endsAt": "2027-12-14T14:00:00Z", "timezone": "Europe/Amsterdam", "videoLink": video})
    assert data["scheduleInterview"]["errors"] == []
    iv = data["scheduleInterview"]["interview"]
    sent = await api.gql(tenant, INVITE, input={
        "interviewId": iv["id"], "subject": "Invitation", "body": "See you {{ interview.date }}"})
    assert sent["sendInterviewInvitation"]["errors"] == []
    return iv
