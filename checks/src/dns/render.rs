//! Records and response codes as text: short values for `answers`, dig-style lines for the regexes.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record};

/// The value of a record as `answers` compares it: addresses, names without their trailing dot, MX
/// `PREFERENCE NAME`, TXT strings joined, SRV `PRIORITY WEIGHT PORT TARGET`, SOA `MNAME RNAME SERIAL ...`,
/// CAA `FLAGS TAG VALUE`.
pub fn value(data: &RData) -> String {
    rdata(data, false)
}

/// A record as dig and blackbox_exporter print it: `NAME.<TAB>TTL<TAB>CLASS<TAB>TYPE<TAB>RDATA`.
pub fn line(record: &Record) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        fqdn(&record.name),
        record.ttl,
        record.dns_class,
        record.record_type(),
        rdata(&record.data, true)
    )
}

/// The name of a response code, as written in `expect.rcode` (`RCODE<n>` for one without a name).
pub fn rcode(code: ResponseCode) -> String {
    let value = u16::from(code);
    let name = match value {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        23 => "BADCOOKIE",
        _ => return format!("RCODE{value}"),
    };
    name.to_owned()
}

/// RDATA as text; `presentation` keeps trailing dots and quotes TXT and CAA values, as zone files do.
fn rdata(data: &RData, presentation: bool) -> String {
    let name = |name: &Name| if presentation { fqdn(name) } else { short(name) };
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(aaaa) => aaaa.0.to_string(),
        RData::CNAME(target) => name(&target.0),
        RData::NS(target) => name(&target.0),
        RData::PTR(target) => name(&target.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::SRV(srv) => format!("{} {} {} {}", srv.priority, srv.weight, srv.port, name(&srv.target)),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name(&soa.mname),
            name(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RData::TXT(txt) if presentation => txt.txt_data.iter().map(|part| quote(part)).collect::<Vec<_>>().join(" "),
        RData::TXT(txt) => txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect(),
        RData::CAA(caa) if presentation => format!("{} {} {}", caa.flags(), caa.tag, quote(&caa.value)),
        RData::CAA(caa) => format!("{} {} {}", caa.flags(), caa.tag, String::from_utf8_lossy(&caa.value)),
        other => other.to_string(),
    }
}

/// A name with its trailing dot, in ASCII (punycode), as dig prints it.
fn fqdn(name: &Name) -> String {
    let text = name.to_ascii();
    if text.ends_with('.') { text } else { format!("{text}.") }
}

/// A name without its trailing dot (the root stays `.`).
fn short(name: &Name) -> String {
    let text = name.to_ascii();
    match text.trim_end_matches('.') {
        "" => ".".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// A character string in double quotes, with `"` and `\` escaped and other bytes outside printable ASCII as
/// `\DDD`, as zone files write them.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{CAA, MX, SOA, SRV, TXT};
    use hickory_proto::rr::{DNSClass, RData, Record};

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    #[test]
    fn values_and_lines_render_each_type() {
        let mx = RData::MX(MX::new(10, name("mail.example.com.")));
        assert_eq!(value(&mx), "10 mail.example.com");
        let txt = RData::TXT(TXT::new(vec!["v=spf1 ".to_owned(), "-all \"x\"".to_owned()]));
        assert_eq!(value(&txt), "v=spf1 -all \"x\"");
        let srv = RData::SRV(SRV::new(1, 2, 5060, name("sip.example.com.")));
        assert_eq!(value(&srv), "1 2 5060 sip.example.com");
        let soa = RData::SOA(SOA::new(name("ns1.example.com."), name("admin.example.com."), 7, 60, 30, 600, 5));
        assert_eq!(value(&soa), "ns1.example.com admin.example.com 7 60 30 600 5");
        let caa = RData::CAA(CAA::new_issue(false, Some(name("ca.example.net")), vec![]));
        assert_eq!(value(&caa), "0 issue ca.example.net");

        let mut record = Record::from_rdata(name("example.com."), 300, txt);
        record.dns_class = DNSClass::IN;
        assert_eq!(line(&record), "example.com.\t300\tIN\tTXT\t\"v=spf1 \" \"-all \\\"x\\\"\"");
        let record = Record::from_rdata(name("example.com."), 60, mx);
        assert_eq!(line(&record), "example.com.\t60\tIN\tMX\t10 mail.example.com.");
    }

    #[test]
    fn rcodes_have_their_names() {
        assert_eq!(rcode(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode(ResponseCode::from(250, 0)), "RCODE4000");
    }

    #[test]
    fn quoting_escapes_bytes() {
        assert_eq!(quote(b"a\"b\\c\x01"), "\"a\\\"b\\\\c\\001\"");
    }
}
