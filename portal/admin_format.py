"""How the admin shows states, times, durations and counters: words with a colour, never raw codes.

Shared by every app's admin (``portal`` is the ground the others stand on). The colours are CSS classes
of ``portal/static/portal/admin.css`` (``.badge-ok`` and friends), readable in the light and dark themes.
"""

import datetime

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

OK, BAD, WARN, INFO, QUIET = "ok", "bad", "warn", "info", "quiet"


def badge(text, tone=QUIET, title=""):
    """A state as a word in a coloured pill; ``title`` says more on hover."""
    if title:
        return format_html('<span class="badge badge-{}" title="{}">{}</span>', tone, title, text)
    return format_html('<span class="badge badge-{}">{}</span>', tone, text)


# Compliance, inventory state and registration, as the computer list and the reports show them.
COMPLIANCE_TONES = {"compliant": OK, "notCompliant": BAD}
INVENTORY_STATE_TONES = {0: QUIET, 1: QUIET, 2: WARN}
REGISTRATION_TONES = {"registered": OK, "not_started": QUIET, "account_not_onboarded": WARN}


def compliance_badge(value, label):
    if not value:
        return badge(_("Not evaluated"), QUIET)
    return badge(label, COMPLIANCE_TONES.get(value, QUIET))


def inventory_state_badge(value, label):
    if value is None:
        return "-"
    titles = {
        0: _("Conditional Access inventory state 0: the Mac is managed and checks in."),
        1: _("Conditional Access inventory state 1: retired or no longer managed."),
        2: _("Conditional Access inventory state 2: no check-in within the tenant's limit."),
    }
    return badge(label, INVENTORY_STATE_TONES.get(value, QUIET), titles.get(value, ""))


def short_datetime(value):
    """A date and time to the minute in the server's time zone ("2026-11-29 04:09"), "-" for none."""
    if not value:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def ago(value, now=None):
    """How long ago, in one short unit ("5 min ago", "3 h ago", "12 days ago"), the exact time on hover."""
    if not value:
        return "-"
    seconds = max(0, int(((now or timezone.now()) - value).total_seconds()))
    if seconds < 60:
        text = _("just now")
    elif seconds < 3600:
        text = _("%(n)d min ago") % {"n": seconds // 60}
    elif seconds < 48 * 3600:
        text = _("%(n)d h ago") % {"n": seconds // 3600}
    else:
        days = seconds // 86400
        text = ngettext("%(n)d day ago", "%(n)d days ago", days) % {"n": days}
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), short_datetime(value), text)


def duration_text(delta):
    """A duration for people: "10 ms", "2.4 s", "3 min 05 s", "1 h 02 min"; "-" when unknown (still running)."""
    if delta is None:
        return "-"
    if isinstance(delta, datetime.timedelta):
        seconds = delta.total_seconds()
    else:
        seconds = float(delta)
    if seconds < 1:
        return _("%(n)d ms") % {"n": round(seconds * 1000)}
    if seconds < 60:
        return _("%(n).1f s") % {"n": seconds}
    whole = int(round(seconds))
    if whole < 3600:
        return _("%(m)d min %(s)02d s") % {"m": whole // 60, "s": whole % 60}
    return _("%(h)d h %(m)02d min") % {"h": whole // 3600, "m": (whole % 3600) // 60}


def counter_items(counters, prefix=""):
    """Flatten a run's counters into (name, value) pairs people can read, leaving out zeros and empties.

    Nested dicts (Sync now keeps one per step) become "step: name"; underscores become spaces.
    """
    items = []
    for key, value in (counters or {}).items():
        name = ("%s%s" % (prefix, key)).replace("_", " ")
        if isinstance(value, dict):
            items += counter_items(value, prefix="%s: " % name)
        elif value in (0, "", None, False, [], {}):
            continue
        elif value is True:
            items.append((name, _("yes")))
        else:
            items.append((name, value))
    return items


def counters_html(counters, limit=None):
    """A run's counters as a list of "name value" chips; with ``limit``, the rest as "+N more"."""
    items = counter_items(counters)
    if not items:
        return "-"
    shown = items if limit is None else items[:limit]
    html = format_html_join(
        "", '<li{}><span class="counter-name">{}</span> <span class="counter-value">{}</span></li>',
        # A number stays with its name on one line; a sentence (a skipped reason) wraps like text.
        ((mark_safe(" class=\"counter-text\"") if isinstance(value, str) and " " in value else "", name, value)
         for name, value in shown),
    )
    more = ""
    if limit is not None and len(items) > limit:
        more = format_html('<li class="counter-more">{}</li>', _("+%(n)d more") % {"n": len(items) - limit})
    return format_html('<ul class="counters">{}{}</ul>', html, more)


def clipped(text, length=80):
    """A long text cut at a word boundary with an ellipsis; the whole text on hover."""
    text = str(text or "")
    if len(text) <= length:
        return text or "-"
    cut = text[: length - 1]
    if " " in cut[length // 2:]:
        cut = cut[: cut.rindex(" ")]
    return format_html('<span title="{}">{}\u2026</span>', text, cut.rstrip(" ,;:"))
