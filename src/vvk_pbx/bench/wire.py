"""INVITE→200 OK timed on the wire, with kernel timestamps (nanoseconds).

Why: SIPp 3.6.1 reads ``CLOCK_MONOTONIC_COARSE``, so its own response times
(``-trace_rtt``) come in 4 ms steps on these machines, too coarse for a route
that takes 4 ms. ``../shared/design/asterisk-notes.md`` ("SIPp as caller and
phones") gives the method used here instead: kernel receive timestamps on
the loopback interface, from an AF_PACKET socket filtered on the caller's
port. The baseline in the same file ("A baseline to compare against") was
measured this way.

Two layers:

- Pure, no socket, no root: :func:`parse_ethernet_udp` (one captured frame →
  UDP ports and payload), :func:`parse_sip` (payload → first line, Call-ID,
  CSeq) and :class:`InviteMatcher`, fed ``(timestamp_ns, payload)`` in
  capture order, which pairs each call's first INVITE with its first 200 and
  returns a :class:`WireResult` (latencies in ms).
- :class:`WireTimer`: the capture (root or CAP_NET_RAW, Linux). A raw
  AF_PACKET socket bound to ``lo`` with ``SO_TIMESTAMPNS`` and a classic BPF
  filter (``SO_ATTACH_FILTER``) that passes only outgoing IPv4 UDP frames
  whose source or destination port is the caller's port; a background thread
  reads them with ``recvmsg`` (timestamp in the ancillary data) and feeds an
  :class:`InviteMatcher`.

Which copy of a packet is kept: every packet crosses ``lo`` twice, once as
``PACKET_OUTGOING`` (stamped when the sender hands it to the device) and once
as ``PACKET_HOST`` (stamped when it is received back). Only
``PACKET_OUTGOING`` is kept, both by the BPF filter and again in Python, so
a latency is "the caller's INVITE leaves" → "the answerer's 200 leaves".
The two copies were 1–22 µs apart on loopback (median 5 µs, on these
machines). Only IPv4 is captured: the SIPp callers here use ``-i 127.0.0.1``.

Timestamps are ``CLOCK_REALTIME`` (what ``SO_TIMESTAMPNS`` gives); a clock
step during a run would distort the latencies that span it.
"""

from __future__ import annotations

import ctypes
import math
import select
import socket
import statistics
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Final, Self

__all__ = [
    "InviteMatcher",
    "SipMessage",
    "UdpDatagram",
    "WireResult",
    "WireTimer",
    "bpf_udp_port_program",
    "parse_ethernet_udp",
    "parse_sip",
    "percentile_nearest_rank",
]

# Linux constants the socket module of Python 3.11 does not export.
ETH_P_ALL: Final = 0x0003
ETH_P_IP: Final = 0x0800
SOL_PACKET: Final = 263
PACKET_STATISTICS: Final = 6
SO_ATTACH_FILTER: Final = 26
SO_RCVBUFFORCE: Final = 33
SO_TIMESTAMPNS: Final = 35  # == SCM_TIMESTAMPNS; struct timespec (64-bit) in the cmsg
PACKET_HOST: Final = 0
PACKET_OUTGOING: Final = 4

_ETH_HLEN: Final = 14
_IPPROTO_UDP: Final = 17
_TIMESPEC: Final = struct.Struct("@qq")


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """One UDP datagram taken out of a captured Ethernet frame."""

    src_port: int
    dst_port: int
    payload: bytes


def parse_ethernet_udp(frame: bytes) -> UdpDatagram | None:
    """The UDP datagram in an Ethernet/IPv4 frame, or None for anything else.

    Loopback frames carry a 14-byte Ethernet header (zero MACs). IPv6, non-UDP,
    truncated frames and IP fragments other than the first are None. The
    payload is cut to the UDP length (no trailing padding).
    """
    if len(frame) < _ETH_HLEN + 20 or frame[12:14] != b"\x08\x00":
        return None
    ip = _ETH_HLEN
    version_ihl = frame[ip]
    if version_ihl >> 4 != 4:
        return None
    ihl = (version_ihl & 0x0F) * 4
    if ihl < 20 or frame[ip + 9] != _IPPROTO_UDP:
        return None
    if int.from_bytes(frame[ip + 6 : ip + 8], "big") & 0x1FFF:  # a later fragment
        return None
    udp = ip + ihl
    if len(frame) < udp + 8:
        return None
    src_port, dst_port, length = struct.unpack_from("!HHH", frame, udp)
    if length < 8:
        return None
    return UdpDatagram(src_port, dst_port, frame[udp + 8 : udp + length])


def bpf_udp_port_program(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF for "outbound and ip and udp and port PORT" on Ethernet.

    Instructions are ``(code, jt, jf, k)`` as in ``struct sock_filter`` (the
    layout of ``tcpdump -dd``). It passes a frame only when the kernel marked
    it ``PACKET_OUTGOING`` (ancillary load ``SKF_AD_PKTTYPE``), it is IPv4 UDP,
    not a later fragment, and its source or destination port is ``port``. It
    accepts up to 262144 bytes of a passing frame, 0 of any other.
    """
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    ld_w_abs, ldh_abs, ldb_abs, ldxb_msh, ldh_ind = 0x20, 0x28, 0x30, 0xB1, 0x48
    jeq, jset, ret = 0x15, 0x45, 0x06
    skf_ad_pkttype = (-0x1000 + 4) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_PKTTYPE
    return [
        (ld_w_abs, 0, 0, skf_ad_pkttype),  # 0  A = skb->pkt_type
        (jeq, 0, 12, PACKET_OUTGOING),  # 1  else drop
        (ldh_abs, 0, 0, 12),  # 2  ethertype
        (jeq, 0, 10, ETH_P_IP),  # 3  IPv4, else drop
        (ldb_abs, 0, 0, _ETH_HLEN + 9),  # 4  IP protocol
        (jeq, 0, 8, _IPPROTO_UDP),  # 5  UDP, else drop
        (ldh_abs, 0, 0, _ETH_HLEN + 6),  # 6  flags + fragment offset
        (jset, 6, 0, 0x1FFF),  # 7  a later fragment: drop
        (ldxb_msh, 0, 0, _ETH_HLEN),  # 8  X = IP header length
        (ldh_ind, 0, 0, _ETH_HLEN),  # 9  UDP source port
        (jeq, 2, 0, port),  # 10 match: accept
        (ldh_ind, 0, 0, _ETH_HLEN + 2),  # 11 UDP destination port
        (jeq, 0, 1, port),  # 12 else drop
        (ret, 0, 0, 0x40000),  # 13 accept
        (ret, 0, 0, 0),  # 14 drop
    ]


# --------------------------------------------------------------------------- SIP


@dataclass(frozen=True, slots=True)
class SipMessage:
    """What the timing needs from one SIP message.

    ``method`` is set for a request (``"INVITE"``), ``status`` for a response
    (``200``); ``cseq_method`` is upper case.
    """

    method: str | None
    status: int | None
    call_id: str | None
    cseq_number: int | None
    cseq_method: str | None


def parse_sip(payload: bytes) -> SipMessage | None:
    """Parse the start line, Call-ID (or compact ``i:``) and CSeq; None if not SIP.

    Header names are case-insensitive and the first occurrence wins. Folded
    (continuation) header lines are not joined; SIPp and Asterisk do not
    fold Call-ID or CSeq.
    """
    end = payload.find(b"\r\n\r\n")
    head = (payload if end < 0 else payload[:end]).decode("latin-1")
    lines = head.splitlines()
    if not lines:
        return None
    start = lines[0].split(" ", 2)
    method: str | None = None
    status: int | None = None
    if start[0] == "SIP/2.0":
        if len(start) < 2 or not (len(start[1]) == 3 and start[1].isdigit()):
            return None
        status = int(start[1])
    elif len(start) == 3 and start[2].startswith("SIP/2.0") and start[0].isalpha():
        method = start[0].upper()
    else:
        return None
    call_id: str | None = None
    cseq_number: int | None = None
    cseq_method: str | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        if key in ("call-id", "i") and call_id is None:
            call_id = value.strip() or None
        elif key == "cseq" and cseq_method is None:
            parts = value.split()
            if len(parts) == 2 and parts[0].isdigit():
                cseq_number, cseq_method = int(parts[0]), parts[1].upper()
    return SipMessage(method, status, call_id, cseq_number, cseq_method)


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class WireResult:
    """Calls seen on the wire and their INVITE→200 latencies.

    ``calls``: Call-IDs with an INVITE from the caller. ``answered``: of those,
    the ones that got a 200 to an INVITE. ``failed``: the ones that got a final
    response ≥ 300 to an INVITE and never a 200 (retransmitted finals count
    once). ``latencies_ms``: one per answered call, first INVITE → first 200,
    in milliseconds, in the order the INVITEs were sent. ``dropped``: frames
    the kernel dropped because the capture socket's buffer was full (0 when
    built by :class:`InviteMatcher` alone); nonzero means calls may be missing.
    """

    calls: int
    answered: int
    failed: int
    latencies_ms: list[float] = field(default_factory=list)
    dropped: int = 0

    @property
    def unfinished(self) -> int:
        """Calls with neither a 200 nor a failure (still ringing, or lost)."""
        return self.calls - self.answered - self.failed

    @property
    def median_ms(self) -> float | None:
        """The median latency in ms (``statistics.median``), None with no latencies."""
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def p99_ms(self) -> float | None:
        """The 99th percentile latency in ms, None with no latencies.

        Nearest rank: the ⌈0.99·n⌉-th smallest latency, always one that was
        measured (with fewer than 100 calls, the largest).
        """
        return percentile_nearest_rank(self.latencies_ms, 99.0) if self.latencies_ms else None

    def summary(self) -> str:
        """One line for a report: counts, median and p99 in ms."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        return (
            f"calls {self.calls}, answered {self.answered}, failed {self.failed}, "
            f"dropped {self.dropped}; INVITE→200 median {ms(self.median_ms)} ms, "
            f"p99 {ms(self.p99_ms)} ms"
        )


def percentile_nearest_rank(values: list[float], percent: float) -> float:
    """The nearest-rank percentile: the ⌈percent/100·n⌉-th smallest value."""
    if not values:
        raise ValueError("no values")
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"percent out of range: {percent}")
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class _Call:
    invite_ns: int
    answer_ns: int | None = None
    failure: int | None = None


class InviteMatcher:
    """Pairs each call's first INVITE with its first 200 OK (timestamps in ns).

    Feed it every SIP message on the caller's port in capture order. Per
    Call-ID it keeps the timestamp of the first INVITE the caller sent: a
    retransmitted INVITE or a later re-INVITE does not move it. The first 200
    whose CSeq method is INVITE ends the measurement; later 200s (re-sent
    until the ACK, or answering a re-INVITE) are ignored. A final response
    ≥ 300 to an INVITE marks the call failed unless a 200 comes. Only status
    200 answers a call (no other 2xx is sent to INVITE in practice).

    ``from_caller`` says which way the message went: True if the caller sent
    it, False if it was sent to the caller, None if unknown (then INVITEs and
    responses are taken either way). With a direction, an INVITE sent *to*
    the caller (a re-INVITE from the far end) and a response sent *by* the
    caller are ignored.
    """

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}

    def feed(self, timestamp_ns: int, payload: bytes, *, from_caller: bool | None = None) -> None:
        """Take one UDP payload captured at ``timestamp_ns`` (ns); non-SIP is ignored."""
        message = parse_sip(payload)
        if message is not None:
            self.feed_message(timestamp_ns, message, from_caller=from_caller)

    def feed_message(
        self, timestamp_ns: int, message: SipMessage, *, from_caller: bool | None = None
    ) -> None:
        """Take one parsed message captured at ``timestamp_ns`` (ns)."""
        call_id = message.call_id
        if call_id is None:
            return
        if message.method == "INVITE":
            if from_caller is not False and call_id not in self._calls:
                self._calls[call_id] = _Call(timestamp_ns)
            return
        status = message.status
        if status is None or message.cseq_method != "INVITE" or from_caller is True:
            return
        call = self._calls.get(call_id)
        if call is None or call.answer_ns is not None:
            return
        if status == 200:
            if timestamp_ns >= call.invite_ns:
                call.answer_ns = timestamp_ns
        elif status >= 300 and call.failure is None:
            call.failure = status

    def result(self) -> WireResult:
        """Counts and latencies (ms) so far."""
        latencies = [
            (call.answer_ns - call.invite_ns) / 1e6
            for call in self._calls.values()
            if call.answer_ns is not None
        ]
        failed = sum(
            1
            for call in self._calls.values()
            if call.failure is not None and call.answer_ns is None
        )
        return WireResult(len(self._calls), len(latencies), failed, latencies)


# --------------------------------------------------------------------------- capture


def _timestamp_ns(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return None


def _attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """``setsockopt(SO_ATTACH_FILTER)`` with a ``struct sock_fprog``."""
    instructions = b"".join(struct.pack("@HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(instructions, len(instructions))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # the kernel copies it


class WireTimer:
    """Captures SIP on ``lo`` for one caller port and times INVITE→200 (ns → ms).

    Needs root (or CAP_NET_RAW) and Linux. Use as a context manager or with
    :meth:`start` / :meth:`stop`; read :meth:`result` after stopping (or at any
    time for the figures so far). ``caller_port`` is the caller's local SIP port
    (SIPp's ``-p``). The method and why it exists: see the module docstring
    and asterisk-notes.md ("SIPp as caller and phones").

    The kernel filter passes only outgoing IPv4 UDP frames to or from
    ``caller_port``; the thread checks the same again in Python.

    The thread blocks in ``poll()`` for at most ``poll_s`` seconds at a time,
    so that :meth:`stop` takes effect, then reads every queued frame with
    non-blocking ``recvmsg`` calls. When a frame is waiting it first sleeps
    ``batch_s`` seconds so that one wake-up reads many frames: the kernel
    stamped them on arrival, so the wait costs no precision, only freshness
    of a mid-run :meth:`result`. At 100 calls/s (600 frames/s) this roughly
    halved the thread's CPU (0.05 s: about 0.23 ms of CPU a call, 2.3 % of a
    core; 0: about 0.6 ms a call, 6 %). ``batch_s=0`` reads each frame as it
    comes. On stop it first reads what is already queued.

    ``rcvbuf`` is the socket receive buffer in bytes (set with SO_RCVBUFFORCE
    when allowed; it must hold ``batch_s`` worth of frames); frames lost to a
    full buffer are counted in :attr:`WireResult.dropped`.
    """

    def __init__(
        self,
        caller_port: int,
        *,
        interface: str = "lo",
        poll_s: float = 0.1,
        batch_s: float = 0.05,
        rcvbuf: int = 8 << 20,
    ) -> None:
        if not 0 < caller_port < 65536:
            raise ValueError(f"caller_port out of range: {caller_port}")
        self.caller_port = caller_port
        self.interface = interface
        self.poll_s = poll_s
        self.batch_s = batch_s
        self.rcvbuf = rcvbuf
        self.frames = 0
        """Frames read from the socket (all passed the kernel filter)."""
        self.datagrams = 0
        """Of those, UDP datagrams on ``caller_port``, outgoing copy, with a timestamp."""
        self.cpu_s = 0.0
        """CPU seconds (user + system) the capture thread used; set when it ends."""
        self._matcher = InviteMatcher()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None
        self._dropped = 0

    def start(self) -> None:
        """Open the socket (errors such as PermissionError raise here) and start the thread."""
        if self._thread is not None:
            raise RuntimeError("WireTimer already started")
        # Protocol 0 receives nothing until bind(), so no frame arrives before
        # the filter is attached.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            _attach_filter(sock, bpf_udp_port_program(self.caller_port))
            sock.bind((self.interface, ETH_P_ALL))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"wire-timer-{self.caller_port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Read what is queued, stop the thread, close the socket; re-raise a capture error."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join()
        if self._error is not None:
            raise RuntimeError(f"wire capture failed: {self._error!r}") from self._error

    def result(self) -> WireResult:
        """Counts and INVITE→200 latencies in ms, plus frames the kernel dropped."""
        with self._lock:
            return replace(self._matcher.result(), dropped=self._dropped)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        cpu_start = time.thread_time()
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        timeout_ms = max(1, round(self.poll_s * 1000))
        try:
            while True:
                stopping = self._stopping.is_set()
                if not stopping:
                    if not poller.poll(timeout_ms):
                        continue
                    if self.batch_s > 0:
                        # Kernel timestamps do not age in the queue: let the
                        # frames gather and read them in one wake-up.
                        self._stopping.wait(self.batch_s)
                self._drain(sock)
                if stopping:
                    break
        except BaseException as exc:
            self._error = exc
        finally:
            try:
                stats = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                with self._lock:
                    self._dropped += struct.unpack("@II", stats)[1]
            except OSError:
                pass
            sock.close()
            self.cpu_s = time.thread_time() - cpu_start

    def _drain(self, sock: socket.socket) -> None:
        """Read and match every frame queued on the non-blocking socket."""
        ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        port = self.caller_port
        while True:
            try:
                frame, ancdata, _flags, address = sock.recvmsg(65536 + 64, ancillary)
            except BlockingIOError:
                return
            self.frames += 1
            if address[2] != PACKET_OUTGOING:
                continue
            timestamp = _timestamp_ns(ancdata)
            datagram = parse_ethernet_udp(frame)
            if timestamp is None or datagram is None:
                continue
            if datagram.src_port == port:
                from_caller = True
            elif datagram.dst_port == port:
                from_caller = False
            else:
                continue
            self.datagrams += 1
            with self._lock:
                self._matcher.feed(timestamp, datagram.payload, from_caller=from_caller)
