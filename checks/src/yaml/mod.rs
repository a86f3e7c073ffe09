//! Located YAML loading: a tree with line:col marks plus a serde deserializer that reports paths.

mod de;
mod emit;
mod tree;

pub use self::de::{DeError, from_node, join_index, join_key};
pub use self::emit::{emit, same_content};
pub use self::tree::{Key, MAX_DEPTH, MAX_NODES, Mark, Node, NodeKind, PathSeg, YamlError, parse};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    fn m(line: usize, col: usize) -> Mark {
        Mark { line, col }
    }

    fn err(src: &str) -> YamlError {
        match parse(src) {
            Ok(node) => panic!("expected an error for {src:?}, got {node:?}"),
            Err(e) => e,
        }
    }

    fn ok(src: &str) -> Node {
        match parse(src) {
            Ok(node) => node,
            Err(e) => panic!("unexpected error for {src:?}: {}:{}: {e}", e.mark.line, e.mark.col),
        }
    }

    fn scalar(node: &Node) -> (&str, bool) {
        match &node.kind {
            NodeKind::Scalar { text, plain } => (text.as_str(), *plain),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn marks_block_and_flow() {
        let src = "name: x\nchecks:\n  - http:\n      url: \"u\"\n    tags: [a, b]\nflow: {a: 1, b: [x, y]}\n";
        let root = ok(src);
        assert_eq!(root.mark, m(1, 1));
        assert_eq!(root.key_mark("name"), Some(m(1, 1)));
        assert_eq!(root.get("name").map(|n| n.mark), Some(m(1, 7)));
        assert_eq!(root.key_mark("checks"), Some(m(2, 1)));
        let checks = root.get("checks").unwrap();
        assert_eq!(checks.mark, m(3, 3));
        let item = checks.find(&[PathSeg::Index(0)]).unwrap();
        assert_eq!(item.mark, m(3, 5));
        assert_eq!(item.key_mark("http"), Some(m(3, 5)));
        let http = item.get("http").unwrap();
        assert_eq!(http.mark, m(4, 7));
        assert_eq!(http.key_mark("url"), Some(m(4, 7)));
        let url = http.get("url").unwrap();
        assert_eq!(url.mark, m(4, 12));
        assert_eq!(scalar(url), ("u", false));
        let tags = item.get("tags").unwrap();
        assert_eq!(tags.mark, m(5, 11));
        assert_eq!(tags.find(&[PathSeg::Index(1)]).map(|n| n.mark), Some(m(5, 15)));

        let flow = root.get("flow").unwrap();
        assert_eq!(flow.mark, m(6, 7));
        assert_eq!(flow.key_mark("a"), Some(m(6, 8)));
        assert_eq!(flow.get("a").map(|n| n.mark), Some(m(6, 11)));
        assert_eq!(flow.key_mark("b"), Some(m(6, 14)));
        let b = flow.get("b").unwrap();
        assert_eq!(b.mark, m(6, 17));
        let y = root.find(&[PathSeg::Key("flow"), PathSeg::Key("b"), PathSeg::Index(1)]);
        assert_eq!(y.map(|n| (scalar(n).0, n.mark)), Some(("y", m(6, 21))));
        assert!(root.find(&[PathSeg::Key("flow"), PathSeg::Index(0)]).is_none());
    }

    #[test]
    fn top_level_flow_marks() {
        let root = ok("{a: 1, b: [x, y]}");
        assert_eq!(root.mark, m(1, 1));
        assert_eq!(root.key_mark("b"), Some(m(1, 8)));
        let b = root.get("b").unwrap();
        assert_eq!(b.mark, m(1, 11));
        assert_eq!(b.find(&[PathSeg::Index(0)]).map(|n| n.mark), Some(m(1, 12)));
        assert_eq!(b.find(&[PathSeg::Index(1)]).map(|n| n.mark), Some(m(1, 15)));
    }

    #[test]
    fn scalars_types_and_nulls() {
        let root = ok(
            "a: 1\nb: '1'\nc: ~\nd:\ne: true\nf: 1.5\ng: .inf\nh: text\ni: [1]\nj: {}\nk: !!str 3\nl: |\n  lit\nm: 0x1F\nn: \"\"\n",
        );
        let t = |k: &str| root.get(k).map(Node::type_name);
        assert_eq!(t("a"), Some("a number"));
        assert_eq!(t("b"), Some("a string"));
        assert_eq!(t("c"), Some("null"));
        assert_eq!(t("d"), Some("null"));
        assert_eq!(t("e"), Some("a boolean"));
        assert_eq!(t("f"), Some("a number"));
        assert_eq!(t("g"), Some("a number"));
        assert_eq!(t("h"), Some("a string"));
        assert_eq!(t("i"), Some("a list"));
        assert_eq!(t("j"), Some("a mapping"));
        assert_eq!(t("k"), Some("a string"));
        assert_eq!(t("m"), Some("a number"));
        assert_eq!(t("n"), Some("a string"));
        assert!(root.get("c").is_some_and(Node::is_null));
        assert!(root.get("d").is_some_and(Node::is_null));
        assert!(!root.get("n").is_some_and(Node::is_null));
        assert_eq!(root.get("l").map(scalar), Some(("lit\n", false)));
        assert_eq!(root.get("k").map(scalar), Some(("3", false)));
        assert_eq!(root.get("zz"), None);
    }

    #[test]
    fn empty_input_is_null() {
        for src in ["", "# only a comment\n", "\n\n"] {
            let node = ok(src);
            assert!(node.is_null(), "{src:?}");
            assert_eq!(node.mark, m(1, 1));
        }
    }

    #[test]
    fn duplicate_key() {
        let e = err("a: 1\nb:\n    name: x\n    other: 2\n    name: y\n");
        assert_eq!(e.mark, m(5, 5));
        assert_eq!(e.message, "duplicate key \"name\" (first at line 3 column 5)");
        assert_eq!(e.to_string(), e.message);
        let e = err("{a: 1, a: 2}");
        assert_eq!((e.mark, e.message.as_str()), (m(1, 8), "duplicate key \"a\" (first at line 1 column 2)"));
    }

    #[test]
    fn multiple_documents() {
        let e = err("a: 1\n---\nb: 2\n");
        assert_eq!(e.mark, m(2, 1));
        assert_eq!(e.message, "only one YAML document per file is supported");
        let e = err("--- 1\n...\n--- 2\n");
        assert_eq!(e.mark, m(3, 1));
        // A single explicit document is fine.
        assert_eq!(scalar(&ok("---\nx\n...\n")).0, "x");
    }

    #[test]
    fn alias_bomb() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..=9 {
            let p = i - 1;
            src.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let started = std::time::Instant::now();
        let e = err(&src);
        assert_eq!(e.message, "aliases expand to more than 100000 nodes");
        assert!(e.mark.line > 1 && e.mark.line <= 10, "{:?}", e.mark);
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn a_long_file_without_aliases_is_not_too_large() {
        // 10,000 checks written out: about 300,000 nodes, no alias (the old bound of 100,000 nodes refused it).
        let mut src = String::from("checks:\n");
        for i in 0..10_000 {
            src.push_str(&format!(
                "  - name: check-{i}\n    interval: 10s\n    labels: {{team: web, tier: \"1\"}}\n    http: {{url: \"http://127.0.0.1:{}/\", expect: {{status: [200, 204]}}}}\n",
                1000 + i % 60000
            ));
        }
        let root = ok(&src);
        let checks = root.get("checks").unwrap();
        assert!(matches!(&checks.kind, NodeKind::Seq(items) if items.len() == 10_000));
    }

    #[test]
    fn aliases_expand() {
        let root = ok("base: &b\n  x: 1\nuse: *b\nlist: [&s hi, *s]\n");
        let used = root.get("use").unwrap();
        assert_eq!(used.mark, m(3, 6), "an alias node is located where the alias is written");
        assert_eq!(used.get("x").map(|n| n.mark), Some(m(2, 6)));
        let list = root.get("list").unwrap();
        assert_eq!(list.find(&[PathSeg::Index(1)]).map(scalar), Some(("hi", true)));
    }

    #[test]
    fn unknown_and_recursive_alias() {
        let e = err("a: 1\nb: *nope\n");
        assert_eq!(e.mark, m(2, 4));
        assert!(e.message.starts_with("unknown alias"), "{}", e.message);
        let e = err("a: &x [1, *x]\n");
        assert_eq!(e.mark, m(1, 11));
        assert!(e.message.contains("recursive alias"), "{}", e.message);
    }

    #[test]
    fn deep_nesting() {
        let src = "[".repeat(100);
        let e = err(&src);
        assert_eq!(e.message, "nesting deeper than 64 levels");
        assert_eq!(e.mark, m(1, 65));
        let fine = format!("{}{}", "[".repeat(64), "]".repeat(64));
        ok(&fine);
        let too_deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(err(&too_deep).message, "nesting deeper than 64 levels");
        // Aliases cannot be used to get past the limit.
        let nested = format!("{}{}", "[".repeat(40), "]".repeat(40));
        let src = format!("a: &a {nested}\nb: {}*a{}\n", "[".repeat(30), "]".repeat(30));
        let e = err(&src);
        assert_eq!((e.mark, e.message.as_str()), (m(2, 34), "nesting deeper than 64 levels"));
    }

    #[test]
    fn tags() {
        let e = err("a: 1\nb: !foo x\n");
        assert_eq!((e.mark, e.message.as_str()), (m(2, 4), "unsupported tag \"!foo\""));
        assert_eq!(err("a: !!binary aGk=").message, "unsupported tag \"!!binary\"");
        let root =
            ok("a: !!str 12\nb: !!int 3\nc: !!map {x: 1}\nd: !!seq [1]\ne: !!null ~\nf: !!bool true\ng: !!float 1.5\n");
        assert_eq!(root.get("a").map(scalar), Some(("12", false)));
        assert_eq!(root.get("b").map(scalar), Some(("3", true)));
        assert_eq!(root.get("c").map(Node::type_name), Some("a mapping"));
        assert_eq!(scalar(&ok("! 12")), ("12", false));
    }

    #[test]
    fn syntax_errors_have_marks() {
        let e = err("a: 1\nb: [1, 2\nc: 3\n");
        assert!(e.mark.line >= 2, "{e:?}");
        assert!(!e.message.is_empty() && !e.message.contains("ScanError"));
        let e = err("a: b: c\n");
        assert_eq!((e.mark, e.message.as_str()), (m(1, 5), "mapping values are not allowed in this context"));
        let e = err("a:\n  b: 1\n c: 2\n");
        assert_eq!(e.mark.line, 3, "{e:?}");
    }

    #[test]
    fn non_scalar_keys() {
        let e = err("? [a]\n: b\n");
        assert_eq!((e.mark, e.message.as_str()), (m(1, 3), "mapping keys must be plain strings"));
        assert_eq!(err("{{a: 1}: 2}").message, "mapping keys must be plain strings");
        assert_eq!(err("x: &k [1]\n*k : 2\n").message, "mapping keys must be plain strings");
    }

    #[test]
    fn merge_keys() {
        let src = "\
defaults: &d
  timeout: 5
  retries: 2
other: &o
  retries: 9
  region: eu
check:
  name: c
  <<: [*d, *o]
  timeout: 10
single:
  <<: *d
  retries: 3
";
        let root = ok(src);
        let check = root.get("check").unwrap();
        let keys: Vec<&str> = match &check.kind {
            NodeKind::Map(pairs) => pairs.iter().map(|(k, _)| k.text.as_str()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(keys, ["name", "retries", "region", "timeout"]);
        assert_eq!(check.get("timeout").map(scalar), Some(("10", true)));
        assert_eq!(check.get("retries").map(scalar), Some(("2", true)));
        assert_eq!(check.get("region").map(scalar), Some(("eu", true)));
        assert_eq!(check.key_mark("retries"), Some(m(3, 3)), "merged keys keep their anchor marks");
        assert_eq!(check.key_mark("region"), Some(m(6, 3)));
        let single = root.get("single").unwrap();
        assert_eq!(single.get("retries").map(scalar), Some(("3", true)));
        assert_eq!(single.get("timeout").map(scalar), Some(("5", true)));
        // A quoted "<<" is an ordinary key.
        let quoted = ok("'<<': 1\n");
        assert_eq!(quoted.get("<<").map(scalar), Some(("1", true)));
        let e = err("a:\n  <<: 3\n");
        assert_eq!(e.mark, m(2, 7));
        assert!(e.message.contains("merge"), "{}", e.message);
    }

    // ---- from_node ----

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        version: String,
        checks: Vec<Check>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        env: HashMap<String, u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Check {
        name: String,
        count: Option<u32>,
        enabled: Option<bool>,
        http: Option<Http>,
        #[serde(default)]
        steps: Vec<Step>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Http {
        url: String,
        method: Option<String>,
        expect: Option<Expect>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Expect {
        status: Vec<u16>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase", deny_unknown_fields)]
    enum Step {
        Reload,
        Goto(String),
        Click { selector: String, times: Option<u8> },
        Fill(String, String),
    }

    fn de<T: serde::de::DeserializeOwned>(src: &str) -> Result<T, DeError> {
        from_node(&ok(src), "")
    }

    const GOOD: &str = "\
version: 1.0
labels: {team: web}
env:
  A: 1
checks:
  - name: 3
    count: 3
    enabled: true
    http:
      url: https://example.com
      expect:
        status: [200, 204]
    steps:
      - reload
      - goto: /login
      - click: {selector: '#go'}
      - fill: [user, bob]
  - name: second
    count: ~
";

    #[test]
    fn deserialize_full_config() {
        let cfg: Config = match de(GOOD) {
            Ok(c) => c,
            Err(e) => panic!("{}:{}: {}: {}", e.mark.line, e.mark.col, e.path, e.message),
        };
        assert_eq!(cfg.version, "1.0");
        assert_eq!(cfg.labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(cfg.env.get("A"), Some(&1));
        assert_eq!(cfg.checks.len(), 2);
        let c = &cfg.checks[0];
        assert_eq!(c.name, "3");
        assert_eq!(c.count, Some(3));
        assert_eq!(c.enabled, Some(true));
        let http = c.http.as_ref().unwrap();
        assert_eq!(http.url, "https://example.com");
        assert_eq!(http.method, None);
        assert_eq!(http.expect, Some(Expect { status: vec![200, 204] }));
        assert_eq!(
            c.steps,
            vec![
                Step::Reload,
                Step::Goto("/login".into()),
                Step::Click { selector: "#go".into(), times: None },
                Step::Fill("user".into(), "bob".into()),
            ]
        );
        assert_eq!(cfg.checks[1].count, None);
        assert!(cfg.checks[1].steps.is_empty());
    }

    #[test]
    fn integers_from_plain_and_quoted() {
        #[derive(Debug, Deserialize)]
        struct N {
            n: u32,
        }
        assert_eq!(de::<N>("n: 3").map(|n| n.n), Ok(3));
        assert_eq!(de::<N>("n: 0x10").map(|n| n.n), Ok(16));
        let e = de::<N>("\nn: \"3\"").unwrap_err();
        assert_eq!(e.message, "expected an integer, found a string \"3\"");
        assert_eq!((e.mark, e.path.as_str()), (m(2, 4), "n"));
        let e = de::<N>("n: -1").unwrap_err();
        assert_eq!(e.message, "-1 is out of range for this field (0 to 4294967295)");
        let e = de::<N>("n: 1.5").unwrap_err();
        assert_eq!(e.message, "expected an integer, found the number 1.5");
        let e = de::<N>("n: [1]").unwrap_err();
        assert_eq!(e.message, "expected an integer, found a list");
        let e = de::<N>("n:").unwrap_err();
        assert_eq!(e.message, "expected an integer, found null");
    }

    #[test]
    fn strings_bools_floats() {
        #[derive(Debug, Deserialize)]
        struct S {
            s: String,
        }
        assert_eq!(de::<S>("s: 3").map(|v| v.s), Ok("3".to_string()));
        assert_eq!(de::<S>("s: true").map(|v| v.s), Ok("true".to_string()));
        assert_eq!(de::<S>("s: ''").map(|v| v.s), Ok(String::new()));
        let e = de::<S>("s: ~").unwrap_err();
        assert_eq!((e.message.as_str(), e.path.as_str()), ("expected a string, found null", "s"));
        let e = de::<S>("s: {a: 1}").unwrap_err();
        assert_eq!(e.message, "expected a string, found a mapping");

        #[derive(Debug, Deserialize)]
        struct B {
            b: bool,
            f: f64,
            g: f32,
        }
        let v = de::<B>("b: False\nf: 2\ng: -.inf").unwrap();
        assert!(!v.b && v.f == 2.0 && v.g == f32::NEG_INFINITY);
        let e = de::<B>("b: yes\nf: 1\ng: 1").unwrap_err();
        assert_eq!((e.message.as_str(), e.mark), ("expected a boolean, found a string \"yes\"", m(1, 4)));
        let e = de::<B>("b: true\nf: '1'\ng: 1").unwrap_err();
        assert_eq!(e.message, "expected a number, found a string \"1\"");
        let e = de::<B>("b: true\nf: 1\ng: 1e300").unwrap_err();
        assert_eq!(e.message, "1e300 is out of range for this field");
    }

    #[test]
    fn unknown_field_did_you_mean() {
        let src = "\
version: '1'
checks:
  - name: a
  - name: b
    http:
      url: x
      methd: GET
";
        let e = de::<Config>(src).unwrap_err();
        assert_eq!(e.message, "unknown field \"methd\" (did you mean \"method\"?)");
        assert_eq!(e.path, "checks[1].http.methd");
        assert_eq!(e.mark, m(7, 7));
        let e = from_node::<Config>(&ok(src), "file").unwrap_err();
        assert_eq!(e.path, "file.checks[1].http.methd");

        let e = de::<Http>("url: x\nzzzzzz: 1").unwrap_err();
        assert_eq!(e.message, "unknown field \"zzzzzz\"; expected one of: url, method, expect");
        assert_eq!((e.mark, e.path.as_str()), (m(2, 1), "zzzzzz"));
    }

    #[test]
    fn wrong_type_deep_path() {
        #[derive(Debug, Deserialize)]
        struct A {
            #[allow(dead_code)]
            a: Inner,
        }
        #[derive(Debug, Deserialize)]
        struct Inner {
            #[allow(dead_code)]
            b: Vec<u8>,
        }
        let e = de::<A>("a:\n  b:\n    - 1\n    - 2\n    - 300\n").unwrap_err();
        assert_eq!(e.message, "300 is out of range for this field (0 to 255)");
        assert_eq!((e.path.as_str(), e.mark), ("a.b[2]", m(5, 7)));
        let e = de::<A>("a:\n  b: [1, 2, x]\n").unwrap_err();
        assert_eq!(e.message, "expected an integer, found a string \"x\"");
        assert_eq!((e.path.as_str(), e.mark), ("a.b[2]", m(2, 13)));
        let e = de::<A>("a: [1]").unwrap_err();
        assert_eq!((e.message.as_str(), e.path.as_str()), ("expected a mapping, found a list", "a"));
    }

    #[test]
    fn missing_field() {
        let e = de::<Config>("version: x\nchecks:\n  - count: 1\n").unwrap_err();
        assert_eq!(e.message, "missing field \"name\"");
        assert_eq!((e.path.as_str(), e.mark), ("checks[0]", m(3, 5)));
    }

    #[test]
    fn enum_errors() {
        let src = "version: x\nchecks:\n  - name: a\n    steps:\n      - goto: /\n        click: {selector: a}\n";
        let e = de::<Config>(src).unwrap_err();
        assert_eq!(e.message, "expected exactly one of: reload, goto, click, fill");
        assert_eq!((e.path.as_str(), e.mark), ("checks[0].steps[0]", m(5, 9)));

        let e = de::<Vec<Step>>("- clik: {selector: a}").unwrap_err();
        assert_eq!(e.message, "unknown variant \"clik\" (did you mean \"click\"?)");
        assert_eq!((e.path.as_str(), e.mark), ("[0].clik", m(1, 3)));
        let e = de::<Vec<Step>>("- reload\n- xyzzy").unwrap_err();
        assert_eq!(e.message, "unknown variant \"xyzzy\"; expected one of: reload, goto, click, fill");
        assert_eq!((e.path.as_str(), e.mark), ("[1]", m(2, 3)));
        let e = de::<Vec<Step>>("- goto").unwrap_err();
        assert_eq!(e.message, "\"goto\" needs a value");
        let e = de::<Vec<Step>>("- reload: 3").unwrap_err();
        assert_eq!((e.message.as_str(), e.mark), ("\"reload\" takes no value", m(1, 11)));
        assert_eq!(de::<Vec<Step>>("- reload:"), Ok(vec![Step::Reload]));
        let e = de::<Vec<Step>>("- click: {selector: a, times: 256}").unwrap_err();
        assert_eq!((e.path.as_str(), e.mark), ("[0].click.times", m(1, 31)));
        let e = de::<Vec<Step>>("- click: {selectr: a}").unwrap_err();
        assert_eq!(e.message, "unknown field \"selectr\" (did you mean \"selector\"?)");
        assert_eq!(e.path, "[0].click.selectr");
        let e = de::<Vec<Step>>("- fill: [a]").unwrap_err();
        assert_eq!((e.message.as_str(), e.path.as_str()), ("expected a list of 2 items, found 1 item", "[0].fill"));
    }

    #[test]
    fn custom_errors_are_located() {
        #[derive(Debug)]
        struct Even(u32);
        impl<'de> Deserialize<'de> for Even {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = u32::deserialize(d)?;
                if n % 2 == 0 { Ok(Even(n)) } else { Err(serde::de::Error::custom(format!("{n} is odd"))) }
            }
        }
        #[derive(Debug, Deserialize)]
        struct W {
            xs: Vec<Even>,
            o: Option<Even>,
        }
        let w = de::<W>("xs: [2, 4]\no: 6").unwrap();
        assert_eq!(w.xs.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(w.o.map(|e| e.0), Some(6));
        let e = de::<W>("xs: [2, 4, 5]\no: 2").unwrap_err();
        assert_eq!(e, DeError::new(m(1, 12), "xs[2]", "5 is odd"));
        let e = de::<W>("xs: []\no: 7").unwrap_err();
        assert_eq!(e, DeError::new(m(2, 4), "o", "7 is odd"));
    }

    #[test]
    fn unknown_field_message_variants() {
        use serde::de::Error as _;
        assert_eq!(DeError::unknown_field("foo", &[]).message, "unknown field \"foo\"");
        assert_eq!(DeError::unknown_field("foo", &["a", "b"]).message, "unknown field \"foo\"; expected one of: a, b");
        assert_eq!(DeError::unknown_field("URL", &["url"]).message, "unknown field \"URL\" (did you mean \"url\"?)");
        assert_eq!(DeError::duplicate_field("f").message, "duplicate field \"f\"");
        assert_eq!(DeError::custom("as is").message, "as is");
        assert_eq!(DeError::custom("x").mark, Mark::default());
    }

    #[test]
    fn duplicate_field_via_alias_points_at_second_key() {
        #[derive(Debug, Deserialize)]
        struct U {
            #[serde(alias = "uri")]
            #[allow(dead_code)]
            url: String,
        }
        let e = de::<U>("url: a\nuri: b").unwrap_err();
        assert_eq!(e, DeError::new(m(2, 1), "uri", "duplicate field \"url\""));
    }

    #[test]
    fn buffered_and_tuple_messages() {
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Tagged {
            Http { url: String },
        }
        // Internally tagged enums buffer their content: errors land on the enclosing mapping.
        let e = de::<Tagged>("type: http\nurl: [1]").unwrap_err();
        assert_eq!(e, DeError::new(m(1, 1), "", "expected a string, found a list"));
        let e = de::<(u8, u8)>("[1,2,3]").unwrap_err();
        assert_eq!(e.message, "expected a list of 2 items, found 3 items");
        let e = de::<Vec<u8>>("x: 1").unwrap_err();
        assert_eq!(e.message, "expected a list, found a mapping");
        let e = de::<char>("ab").unwrap_err();
        assert_eq!(e.message, "expected a single character, found a string \"ab\"");
        assert_eq!(de::<char>("'x'"), Ok('x'));
        let long = "y".repeat(60);
        let e = de::<u8>(&format!("'{long}'")).unwrap_err();
        assert_eq!(e.message, format!("expected an integer, found a string \"{}...\"", "y".repeat(40)));
    }

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(join_key("", "a"), "a");
        assert_eq!(join_key("a", "b"), "a.b");
        assert_eq!(join_key("h", "x.y"), "h[\"x.y\"]");
        assert_eq!(join_index("a", 2), "a[2]");
        let e = from_node::<HashMap<String, u8>>(&ok("'a b': x"), "h").unwrap_err();
        assert_eq!(e.path, "h[\"a b\"]");
    }

    #[test]
    fn no_rust_type_names_in_messages() {
        // Through deserialize_any paths (untagged enums buffer content), serde names types.
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Tagged {
            Http { url: String },
        }
        let e = de::<Tagged>("type: http\nurl: [1]").unwrap_err();
        assert!(!e.message.contains("Tagged") && !e.message.contains("Http"), "{}", e.message);
        let e = de::<(u8, u8)>("[1]").unwrap_err();
        assert!(!e.message.contains("u8"), "{}", e.message);
        let e = de::<Step>("[a]").unwrap_err();
        assert_eq!(e.message, "expected exactly one of: reload, goto, click, fill, found a list");
    }

    // ---- never panic ----

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Any {
        Null,
        Bool(bool),
        I(i64),
        U(u64),
        F(f64),
        S(String),
        Seq(Vec<Any>),
        Map(Vec<(Any, Any)>),
    }

    struct AnyVisitor;

    impl<'de> serde::de::Visitor<'de> for AnyVisitor {
        type Value = Any;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("anything")
        }
        fn visit_unit<E>(self) -> Result<Any, E> {
            Ok(Any::Null)
        }
        fn visit_bool<E>(self, v: bool) -> Result<Any, E> {
            Ok(Any::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Any, E> {
            Ok(Any::I(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Any, E> {
            Ok(Any::U(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Any, E> {
            Ok(Any::F(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Any, E> {
            Ok(Any::S(v.to_string()))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
            let mut out = Vec::new();
            while let Some(x) = a.next_element()? {
                out.push(x);
            }
            Ok(Any::Seq(out))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
            let mut out = Vec::new();
            while let Some(kv) = a.next_entry()? {
                out.push(kv);
            }
            Ok(Any::Map(out))
        }
    }

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(AnyVisitor)
        }
    }

    fn fragment() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "{", "}", "[", "]", ":", ",", "-", "'", "\"", "&", "*", "!", "|", ">", " ", "  ", "\n", "a", "key", "<<",
            "1", "0x", "~", "!!str", "---", "#", "?", "true", ".inf", "é",
        ];
        let piece = proptest::sample::select(PIECES);
        proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    /// Indented YAML-ish lines, so that parsing often succeeds and deserialization runs deep.
    fn yaml_lines() -> impl Strategy<Value = String> {
        const LINES: &[&str] = &[
            "a: 1",
            "- x",
            "b:",
            "- a: *x",
            "c: &x [1, 2]",
            "<<: *m",
            "d: &m {k: v}",
            "name: n",
            "checks:",
            "steps:",
            "- goto: /",
            "- click: {selector: a}",
            "- reload",
            "version: 1",
            "http: {url: u, methd: 1}",
            "expect: {status: [200, '3']}",
            "count: 99999999999999999999",
            "env: {A: -1}",
            "labels: {x: ~}",
            "- fill: [a, b, c]",
            "enabled: yes",
            "? k",
            ": v",
            "l: |",
            "  text",
            "q: !!str 5",
            "- [[[1]]]",
            "- {}",
            "- ''",
            "f: 1e999",
        ];
        let line = (0usize..4, proptest::sample::select(LINES))
            .prop_map(|(indent, text)| format!("{}{text}\n", "  ".repeat(indent)));
        proptest::collection::vec(line, 0..25).prop_map(|v| v.concat())
    }

    fn exercise(src: &str) {
        if let Ok(node) = parse(src) {
            let _ = from_node::<Any>(&node, "");
            let _ = from_node::<Config>(&node, "root");
            let _ = from_node::<Vec<Step>>(&node, "");
            let _ = node.type_name();
        }
    }

    #[test]
    fn json_reads_back_as_the_same_values() {
        let json = serde_json::json!({
            "name": "a: b # c", "n": 3, "f": 1.5, "yes": true, "none": null, "text": "true",
            "list": ["x", "- y", ""], "map": {"k": "v", "<<": "merge?"}, "empty": [], "nothing": {}
        });
        let text = emit(&Node::from_json(&json));
        let back: serde_json::Value = from_node(&ok(&text), "").unwrap();
        assert_eq!(back, json, "{text}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_strings(src in ".{0,80}") {
            exercise(&src);
        }

        #[test]
        fn never_panics_on_yamlish_fragments(src in fragment()) {
            exercise(&src);
        }

        #[test]
        fn never_panics_on_yamlish_lines(src in yaml_lines()) {
            exercise(&src);
        }
    }
}
