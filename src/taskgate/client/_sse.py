"""A Server-Sent Events parser (the ``text/event-stream`` format of the HTML standard,
§9.2.6 "Interpreting an event stream").

Incremental and I/O-free: `SSEParser.feed` takes text as it arrives, in chunks of any
size, and returns the events completed by it; the clients feed it what they read.

- Lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of
  the next are one line end). A leading BOM is dropped.
- ``field: value`` (one space after the colon is dropped), or ``field`` alone (an empty
  value). Fields: ``event``, ``data`` (repeatable: lines joined with LF), ``id`` (ignored
  if it contains NUL; it persists to later events until changed, and an empty ``id``
  resets it), ``retry`` (digits only: the reconnection delay in milliseconds). Other
  fields are ignored.
- A line starting with a colon is a comment (keep-alives); `SSEParser.comments` counts
  them.
- An empty line dispatches the event, unless no ``data`` came, in which case only the
  event type is reset. An unfinished event at the end of the stream is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` by default), data, and the last event
    id in force when it was dispatched (empty if none)."""

    event: str
    data: str
    id: str = ""
    retry: int | None = None
    """The reconnection delay (ms) the stream set most recently, if it set one."""


class SSEParser:
    """Parses one event stream; call `feed` with each piece of text, in order."""

    def __init__(self) -> None:
        self.last_event_id = ""
        """The id to send as ``Last-Event-ID`` when reconnecting."""
        self.retry: int | None = None
        """Milliseconds the server asked clients to wait before reconnecting."""
        self.comments = 0
        self._data: list[str] = []
        self._event = ""
        self._pending = ""
        self._after_cr = False
        self._started = False

    def feed(self, text: str) -> list[ServerSentEvent]:
        """The events completed by ``text`` (the next piece of the stream)."""
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across two chunks
        self._after_cr = False
        events: list[ServerSentEvent] = []
        buffer = self._pending + text
        start = 0
        length = len(buffer)
        cr = lf = -1
        while start < length:
            # each search only when the last hit is behind us: linear in the chunk
            if cr < start:
                cr = buffer.find("\r", start)
                cr = length if cr < 0 else cr
            if lf < start:
                lf = buffer.find("\n", start)
                lf = length if lf < 0 else lf
            if cr == length and lf == length:
                break
            if lf < cr:
                end, next_start = lf, lf + 1
            elif cr + 1 < length:
                end = cr
                next_start = cr + 2 if buffer[cr + 1] == "\n" else cr + 1
            else:  # a CR ends the buffer: an LF may follow in the next chunk
                end, next_start = cr, cr + 1
                self._after_cr = True
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = next_start
        self._pending = buffer[start:]
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)  # any other value: ignored, as the standard says
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self.last_event_id,
            retry=self.retry,
        )
        self._data = []
        self._event = ""
        return event
