"""The vocabulary of events edumail records itself (SPEC section 3)."""

EMAIL_SENT = "email_sent"
EMAIL_OPENED = "email_opened"
EMAIL_CLICKED = "email_clicked"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
EMAIL_DELIVERED = "email_delivered"  # a provider says the recipient's server accepted it (SPEC 18)
COMPLAINED = "complained"  # a spam report (SPEC 18)
REPLIED = "replied"
TAG_ADDED = "tag_added"
TAG_REMOVED = "tag_removed"
STAGE_CHANGED = "stage_changed"
CONSENT_CHANGED = "consent_changed"
SUBSCRIBED = "subscribed"

BUILTIN = frozenset(
    {
        EMAIL_SENT,
        EMAIL_OPENED,
        EMAIL_CLICKED,
        UNSUBSCRIBED,
        BOUNCED,
        EMAIL_DELIVERED,
        COMPLAINED,
        REPLIED,
        TAG_ADDED,
        TAG_REMOVED,
        STAGE_CHANGED,
        CONSENT_CHANGED,
    }
)

# Consent states and bases (SPEC sections 3 and 9).
OPTED_IN = "opted_in"
UNKNOWN = "unknown"
OPTED_OUT = "opted_out"
CONSENT_STATES = (OPTED_IN, UNKNOWN, OPTED_OUT)
BASES = ("opt_in", "customer", "professional")

# Purposes of a sequence or mail.
MARKETING = "marketing"
SERVICE = "service"

# Sessions (SPEC 13): recorded by edumail when a session moves or is cancelled...
SESSION_CHANGED = "session_changed"
SESSION_CANCELLED = "session_cancelled"
# ...and names the library's sequences expect from the centre's systems.
PRESENT = "present"
ABSENT = "absent"
EVALUATION_COMPLETEE = "evaluation_completee"
