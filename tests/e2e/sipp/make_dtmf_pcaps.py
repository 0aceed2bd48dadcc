#!/usr/bin/env python3
"""Make per-slot DTMF pcaps for SIPp's play_pcap_audio.

   python3 tests/e2e/sipp/make_dtmf_pcaps.py OUTDIR [SLOTS=8]

Why: every /usr/share/sip-tester/dtmf_2833_<d>.pcap has its own fixed RTP
sequence numbers and timestamps (same SSRC). Played one after another they
form one RTP stream whose seq/timestamp jump back and forth, and Asterisk
drops some presses: the same digit twice in a row ("1","1") is heard once,
and "1 1 0 0" lost the second 0 even with shifted copies. So OUTDIR gets
dtmf_2833_<d>_s<i>.pcap for slot i = 1..SLOTS (the i-th digit a caller
sends), re-numbered so that seq and timestamp only ever increase along the
slots: seq = 20000 + 100*i + n, timestamp = 1000000 + 16000*i (RFC 4733
keeps one timestamp per event). tests/e2e/harness.py picks slot i for the i-th
digit. SIPp recomputes the UDP checksum and rewrites addresses and ports."""

import struct
import sys
from pathlib import Path

SRC = Path("/usr/share/sip-tester")
DIGITS = [str(d) for d in range(10)] + ["star", "pound"]
SPEECH = "speech"  # a "digit" that is 7 s of speech


def renumber(pcap: bytes, slot: int) -> bytes:
    out = bytearray(pcap[:24])
    linktype = struct.unpack("<I", pcap[20:24])[0]
    assert linktype == 1, "expected Ethernet pcaps"
    off, n, first_ts = 24, 0, None
    while off < len(pcap):
        ts, tu, incl, orig = struct.unpack("<IIII", pcap[off : off + 16])
        pkt = bytearray(pcap[off + 16 : off + 16 + incl])
        ihl = (pkt[14] & 0x0F) * 4
        rtp = 14 + ihl + 8
        _seq, rts = struct.unpack(">HI", pkt[rtp + 2 : rtp + 8])
        first_ts = rts if first_ts is None else first_ts
        struct.pack_into(
            ">HI", pkt, rtp + 2, 20000 + 100 * slot + n, 1000000 + 16000 * slot + (rts - first_ts)
        )
        n += 1
        struct.pack_into(">H", pkt, 14 + ihl + 6, 0)  # UDP checksum: not used, SIPp recomputes
        out += struct.pack("<IIII", ts, tu, incl, orig) + pkt
        off += 16 + incl
    return bytes(out)


def write_pcaps(outdir: Path, slots: int = 8) -> None:
    """Every digit, and SPEECH (SIPp's 7 s G.711 A-law sample, g711a.pcap), per slot.
    The speech's timestamps run past the next slot's: it must be a caller's last entry."""
    outdir.mkdir(parents=True, exist_ok=True)
    sources = {d: SRC / f"dtmf_2833_{d}.pcap" for d in DIGITS}
    sources[SPEECH] = SRC / "g711a.pcap"
    for name, source in sources.items():
        data = source.read_bytes()
        for i in range(1, slots + 1):
            (outdir / f"dtmf_2833_{name}_s{i}.pcap").write_bytes(renumber(data, i))


def main() -> None:
    write_pcaps(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 8)


if __name__ == "__main__":
    main()
