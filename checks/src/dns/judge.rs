//! Judging a DNS response: every assertion of `expect` evaluated against the rendered response.

use std::net::IpAddr;

use regex::Regex;

use super::spec::{DnsExpect, SectionExpect};
use crate::outcome::{Judgement, Reason};

/// A response as the assertions see it.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The response code's name.
    pub rcode: String,
    /// The AA flag.
    pub authoritative: bool,
    /// Each answer's value (see [`super::render::value`]), and whether it compares case-sensitively (TXT, CAA).
    pub values: Vec<(String, bool)>,
    /// The answer section, one dig-style line per record.
    pub answer: Vec<String>,
    /// The authority section.
    pub authority: Vec<String>,
    /// The additional section.
    pub additional: Vec<String>,
}

/// The verdict on a response.
pub type Judged = Judgement;

/// The most records listed in one observed value.
const MAX_LISTED: usize = 10;

/// Evaluates every assertion; the first failing one gives the reason.
pub fn judge(expect: &DnsExpect, response: &Rendered) -> Judged {
    let mut judgement = Judgement::default();
    let mut check = |reason: Reason, name: &str, expected: String, observed: String, passed: bool| {
        judgement.check(reason, name, expected, observed, passed);
    };

    let rcode_ok = expect.rcodes.contains(&response.rcode);
    check(Reason::Rcode, "rcode", expect.rcodes.join(", "), response.rcode.clone(), rcode_ok);
    if let Some(wanted) = expect.authoritative {
        let observed = response.authoritative.to_string();
        check(Reason::Assertion, "authoritative", wanted.to_string(), observed, wanted == response.authoritative);
    }
    if let Some(min) = expect.min_answers {
        let count = response.answer.len();
        let passed = u32::try_from(count).unwrap_or(u32::MAX) >= min;
        check(Reason::Assertion, "min_answers", format!("at least {min}"), count.to_string(), passed);
    }
    let listed_values = list(response.values.iter().map(|(value, _)| value.as_str()), "no answers");
    for wanted in &expect.answers {
        let passed = response.values.iter().any(|(value, exact)| value_matches(wanted, value, *exact));
        check(Reason::Assertion, "answers", format!("{wanted:?}"), listed_values.clone(), passed);
    }
    let sections: [(&str, &SectionExpect, &[String]); 3] = [
        ("answer", &expect.answer, &response.answer),
        ("authority", &expect.authority, &response.authority),
        ("additional", &expect.additional, &response.additional),
    ];
    for (section, wanted, records) in sections {
        for regex in &wanted.regex {
            let (passed, observed) = match first_match(regex, records) {
                Some(line) => (true, format!("{line:?}")),
                None => (false, format!("no match in {}", list(records.iter().map(String::as_str), "no records"))),
            };
            check(Reason::Assertion, &format!("{section}_regex"), format!("/{regex}/"), observed, passed);
        }
        for regex in &wanted.not_regex {
            let (passed, observed) = match first_match(regex, records) {
                Some(line) => (false, format!("{line:?}")),
                None => (true, "no match".to_owned()),
            };
            check(Reason::Assertion, &format!("{section}_not_regex"), format!("no /{regex}/"), observed, passed);
        }
    }
    judgement
}

fn first_match<'a>(regex: &Regex, records: &'a [String]) -> Option<&'a str> {
    records.iter().find(|line| regex.is_match(line)).map(String::as_str)
}

/// Whether an expected value names an observed one: addresses compare as addresses, names ignore case and the
/// trailing dot; TXT and CAA values compare exactly.
fn value_matches(expected: &str, observed: &str, exact: bool) -> bool {
    let expected = expected.trim();
    if expected == observed {
        return true;
    }
    if let (Ok(a), Ok(b)) = (expected.parse::<IpAddr>(), observed.parse::<IpAddr>()) {
        return a == b;
    }
    !exact && expected.strip_suffix('.').unwrap_or(expected).eq_ignore_ascii_case(observed)
}

/// Items as a bracketed, quoted list, cut after [`MAX_LISTED`].
fn list<'a>(items: impl ExactSizeIterator<Item = &'a str>, empty: &str) -> String {
    let count = items.len();
    if count == 0 {
        return empty.to_owned();
    }
    let shown: Vec<String> = items.take(MAX_LISTED).map(|item| format!("{item:?}")).collect();
    let more = if count > MAX_LISTED { format!(", ... ({} more)", count - MAX_LISTED) } else { String::new() };
    format!("[{}{more}]", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect() -> DnsExpect {
        DnsExpect {
            rcodes: vec!["NOERROR".to_owned()],
            answers: Vec::new(),
            min_answers: None,
            authoritative: None,
            answer: SectionExpect::default(),
            authority: SectionExpect::default(),
            additional: SectionExpect::default(),
        }
    }

    fn response() -> Rendered {
        Rendered {
            rcode: "NOERROR".to_owned(),
            authoritative: true,
            values: vec![("2001:db8::1".to_owned(), false), ("Mail.Example.com".to_owned(), false)],
            answer: vec!["a.example.\t60\tIN\tAAAA\t2001:db8::1".to_owned()],
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    #[test]
    fn values_compare_as_addresses_and_names() {
        assert!(value_matches("2001:DB8:0::1", "2001:db8::1", false));
        assert!(value_matches("mail.example.com.", "Mail.Example.com", false));
        assert!(!value_matches("v=SPF1", "v=spf1", true));
        assert!(!value_matches("10.0.0.1", "10.0.0.2", false));
    }

    #[test]
    fn every_assertion_is_reported_and_the_first_failure_wins() {
        let mut e = expect();
        e.rcodes = vec!["NXDOMAIN".to_owned()];
        e.answers = vec!["2001:db8::1".to_owned(), "192.0.2.1".to_owned()];
        e.min_answers = Some(2);
        e.authority.regex = vec![Regex::new("SOA").unwrap()];
        e.answer.not_regex = vec![Regex::new("AAAA").unwrap()];
        let judged = judge(&e, &response());
        let names: Vec<&str> = judged.assertions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["rcode", "min_answers", "answers", "answers", "answer_not_regex", "authority_regex"]);
        let passed: Vec<bool> = judged.assertions.iter().map(|a| a.passed).collect();
        assert_eq!(passed, [false, false, true, false, false, false]);
        assert_eq!(judged.failure.map(|f| f.0), Some(Reason::Rcode));
        assert_eq!(judged.assertions[5].observed, "no match in no records");

        let judged = judge(&expect(), &response());
        assert!(judged.failure.is_none());
        assert_eq!(judged.assertions.len(), 1);
    }

    #[test]
    fn long_lists_are_cut() {
        let items: Vec<String> = (0..15).map(|i| i.to_string()).collect();
        let text = list(items.iter().map(String::as_str), "none");
        assert!(text.ends_with(", ... (5 more)]"), "{text}");
        assert_eq!(list(std::iter::empty(), "none"), "none");
    }
}
