"""Read a user's message archive (XEP-0313) page by page, as a client catching up does.

Messages in flight to a client when its server dies are gone from the stream but not from
the archive; a client that logs in again fetches them from there. A test that promises
"nothing lost" has to look where the user would.
"""

from __future__ import annotations

import itertools

from .xmpp_client import XmppClient

RSM = "{http://jabber.org/protocol/rsm}"
MAM = "{urn:xmpp:mam:2}"

_QUERIES = itertools.count()


class ArchiveReader:
    """Fetches what was archived since the last call; the results land in the client's
    ``received`` list (as ``<message><result/></message>``), in archive order."""

    def __init__(self, page: int = 500) -> None:
        self.page = page
        self._after: str | None = None

    async def catch_up(self, client: XmppClient, timeout: float = 30.0) -> int:
        """Page through everything after the last item read; the number of pages fetched."""
        pages = 0
        while True:
            after = f"<after>{self._after}</after>" if self._after else ""
            reply = await client.iq(
                f"<iq type='set'><query xmlns='urn:xmpp:mam:2' queryid='q{next(_QUERIES)}'>"
                f"<set xmlns='http://jabber.org/protocol/rsm'><max>{self.page}</max>{after}"
                "</set></query></iq>",
                timeout=timeout,
            )
            if reply["type"] != "result":
                raise AssertionError(f"archive query refused: {reply}")
            pages += 1
            fin = reply.xml.find(f"{MAM}fin")
            last = fin.findtext(f"{RSM}set/{RSM}last") if fin is not None else None
            if last:
                self._after = last
            if fin is None or fin.get("complete") == "true" or not last:
                return pages
