"""The values placeholders take from a render context: each one line, never blank (a
missing value is None), interview dates and times in the candidate's language and zone."""

from __future__ import annotations

from core.mail.details import (
    CONTROL_CHARS,
    RenderContext,
    format_long_date,
    format_short_time,
    interview_details,
    localize,
    resolve_locale,
    resolve_timezone,
)


def one_line(value: str | None) -> str | None:
    if value is None:
        return None
    # Most values already are one line (printable: no control character, no whitespace
    # but the ASCII space): as they are, without the regular expression (ten a recipient).
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value or None
    value = " ".join(CONTROL_CHARS.sub(" ", value).split())
    return value or None


def placeholder_values(ctx: RenderContext) -> dict[str, str | None]:
    cand = ctx.candidate
    full = one_line(cand.full_name) or one_line(
        " ".join(p for p in (cand.first_name, cand.last_name) if p))
    values: dict[str, str | None] = {
        "candidate.first_name": one_line(cand.first_name),
        "candidate.last_name": one_line(cand.last_name),
        "candidate.full_name": full,
        "candidate.email": one_line(cand.email),
        "position.title": one_line(ctx.position.title) if ctx.position else None,
        "company.name": one_line(ctx.company.name),
        "sender.name": one_line(ctx.sender.name),
        "sender.email": one_line(ctx.sender.email),
        "rejection.reason": one_line(ctx.rejection.reason) if ctx.rejection else None,
    }
    iv = ctx.interview
    if iv is not None:
        locale = resolve_locale(cand.language)
        zone_name, zone = resolve_timezone(cand.timezone)
        start, end = localize(iv.starts_at, zone), localize(iv.ends_at, zone)
        details = "\n".join(
            x for x in (one_line(line) for line in
                        interview_details(iv, cand.language, cand.timezone).split("\n")) if x)
        values.update({
            "interview.title": one_line(iv.title),
            "interview.date": format_long_date(start.date(), locale),
            "interview.start_time": format_short_time(start, locale),
            "interview.end_time": format_short_time(end, locale),
            "interview.timezone": zone_name,
            "interview.location": one_line(iv.location),
            "interview.video_link": one_line(iv.video_link),
            "interview.interviewers": one_line(
                ", ".join(n for n in (one_line(i) for i in iv.interviewers) if n)),
            "interview.details": details or None,
        })
    return values
