"""The channel layer: which channels one send uses, and why.

Pure and engine-free: the profile, consent ledger, recent sends, policy and
time are all arguments, so the simulator and the server decide identically.
"""

from channels.consent import (
    Keyword,
    KeywordMatch,
    KeywordOutcome,
    apply_keyword,
    classify_keyword,
    consent_reason,
    consent_status,
)
from channels.encoding import SmsEncoding, sms_encoding
from channels.engagement import ChannelEngagement
from channels.frequency import SentRecord, cap_reached
from channels.policy import CHANNELS, Policy, PolicyError, load_policy
from channels.profile import ConsentRecord, Profile, ProfileError
from channels.quiet_hours import next_local_time, quiet_until, recipient_zone
from channels.reach import Choice, reach
from channels.regions import recipient_region
from channels.selection import (
    Decision,
    Delivery,
    Selection,
    SelectionError,
    SendRequest,
    effective_strategy,
    select,
)
from channels.send_time import best_time
from channels.yaml_lines import FileError

__all__ = [
    "CHANNELS",
    "ChannelEngagement",
    "Choice",
    "ConsentRecord",
    "Decision",
    "Delivery",
    "FileError",
    "Keyword",
    "KeywordMatch",
    "KeywordOutcome",
    "Policy",
    "PolicyError",
    "Profile",
    "ProfileError",
    "Selection",
    "SelectionError",
    "SendRequest",
    "SentRecord",
    "SmsEncoding",
    "apply_keyword",
    "best_time",
    "cap_reached",
    "classify_keyword",
    "consent_reason",
    "consent_status",
    "effective_strategy",
    "load_policy",
    "next_local_time",
    "quiet_until",
    "reach",
    "recipient_region",
    "recipient_zone",
    "select",
    "sms_encoding",
]
