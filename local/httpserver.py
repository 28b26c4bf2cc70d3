"""``ThreadingHTTPServer`` with a listen backlog of 128 instead of socketserver's 5.

With a backlog of 5, a burst of connections (a poll tick opens 16 at once, a test's threads
more) while the serving process is busy overflows it: the kernel drops the SYNs and each
client waits out TCP's 1 s retransmission (see ``local/gitserver.py``'s ``_Server``, where it
was first seen in the poll bench). The backlog is taken at ``listen()``, in the constructor,
hence a class attribute and not a setting made afterwards.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    request_queue_size = 128
