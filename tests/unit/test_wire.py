"""INVITE→200 timing on the wire (vvk_pbx.bench.wire).

The pure tests feed crafted frames and SIP payloads. The last test captures
real SIPp traffic on loopback; it needs root and sipp and is skipped without
them.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from vvk_pbx.bench.wire import (
    PACKET_HOST,
    PACKET_OUTGOING,
    InviteMatcher,
    SipMessage,
    UdpDatagram,
    WireResult,
    WireTimer,
    bpf_udp_port_program,
    parse_ethernet_udp,
    parse_sip,
    percentile_nearest_rank,
)

CALLER = 16061
CALLEE = 16060
MS = 1_000_000  # ns


# --------------------------------------------------------------------------- builders


def request(
    method: str,
    call_id: str = "c1@127.0.0.1",
    cseq: int = 1,
    *,
    to_tag: str = "",
    compact: bool = False,
) -> bytes:
    call = f"i: {call_id}" if compact else f"Call-ID: {call_id}"
    to = "t" if compact else "To"
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} sip:service@127.0.0.1:{CALLEE} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bK-{cseq}\r\n"
        f"From: sipp <sip:sipp@127.0.0.1:{CALLER}>;tag=1\r\n"
        f"{to}: <sip:service@127.0.0.1:{CALLEE}>{tag}\r\n"
        f"{call}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def response(
    status: int,
    call_id: str = "c1@127.0.0.1",
    cseq: int = 1,
    method: str = "INVITE",
    *,
    compact: bool = False,
) -> bytes:
    reason = {100: "Trying", 180: "Ringing", 200: "OK", 407: "Proxy Auth", 486: "Busy Here"}
    call = f"i: {call_id}" if compact else f"Call-ID: {call_id}"
    return (
        f"SIP/2.0 {status} {reason.get(status, 'Whatever')}\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bK-{cseq}\r\n"
        f"{call}\r\n"
        f"cseq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def frame(
    src_port: int,
    dst_port: int,
    payload: bytes,
    *,
    ethertype: int = 0x0800,
    protocol: int = 17,
    ip_options: bytes = b"",
    fragment_offset: int = 0,
    more_fragments: bool = False,
) -> bytes:
    """An Ethernet/IPv4/UDP frame as captured on lo (zero MACs, no checksums)."""
    assert len(ip_options) % 4 == 0
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ihl = 5 + len(ip_options) // 4
    flags = (0x2000 if more_fragments else 0) | fragment_offset
    ip = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            0,
            ihl * 4 + len(udp),
            1,
            flags,
            64,
            protocol,
            0,
            socket.inet_aton("127.0.0.1"),
            socket.inet_aton("127.0.0.1"),
        )
        + ip_options
    )
    return b"\x00" * 12 + struct.pack("!H", ethertype) + ip + udp


def run_bpf(program: list[tuple[int, int, int, int]], packet: bytes, pkttype: int) -> int:
    """A classic BPF interpreter for the opcodes the filter uses: bytes accepted."""
    a = x = pc = 0

    def load(offset: int, size: int) -> int | None:
        if offset < 0 or offset + size > len(packet):
            return None
        return int.from_bytes(packet[offset : offset + size], "big")

    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        value: int | None
        if code == 0x20:  # ld [k] (word); SKF_AD_OFF + SKF_AD_PKTTYPE
            value = pkttype if k == 0xFFFFF004 else load(k, 4)
        elif code == 0x28:  # ldh [k]
            value = load(k, 2)
        elif code == 0x30:  # ldb [k]
            value = load(k, 1)
        elif code == 0x48:  # ldh [x + k]
            value = load(x + k, 2)
        elif code == 0xB1:  # ldxb 4*([k]&0xf)
            byte = load(k, 1)
            if byte is None:
                return 0
            x = (byte & 0x0F) * 4
            continue
        elif code == 0x15:  # jeq #k
            pc += jt if a == k else jf
            continue
        elif code == 0x45:  # jset #k
            pc += jt if a & k else jf
            continue
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"opcode {code:#x} not modelled")
        if value is None:
            return 0  # the kernel drops a packet on an out-of-bounds load
        a = value


# --------------------------------------------------------------------------- frames and BPF


def test_parse_ethernet_udp_takes_ports_and_payload() -> None:
    assert parse_ethernet_udp(frame(CALLER, CALLEE, b"hello")) == UdpDatagram(
        CALLER, CALLEE, b"hello"
    )


def test_parse_ethernet_udp_honours_ip_options() -> None:
    got = parse_ethernet_udp(frame(CALLER, CALLEE, b"x", ip_options=b"\x01" * 8))
    assert got == UdpDatagram(CALLER, CALLEE, b"x")


def test_parse_ethernet_udp_cuts_trailing_padding() -> None:
    assert parse_ethernet_udp(frame(1, 2, b"ab") + b"\x00" * 10) == UdpDatagram(1, 2, b"ab")


@pytest.mark.parametrize(
    "raw",
    [
        frame(CALLER, CALLEE, b"x", ethertype=0x86DD),
        frame(CALLER, CALLEE, b"x", protocol=6),
        frame(CALLER, CALLEE, b"x", fragment_offset=100),
        frame(CALLER, CALLEE, b"x")[:30],
        b"",
    ],
    ids=["ipv6", "tcp", "later-fragment", "truncated", "empty"],
)
def test_parse_ethernet_udp_rejects_other_frames(raw: bytes) -> None:
    assert parse_ethernet_udp(raw) is None


@pytest.mark.parametrize(
    ("raw", "pkttype", "passes"),
    [
        (frame(CALLER, CALLEE, b"x"), PACKET_OUTGOING, True),
        (frame(CALLEE, CALLER, b"x"), PACKET_OUTGOING, True),
        (frame(CALLER, CALLEE, b"x", ip_options=b"\x01" * 12), PACKET_OUTGOING, True),
        (frame(CALLER, CALLEE, b"x", more_fragments=True), PACKET_OUTGOING, True),
        (frame(CALLER, CALLEE, b"x"), PACKET_HOST, False),
        (frame(5060, 5061, b"x"), PACKET_OUTGOING, False),
        (frame(CALLER + 1, CALLEE, b"x"), PACKET_OUTGOING, False),
        (frame(CALLER, CALLEE, b"x", protocol=6), PACKET_OUTGOING, False),
        (frame(CALLER, CALLEE, b"x", ethertype=0x86DD), PACKET_OUTGOING, False),
        (frame(CALLER, CALLEE, b"x", fragment_offset=8), PACKET_OUTGOING, False),
        (frame(CALLER, CALLEE, b"x")[:35], PACKET_OUTGOING, False),
    ],
    ids=[
        "from-caller",
        "to-caller",
        "ip-options",
        "first-fragment",
        "host-copy",
        "other-ports",
        "near-miss",
        "tcp",
        "ipv6",
        "later-fragment",
        "truncated",
    ],
)
def test_bpf_filter_passes_outgoing_udp_on_the_caller_port(
    raw: bytes, pkttype: int, passes: bool
) -> None:
    accepted = run_bpf(bpf_udp_port_program(CALLER), raw, pkttype)
    assert (accepted > 0) is passes


def test_bpf_program_layout() -> None:
    program = bpf_udp_port_program(CALLER)
    for pc, (code, jt, jf, _k) in enumerate(program):
        if code & 0x07 == 0x05:  # jumps stay inside the program
            assert pc + 1 + max(jt, jf) < len(program)
    assert program[-1] == (0x06, 0, 0, 0)
    with pytest.raises(ValueError):
        bpf_udp_port_program(0)


# --------------------------------------------------------------------------- SIP parsing


def test_parse_sip_request() -> None:
    assert parse_sip(request("INVITE", "abc@h", 7)) == SipMessage(
        "INVITE", None, "abc@h", 7, "INVITE"
    )


def test_parse_sip_response_with_lower_case_cseq() -> None:
    assert parse_sip(response(180, "abc@h", 7)) == SipMessage(None, 180, "abc@h", 7, "INVITE")


def test_parse_sip_compact_call_id() -> None:
    message = parse_sip(response(200, "compact-1", 2, compact=True))
    assert message is not None
    assert message.call_id == "compact-1"
    assert message.status == 200


def test_parse_sip_ignores_the_body() -> None:
    body = b"v=0\r\ni: not-this\r\nCSeq: 9 BYE\r\n"
    payload = request("INVITE", "head-id", 3).replace(b"Content-Length: 0", b"Content-Length: 30")
    message = parse_sip(payload + body)
    assert message is not None
    assert (message.call_id, message.cseq_number, message.cseq_method) == ("head-id", 3, "INVITE")


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x80\x00\x12\x34rtp", b"hello world", b"SIP/2.0 OK\r\n\r\n", b"\r\n\r\n"],
    ids=["empty", "rtp", "text", "bad-status", "keepalive"],
)
def test_parse_sip_rejects_non_sip(payload: bytes) -> None:
    assert parse_sip(payload) is None


# --------------------------------------------------------------------------- matching


def test_invite_100_180_200_gives_one_latency() -> None:
    matcher = InviteMatcher()
    matcher.feed(1_000 * MS, request("INVITE"), from_caller=True)
    matcher.feed(1_000 * MS + 200_000, response(100), from_caller=False)
    matcher.feed(1_001 * MS, response(180), from_caller=False)
    matcher.feed(1_004 * MS + 321_000, response(200), from_caller=False)
    matcher.feed(1_005 * MS, request("ACK"), from_caller=True)
    result = matcher.result()
    assert (result.calls, result.answered, result.failed) == (1, 1, 0)
    assert result.latencies_ms == [pytest.approx(4.321)]


def test_compact_headers_match() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, request("INVITE", "cc", compact=True))
    matcher.feed(3 * MS, response(200, "cc", compact=True))
    assert matcher.result().latencies_ms == [3.0]


def test_retransmitted_invite_does_not_reset_the_start() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, request("INVITE"), from_caller=True)
    matcher.feed(500 * MS, request("INVITE"), from_caller=True)  # T1 retransmission
    matcher.feed(700 * MS, response(200), from_caller=False)
    result = matcher.result()
    assert (result.calls, result.answered) == (1, 1)
    assert result.latencies_ms == [700.0]


def test_retransmitted_200_and_reinvite_change_nothing() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, request("INVITE", cseq=1), from_caller=True)
    matcher.feed(2 * MS, response(200, cseq=1), from_caller=False)
    matcher.feed(500 * MS, response(200, cseq=1), from_caller=False)  # re-sent before the ACK
    matcher.feed(900 * MS, request("INVITE", cseq=2, to_tag="as1"), from_caller=True)  # re-INVITE
    matcher.feed(901 * MS, response(491, cseq=2), from_caller=False)
    matcher.feed(950 * MS, request("INVITE", cseq=3, to_tag="as1"), from_caller=True)
    matcher.feed(951 * MS, response(200, cseq=3), from_caller=False)
    result = matcher.result()
    assert (result.calls, result.answered, result.failed) == (1, 1, 0)
    assert result.latencies_ms == [2.0]


def test_reinvite_from_the_far_end_is_not_a_call() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, request("INVITE", "far"), from_caller=False)
    matcher.feed(MS, response(200, "far"), from_caller=True)
    assert matcher.result() == WireResult(0, 0, 0, [])


def test_486_is_a_failure_counted_once() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, request("INVITE", "busy"), from_caller=True)
    matcher.feed(MS, response(180, "busy"), from_caller=False)
    matcher.feed(2 * MS, response(486, "busy"), from_caller=False)
    matcher.feed(502 * MS, response(486, "busy"), from_caller=False)  # re-sent before the ACK
    matcher.feed(10 * MS, request("INVITE", "ok"), from_caller=True)
    matcher.feed(14 * MS, response(200, "ok"), from_caller=False)
    result = matcher.result()
    assert (result.calls, result.answered, result.failed, result.unfinished) == (2, 1, 1, 0)
    assert result.latencies_ms == [4.0]


def test_a_challenge_then_200_is_answered_not_failed() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, request("INVITE", cseq=1), from_caller=True)
    matcher.feed(MS, response(407, cseq=1), from_caller=False)
    matcher.feed(2 * MS, request("INVITE", cseq=2), from_caller=True)
    matcher.feed(5 * MS, response(200, cseq=2), from_caller=False)
    result = matcher.result()
    assert (result.answered, result.failed) == (1, 0)
    assert result.latencies_ms == [5.0]  # from the first INVITE


def test_200_to_other_methods_and_unknown_calls_are_ignored() -> None:
    matcher = InviteMatcher()
    matcher.feed(0, response(200, "never-invited"), from_caller=False)
    matcher.feed(MS, request("INVITE", "c"), from_caller=True)
    matcher.feed(2 * MS, response(200, "c", 1, "OPTIONS"), from_caller=False)
    matcher.feed(3 * MS, response(200, "c", 2, "BYE"), from_caller=False)
    matcher.feed(4 * MS, b"\r\n\r\n")
    result = matcher.result()
    assert (result.calls, result.answered, result.failed, result.unfinished) == (1, 0, 0, 1)


def test_frames_through_the_parsers_into_the_matcher() -> None:
    matcher = InviteMatcher()
    wire = [
        (0, frame(CALLER, CALLEE, request("INVITE", "f1"))),
        (100_000, frame(CALLER, CALLEE, request("INVITE", "f2"))),
        (1_234_567, frame(CALLEE, CALLER, response(200, "f1"))),
        (2_000_001, frame(CALLEE, CALLER, response(200, "f2"))),
    ]
    for timestamp, raw in wire:
        datagram = parse_ethernet_udp(raw)
        assert datagram is not None
        matcher.feed(timestamp, datagram.payload, from_caller=datagram.src_port == CALLER)
    assert matcher.result().latencies_ms == [1.234567, 1.900001]


# --------------------------------------------------------------------------- statistics


def test_median_and_nearest_rank_p99() -> None:
    result = WireResult(100, 100, 0, [float(n) for n in range(100, 0, -1)])
    assert result.median_ms == 50.5
    assert result.p99_ms == 99.0  # the 99th of 100 sorted values
    small = WireResult(3, 3, 0, [1.0, 3.0, 2.0])
    assert (small.median_ms, small.p99_ms) == (2.0, 3.0)  # below 100 values: the largest
    assert percentile_nearest_rank([5.0, 1.0], 50.0) == 1.0
    empty = WireResult(0, 0, 0, [])
    assert (empty.median_ms, empty.p99_ms) == (None, None)
    assert "median -" in empty.summary()


def test_wire_timer_checks_its_port_and_stop_without_start_is_harmless() -> None:
    with pytest.raises(ValueError):
        WireTimer(70000)
    timer = WireTimer(CALLER)
    timer.stop()
    assert timer.result() == WireResult(0, 0, 0, [])


# --------------------------------------------------------------------------- real capture

needs_root_and_sipp = pytest.mark.skipif(
    not hasattr(os, "geteuid")
    or os.geteuid() != 0
    or not hasattr(socket, "AF_PACKET")
    or shutil.which("sipp") is None,
    reason="needs root (AF_PACKET capture) and sipp",
)


def _sipp(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["sipp", *args, "-nostdin"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
    if process is not None:
        process.wait(timeout=10)


@needs_root_and_sipp
def test_real_sipp_calls_timed_on_loopback(tmp_path: Path) -> None:
    # Ports 16060-16074 only: 5060, 5101-5199, 8088/8089 and 127.0.0.2 belong
    # to the real Asterisk and phones that may run on the same machine; -mp and
    # -cp keep SIPp off its default media (6000) and control (8888) ports.
    uas: subprocess.Popen[bytes] | None = None
    uac: subprocess.Popen[bytes] | None = None
    try:
        uas = _sipp(
            ["-sn", "uas", "-i", "127.0.0.1", "-p", str(CALLEE), "-mp", "16064", "-cp", "16068"],
            tmp_path,
            tmp_path / "uas.out",
        )
        time.sleep(0.3)
        assert uas.poll() is None, (tmp_path / "uas.out").read_text(errors="replace")
        with WireTimer(CALLER) as timer:
            # A datagram on another port must not get past the kernel filter.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
                stray.bind(("127.0.0.1", 0))
                stray.sendto(b"stray", stray.getsockname())
            uac = _sipp(
                [
                    "-sn",
                    "uac",
                    f"127.0.0.1:{CALLEE}",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(CALLER),
                    "-mp",
                    "16072",
                    "-cp",
                    "16069",
                    "-r",
                    "20",
                    "-m",
                    "40",
                    "-d",
                    "0",
                    "-timeout",
                    "30s",
                    "-timeout_error",
                ],
                tmp_path,
                tmp_path / "uac.out",
            )
            assert uac.wait(timeout=60) == 0, (tmp_path / "uac.out").read_text(errors="replace")
        result = timer.result()
    finally:
        _kill(uac)
        _kill(uas)

    assert (result.calls, result.answered, result.failed, result.dropped) == (40, 40, 0, 0)
    assert len(result.latencies_ms) == 40
    assert all(0.0 < latency < 500.0 for latency in result.latencies_ms), result.latencies_ms
    # Sub-millisecond resolution: SIPp's own clock would give multiples of 4 ms.
    assert any(round(latency * MS) % (4 * MS) != 0 for latency in result.latencies_ms)
    assert not all(round(latency * MS) % MS == 0 for latency in result.latencies_ms)
    # The filter let through only the outgoing copies on the caller's port.
    assert timer.frames == timer.datagrams > 0
