"""Whether a tracked link or open pixel was fetched by a machine rather than by a person, from the
request's User-Agent. A machine fetch is still counted and recorded (`machine: true` on its
event) but is not engagement: it stops no escalation and marks no message opened.

What the User-Agent says, by source:

- Apple Mail Privacy Protection loads every remote image of a received message through Apple's
  proxies, opened or not (SocketLabs, "Identifying Apple MPP opens in notification API events";
  Bird, "Apple Mail Privacy Protection's impact on email"). Its fetches carry no product of their
  own: an empty User-Agent, or a bare `Mozilla/5.0` with no platform in it (what the reports of
  ESPs' trackers show); a person's mail client or browser always names its engine.
- Gmail serves every image through its proxy, which fetches with
  `Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)`
  in place of the reader's own (ScientiaMobile, "What is Google Image Proxy?"), and may fetch
  it at delivery, before anyone reads it; Yahoo's proxy says `YahooMailProxy`.
- Link previews fetch a link as it arrives: iMessage's with a User-Agent ending
  `facebookexternalhit/1.1 Facebot Twitterbot/1.0` (it names no Apple product at all), and
  the preview crawlers of WhatsApp, Slack, Telegram, Discord, Skype, LinkedIn and Bing name
  themselves; mail security scanners (Microsoft's Safe Links and Office preview, Barracuda,
  Mimecast, Proofpoint) fetch every link of a message before it is delivered.
- Command-line and library clients (curl, wget, python-requests...) and headless browsers are
  no person's tap either.
"""

from __future__ import annotations

import re

_MACHINES = re.compile(
    r"GoogleImageProxy|ggpht\.com|YahooMailProxy|facebookexternalhit|Facebot|Twitterbot|WhatsApp|Slackbot|"
    r"Slack-ImgProxy|TelegramBot|Discordbot|SkypeUriPreview|LinkedInBot|BingPreview|Googlebot|bingbot|"
    r"ms-office|Microsoft Office Existence|Barracuda|Mimecast|Proofpoint|HeadlessChrome|PhantomJS|"
    r"curl/|Wget/|python-requests|python-httpx|Go-http-client|okhttp|Java/|libwww-perl|bot\b|crawler|spider",
    re.IGNORECASE)
_BARE = re.compile(r"\s*(Mozilla/5\.0)?\s*")


def is_machine(user_agent: str | None) -> bool:
    """True when the User-Agent says a proxy, a preview, a scanner or a program made the request."""
    if user_agent is None or _BARE.fullmatch(user_agent):
        return True
    return _MACHINES.search(user_agent) is not None
