//! ICMP echo packets: building requests (with the IPv4 checksum) and recognising replies.

/// Echo request and reply types, for IPv4 and IPv6.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// The ICMP echo header: type, code, checksum, identifier, sequence number.
pub(super) const HEADER_LEN: usize = 8;

/// An echo reply's identifier and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reply {
    pub id: u16,
    pub seq: u16,
}

/// An echo request. The IPv4 checksum is filled in; for IPv6 the kernel computes it (it covers a pseudo-header
/// with the source address, which only the kernel knows).
pub(super) fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(HEADER_LEN + payload.len());
    packet.push(if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 });
    packet.push(0);
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The payload of every request: a repeating byte pattern, as `ping` sends.
pub(super) fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 256) as u8).collect()
}

/// The Internet checksum (RFC 1071): the one's complement of the one's complement sum of 16-bit words.
pub(super) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recognises an echo reply in a received packet; `None` for anything else (our own requests seen on
/// loopback, errors, other ICMP traffic, truncated data). With `ip_header` (IPv4 raw sockets) the packet
/// starts with the IPv4 header, which is skipped.
pub(super) fn parse_reply(v6: bool, ip_header: bool, data: &[u8]) -> Option<Reply> {
    let icmp = if ip_header {
        let first = *data.first()?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < 20 || data.get(9) != Some(&1) {
            return None;
        }
        data.get(header_len..)?
    } else {
        data
    };
    if icmp.len() < HEADER_LEN || icmp[1] != 0 {
        return None;
    }
    let expected = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    (icmp[0] == expected)
        .then(|| Reply { id: u16::from_be_bytes([icmp[4], icmp[5]]), seq: u16::from_be_bytes([icmp[6], icmp[7]]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example_and_verifies_to_zero() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is its complement.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        let packet = echo_request(false, 0x1234, 7, &payload(57));
        assert_eq!(checksum(&packet), 0, "a packet with its checksum sums to zero");
    }

    #[test]
    fn requests_have_the_right_type_id_and_sequence() {
        let v4 = echo_request(false, 0xbeef, 3, &[1, 2, 3]);
        assert_eq!(&v4[..2], &[8, 0]);
        assert_eq!(&v4[4..8], &[0xbe, 0xef, 0, 3]);
        assert_eq!(&v4[8..], &[1, 2, 3]);
        let v6 = echo_request(true, 1, 2, &[]);
        assert_eq!(v6, vec![128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn replies_are_recognised_and_everything_else_ignored() {
        let mut reply = echo_request(false, 9, 4, &payload(8));
        reply[0] = 0;
        assert_eq!(parse_reply(false, false, &reply), Some(Reply { id: 9, seq: 4 }));
        // Our own request, seen on loopback by a raw socket, is not a reply.
        assert_eq!(parse_reply(false, false, &echo_request(false, 9, 4, &[])), None);
        // A destination unreachable message is not a reply either.
        assert_eq!(parse_reply(false, false, &[3, 1, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(parse_reply(false, false, &reply[..7]), None);

        let mut with_ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        with_ip.extend_from_slice(&reply);
        assert_eq!(parse_reply(false, true, &with_ip), Some(Reply { id: 9, seq: 4 }));
        with_ip[9] = 6; // not ICMP
        assert_eq!(parse_reply(false, true, &with_ip), None);
        assert_eq!(parse_reply(false, true, &[0x4f]), None);

        let mut reply6 = echo_request(true, 5, 6, &[]);
        reply6[0] = 129;
        assert_eq!(parse_reply(true, false, &reply6), Some(Reply { id: 5, seq: 6 }));
        assert_eq!(parse_reply(false, false, &reply6), None);
    }
}
