//! The `browser` kind as written in YAML, and its validation into [`BrowserCheck`].

use std::borrow::Cow;
use std::marker::PhantomData;
use std::time::Duration;

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::secret::Template;

/// A scripted journey in a headless browser (Chromium), in a fresh browser context each run: no cookies or
/// storage are kept between runs or shared between checks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserSpec {
    /// The steps, run in order; the first is a `goto`. The journey stops at the first step that fails, and the
    /// result names that step, its error and the page's URL, with a screenshot of the page.
    pub steps: Vec<StepSpec>,
    /// Assertions over the whole journey.
    pub expect: Option<BrowserExpectSpec>,
}

/// One step: exactly one action key (`goto`, `click`, `fill`, `press`, `select`, `wait_for`, `expect_text`,
/// `expect_title`, `expect_url`, `expect_count`, `eval`, `screenshot`, `sleep`), and optionally `timeout`.
/// Steps that wait (every one but `sleep`) poll until their condition holds, up to the step's `timeout`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Open an `http://` or `https://` URL and wait for the page's `load` event. A network error fails with
    /// reason `dns`, `connect`, `tls` (or a certificate reason such as `cert_untrusted`), an HTTP status of 400
    /// or more with reason `status`, a page that does not finish loading in time with reason `timeout`.
    pub goto: Option<String>,
    /// Click the element matching a CSS selector, once it is visible (a real mouse click at its center).
    pub click: Option<String>,
    /// Type text into the input matching a selector, replacing its value. The text may hold secrets.
    pub fill: Option<FillSpec>,
    /// Press a key: its name (`Enter`, `Tab`, `Escape`, `Backspace`, `ArrowDown`, `Space`, ... or one
    /// character), sent to the focused element; or `{key: Enter, selector: "#search"}` to focus an element
    /// first.
    pub press: Option<StringOr<PressSpec>>,
    /// Choose an option of the `<select>` matching `selector`, by its value or its visible text.
    pub select: Option<SelectSpec>,
    /// Wait for a condition: a CSS selector (`wait_for: "#cart"`: until a matching element is visible), or one
    /// of `{selector: "#cart"}`, `{text: "Welcome"}` (until the page shows the text) and `{url: "/done$"}`
    /// (until the page's URL matches the regular expression). Not met in time: reason `assertion`.
    pub wait_for: Option<StringOr<WaitForSpec>>,
    /// Expect the page to show a text (`expect_text: Thank you`), or `{text: ..., selector: ...}` to look only
    /// inside the first element matching a selector. Not shown in time: reason `assertion`.
    pub expect_text: Option<StringOr<TextSpec>>,
    /// Expect the page's title to be exactly this text. Reason `assertion` otherwise.
    pub expect_title: Option<String>,
    /// Expect the page's URL to match this regular expression (unanchored: write `^` and `$` to anchor it).
    /// Reason `assertion` otherwise.
    pub expect_url: Option<String>,
    /// Expect the number of elements matching a selector: `{selector: ".item", count: 3}`, or with `min`
    /// and/or `max`. Reason `assertion` otherwise.
    pub expect_count: Option<CountSpec>,
    /// A JavaScript expression evaluated once in the page; it must be truthy (a promise is awaited), as in
    /// `document.querySelectorAll('tr').length > 2`. Falsy or throwing: reason `assertion`.
    pub eval: Option<String>,
    /// Save a screenshot of the page as the artifact `NAME.png` (letters, digits, `-` and `_`).
    pub screenshot: Option<String>,
    /// Wait this long, at most 1m, such as `500ms`.
    pub sleep: Option<String>,
    /// How long this step may take, such as `5s` (default: what is left of the check's timeout). Does not
    /// apply to `sleep`.
    pub timeout: Option<String>,
}

/// The options of a `fill` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FillSpec {
    /// The CSS selector of the input.
    pub selector: String,
    /// The text to type. Write passwords as secret references.
    pub text: String,
}

/// The long form of a `press` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PressSpec {
    /// The key: `Enter`, `Tab`, `Escape`, `Backspace`, `Delete`, `Space`, `ArrowUp`, `ArrowDown`,
    /// `ArrowLeft`, `ArrowRight`, `Home`, `End`, `PageUp`, `PageDown`, `Insert`, `F1`..`F12`, or one character.
    pub key: String,
    /// The CSS selector of the element to focus before pressing the key.
    pub selector: Option<String>,
}

/// The options of a `select` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectSpec {
    /// The CSS selector of the `<select>` element.
    pub selector: String,
    /// The option to choose: its `value`, else its visible text.
    pub value: String,
}

/// The long form of a `wait_for` step: exactly one of its keys.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitForSpec {
    /// Until an element matching this CSS selector is visible.
    pub selector: Option<String>,
    /// Until the page shows this text.
    pub text: Option<String>,
    /// Until the page's URL matches this regular expression.
    pub url: Option<String>,
}

/// The long form of an `expect_text` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// The text the page (or the element) must show.
    pub text: String,
    /// Look only inside the first element matching this CSS selector.
    pub selector: Option<String>,
}

/// The options of an `expect_count` step: `count`, or `min` and/or `max`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountSpec {
    /// The CSS selector whose matches are counted.
    pub selector: String,
    /// Exactly this many.
    pub count: Option<u32>,
    /// At least this many.
    pub min: Option<u32>,
    /// At most this many.
    pub max: Option<u32>,
}

/// Assertions over a whole journey; each is evaluated and reported, even when a step failed.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserExpectSpec {
    /// `true`: fail with reason `assertion` if a page logged an error to the console (`console.error`) or
    /// threw an uncaught exception. (They are counted and reported in the details either way.)
    pub no_console_errors: Option<bool>,
    /// The most failed requests allowed (requests that got no response, or an HTTP status of 400 or more,
    /// from any page of the journey, its own resources included); more fails with reason `assertion`.
    pub max_failed_requests: Option<u32>,
    /// The longest Largest Contentful Paint of the first page, such as `2500ms`; slower fails with reason
    /// `duration`.
    pub max_lcp: Option<String>,
    /// The largest Cumulative Layout Shift of the first page, such as `0.1`; more fails with reason
    /// `assertion`.
    pub max_cls: Option<f64>,
}

/// A value written either as a plain string (its short form) or as a mapping (its long form).
#[derive(Debug, Clone, PartialEq)]
pub enum StringOr<L> {
    /// The short form.
    Short(String),
    /// The long form.
    Long(L),
}

impl<'de, L: Deserialize<'de>> Deserialize<'de> for StringOr<L> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<L>(PhantomData<L>);
        impl<'de, L: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<L> {
            type Value = StringOr<L>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a mapping")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(StringOr::Short(value.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(StringOr::Short(value.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(StringOr::Short(value.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                L::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(StringOr::Long)
            }
        }
        deserializer.deserialize_any(Visitor(PhantomData))
    }
}

impl<L: JsonSchema> JsonSchema for StringOr<L> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("StringOr{}", L::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"anyOf": [{"type": "string"}, generator.subschema_for::<L>()]})
    }
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// Its own time limit, if it has one.
    pub timeout: Option<Duration>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Open a URL and wait for `load`.
    Goto(url::Url),
    /// Click a selector.
    Click(String),
    /// Type into a selector.
    Fill {
        /// The selector.
        selector: String,
        /// The text (may hold secrets).
        text: Template,
    },
    /// Press a key.
    Press {
        /// The key name, as listed in [`KEYS`], or one character.
        key: String,
        /// The element to focus first.
        selector: Option<String>,
    },
    /// Choose an option of a `<select>`.
    Select {
        /// The selector.
        selector: String,
        /// The option's value or text.
        value: String,
    },
    /// Wait for a condition.
    WaitFor(WaitFor),
    /// Expect a text.
    ExpectText {
        /// The text.
        text: String,
        /// Only inside this element.
        selector: Option<String>,
    },
    /// Expect a title.
    ExpectTitle(String),
    /// Expect the URL to match.
    ExpectUrl(Regex),
    /// Expect a number of matches.
    ExpectCount {
        /// The selector.
        selector: String,
        /// At least this many.
        min: u32,
        /// At most this many.
        max: Option<u32>,
    },
    /// A JavaScript expression that must be truthy.
    Eval(String),
    /// Save a screenshot under this name.
    Screenshot(String),
    /// Wait this long.
    Sleep(Duration),
}

/// What a `wait_for` step waits for.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// A visible element matching the selector.
    Selector(String),
    /// The page showing this text.
    Text(String),
    /// The URL matching this regex.
    Url(Regex),
}

impl Action {
    /// The action's key, as written in YAML (and in phase names: `step_2_click`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Goto(_) => "goto",
            Self::Click(_) => "click",
            Self::Fill { .. } => "fill",
            Self::Press { .. } => "press",
            Self::Select { .. } => "select",
            Self::WaitFor(_) => "wait_for",
            Self::ExpectText { .. } => "expect_text",
            Self::ExpectTitle(_) => "expect_title",
            Self::ExpectUrl(_) => "expect_url",
            Self::ExpectCount { .. } => "expect_count",
            Self::Eval(_) => "eval",
            Self::Screenshot(_) => "screenshot",
            Self::Sleep(_) => "sleep",
        }
    }

    /// What the step acts on, for results and errors. Never holds the text of a `fill` (it may be a secret).
    pub fn target(&self) -> String {
        match self {
            Self::Goto(url) => url.to_string(),
            Self::Click(selector) | Self::Fill { selector, .. } => selector.clone(),
            Self::Press { key, selector: Some(selector) } => format!("{key} in {selector}"),
            Self::Press { key, selector: None } => key.clone(),
            Self::Select { selector, value } => format!("{value:?} in {selector}"),
            Self::WaitFor(WaitFor::Selector(selector)) => selector.clone(),
            Self::WaitFor(WaitFor::Text(text)) => format!("text {text:?}"),
            Self::WaitFor(WaitFor::Url(regex)) => format!("url /{regex}/"),
            Self::ExpectText { text, selector: Some(selector) } => format!("{text:?} in {selector}"),
            Self::ExpectText { text, selector: None } => format!("{text:?}"),
            Self::ExpectTitle(title) => format!("{title:?}"),
            Self::ExpectUrl(regex) => format!("/{regex}/"),
            Self::ExpectCount { selector, .. } => selector.clone(),
            Self::Eval(expression) => expression.clone(),
            Self::Screenshot(name) => name.clone(),
            Self::Sleep(duration) => crate::duration::format(*duration),
        }
    }
}

/// Validated journey-wide assertions.
#[derive(Debug, Clone, Default)]
pub struct BrowserExpect {
    /// Fail on console errors and uncaught exceptions.
    pub no_console_errors: bool,
    /// The most failed requests allowed.
    pub max_failed_requests: Option<u32>,
    /// The longest LCP of the first page.
    pub max_lcp: Option<Duration>,
    /// The largest CLS of the first page.
    pub max_cls: Option<f64>,
}

/// A validated browser check.
#[derive(Debug, Clone)]
pub struct BrowserCheck {
    /// The steps; the first is a `goto`.
    pub steps: Vec<Step>,
    /// Journey-wide assertions.
    pub expect: BrowserExpect,
}

/// The most steps a journey may have (step numbers appear in phase names, which must stay few).
pub const MAX_STEPS: usize = 50;
/// The longest `sleep`.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The key names a `press` step accepts, besides one character.
pub const KEYS: [&str; 28] = [
    "Enter",
    "Tab",
    "Escape",
    "Backspace",
    "Delete",
    "Space",
    "ArrowUp",
    "ArrowDown",
    "ArrowLeft",
    "ArrowRight",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "Insert",
    "F1",
    "F2",
    "F3",
    "F4",
    "F5",
    "F6",
    "F7",
    "F8",
    "F9",
    "F10",
    "F11",
    "F12",
    "ContextMenu",
];

const ACTIONS: [&str; 13] = [
    "goto",
    "click",
    "fill",
    "press",
    "select",
    "wait_for",
    "expect_text",
    "expect_title",
    "expect_url",
    "expect_count",
    "eval",
    "screenshot",
    "sleep",
];

impl KindSpec for BrowserSpec {
    type Check = BrowserCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<BrowserCheck> {
        let at = path.key("steps");
        if self.steps.is_empty() {
            cx.error(&at, "a journey needs at least one step");
            return None;
        }
        if self.steps.len() > MAX_STEPS {
            cx.error(&at, format!("a journey has at most {MAX_STEPS} steps, not {}", self.steps.len()));
            return None;
        }
        if self.steps.first().is_some_and(|step| step.goto.is_none()) {
            cx.error(&at.index(0), "a journey starts with a `goto` step");
        }
        let mut ok = true;
        let mut steps = Vec::new();
        let mut screenshots: Vec<String> = Vec::new();
        for (i, step) in self.steps.into_iter().enumerate() {
            match validate_step(cx, &at.index(i), step, &mut screenshots) {
                Some(step) => steps.push(step),
                None => ok = false,
            }
        }
        let expect = validate_expect(cx, &path.key("expect"), self.expect.unwrap_or_default());
        (ok && expect.is_some()).then_some(BrowserCheck { steps, expect: expect.unwrap_or_default() })
    }
}

fn validate_step(cx: &mut Ctx<'_>, path: &Path, step: StepSpec, screenshots: &mut Vec<String>) -> Option<Step> {
    let present: Vec<&str> = [
        step.goto.is_some(),
        step.click.is_some(),
        step.fill.is_some(),
        step.press.is_some(),
        step.select.is_some(),
        step.wait_for.is_some(),
        step.expect_text.is_some(),
        step.expect_title.is_some(),
        step.expect_url.is_some(),
        step.expect_count.is_some(),
        step.eval.is_some(),
        step.screenshot.is_some(),
        step.sleep.is_some(),
    ]
    .iter()
    .zip(ACTIONS)
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    match present.as_slice() {
        [] => {
            cx.error(path, format!("a step needs one action: {}", ACTIONS.join(", ")));
            return None;
        }
        [_] => {}
        [first, second, ..] => {
            cx.error_at_key(
                &path.key(second),
                format!("a step has one action; this one has both `{first}` and `{second}`"),
            );
            return None;
        }
    }
    let timeout = match step.timeout.as_deref() {
        Some(text) => match cx.duration(&path.key("timeout"), text)? {
            zero if zero.is_zero() => {
                cx.error(&path.key("timeout"), "the timeout must be longer than 0s");
                return None;
            }
            _ if step.sleep.is_some() => {
                cx.error_at_key(&path.key("timeout"), "`timeout` does not apply to a `sleep` step");
                return None;
            }
            timeout => Some(timeout),
        },
        None => None,
    };
    let action = if let Some(text) = step.goto {
        Action::Goto(web_url(cx, &path.key("goto"), &text)?)
    } else if let Some(selector) = step.click {
        Action::Click(selector_at(cx, &path.key("click"), selector)?)
    } else if let Some(fill) = step.fill {
        let at = path.key("fill");
        let text = if crate::config::is_credential_selector(&fill.selector) {
            cx.credential(&at.key("text"), &fill.text)
        } else {
            cx.template(&at.key("text"), &fill.text)
        };
        let selector = selector_at(cx, &at.key("selector"), fill.selector);
        Action::Fill { selector: selector?, text: text? }
    } else if let Some(press) = step.press {
        let at = path.key("press");
        let (key, selector, key_at) = match press {
            StringOr::Short(key) => (key, None, at),
            StringOr::Long(long) => {
                let selector = match long.selector {
                    Some(selector) => Some(selector_at(cx, &at.key("selector"), selector)?),
                    None => None,
                };
                (long.key, selector, at.key("key"))
            }
        };
        Action::Press { key: key_name(cx, &key_at, key)?, selector }
    } else if let Some(select) = step.select {
        let at = path.key("select");
        Action::Select { selector: selector_at(cx, &at.key("selector"), select.selector)?, value: select.value }
    } else if let Some(wait) = step.wait_for {
        Action::WaitFor(wait_for(cx, &path.key("wait_for"), wait)?)
    } else if let Some(expect) = step.expect_text {
        let at = path.key("expect_text");
        let (text, selector, text_at) = match expect {
            StringOr::Short(text) => (text, None, at),
            StringOr::Long(long) => {
                let selector = match long.selector {
                    Some(selector) => Some(selector_at(cx, &at.key("selector"), selector)?),
                    None => None,
                };
                (long.text, selector, at.key("text"))
            }
        };
        if text.is_empty() {
            cx.error(&text_at, "the text is empty");
            return None;
        }
        Action::ExpectText { text, selector }
    } else if let Some(title) = step.expect_title {
        Action::ExpectTitle(title)
    } else if let Some(pattern) = step.expect_url {
        Action::ExpectUrl(cx.regex(&path.key("expect_url"), &pattern)?)
    } else if let Some(count) = step.expect_count {
        expect_count(cx, &path.key("expect_count"), count)?
    } else if let Some(expression) = step.eval {
        if expression.trim().is_empty() {
            cx.error(&path.key("eval"), "the expression is empty");
            return None;
        }
        Action::Eval(expression)
    } else if let Some(name) = step.screenshot {
        let at = path.key("screenshot");
        let valid =
            (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            cx.error(&at, format!("{name:?} is not a screenshot name: 1 to 64 letters, digits, `-` and `_`"));
            return None;
        }
        if name.starts_with("failure-") {
            cx.error(&at, "names starting with `failure-` are kept for the screenshot of a failing step");
            return None;
        }
        if screenshots.contains(&name) {
            cx.error(&at, format!("another `screenshot` step is already named {name:?}"));
            return None;
        }
        screenshots.push(name.clone());
        Action::Screenshot(name)
    } else if let Some(text) = step.sleep {
        let at = path.key("sleep");
        let duration = cx.duration(&at, &text)?;
        if duration > MAX_SLEEP {
            cx.error(&at, format!("a sleep lasts at most {}", crate::duration::format(MAX_SLEEP)));
            return None;
        }
        Action::Sleep(duration)
    } else {
        return None;
    };
    Some(Step { action, timeout })
}

fn web_url(cx: &mut Ctx<'_>, path: &Path, text: &str) -> Option<url::Url> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            cx.error(path, format!("{text:?}: scheme {:?} is not http or https", url.scheme()));
            None
        }
        Ok(_) => {
            cx.error(path, format!("{text:?} has no host"));
            None
        }
        Err(error) => {
            cx.error(path, format!("{text:?} is not a valid URL: {error}"));
            None
        }
    }
}

fn selector_at(cx: &mut Ctx<'_>, path: &Path, selector: String) -> Option<String> {
    if selector.trim().is_empty() {
        cx.error(path, "the CSS selector is empty");
        return None;
    }
    Some(selector)
}

fn key_name(cx: &mut Ctx<'_>, path: &Path, key: String) -> Option<String> {
    if KEYS.contains(&key.as_str()) || key.chars().count() == 1 {
        return Some(key);
    }
    let hint = crate::config::suggest(&key, KEYS)
        .map(|close| format!(" (did you mean {close:?}?)"))
        .unwrap_or_else(|| "; write one character or a name such as Enter, Tab, Escape or ArrowDown".to_owned());
    cx.error(path, format!("{key:?} is not a key{hint}"));
    None
}

fn wait_for(cx: &mut Ctx<'_>, path: &Path, spec: StringOr<WaitForSpec>) -> Option<WaitFor> {
    let spec = match spec {
        StringOr::Short(selector) => return selector_at(cx, path, selector).map(WaitFor::Selector),
        StringOr::Long(spec) => spec,
    };
    match (spec.selector, spec.text, spec.url) {
        (Some(selector), None, None) => selector_at(cx, &path.key("selector"), selector).map(WaitFor::Selector),
        (None, Some(text), None) if text.is_empty() => {
            cx.error(&path.key("text"), "the text is empty");
            None
        }
        (None, Some(text), None) => Some(WaitFor::Text(text)),
        (None, None, Some(pattern)) => cx.regex(&path.key("url"), &pattern).map(WaitFor::Url),
        (None, None, None) => {
            cx.error(path, "`wait_for` needs one of `selector`, `text` or `url`");
            None
        }
        (selector, text, _) => {
            let second = if selector.is_some() && text.is_some() { "text" } else { "url" };
            cx.error_at_key(&path.key(second), "set only one of `selector`, `text` and `url`");
            None
        }
    }
}

fn expect_count(cx: &mut Ctx<'_>, path: &Path, spec: CountSpec) -> Option<Action> {
    let selector = selector_at(cx, &path.key("selector"), spec.selector)?;
    let (min, max) = match (spec.count, spec.min, spec.max) {
        (Some(count), None, None) => (count, Some(count)),
        (Some(_), _, _) => {
            let other = if spec.min.is_some() { "min" } else { "max" };
            cx.error_at_key(&path.key(other), "set either `count`, or `min` and/or `max`");
            return None;
        }
        (None, None, None) => {
            cx.error(path, "`expect_count` needs `count`, or `min` and/or `max`");
            return None;
        }
        (None, min, max) => (min.unwrap_or(0), max),
    };
    if max.is_some_and(|max| max < min) {
        cx.error(&path.key("max"), format!("`max` is less than `min` ({min})"));
        return None;
    }
    Some(Action::ExpectCount { selector, min, max })
}

fn validate_expect(cx: &mut Ctx<'_>, path: &Path, spec: BrowserExpectSpec) -> Option<BrowserExpect> {
    let max_lcp = spec.max_lcp.as_deref().map(|text| cx.duration(&path.key("max_lcp"), text));
    let cls_ok = spec.max_cls.is_none_or(|cls| cls.is_finite() && cls >= 0.0);
    if !cls_ok {
        cx.error(&path.key("max_cls"), "the layout shift limit is a number of 0 or more, such as 0.1");
    }
    let max_lcp = match max_lcp {
        Some(parsed) => Some(parsed?),
        None => None,
    };
    cls_ok.then_some(BrowserExpect {
        no_console_errors: spec.no_console_errors.unwrap_or(false),
        max_failed_requests: spec.max_failed_requests,
        max_lcp,
        max_cls: spec.max_cls,
    })
}
