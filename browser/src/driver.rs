//! Talking to one page: DevTools calls bounded by a deadline and by the browser's life, JavaScript
//! evaluation, polling a condition until it holds, and the small scripts the steps use.

use std::future::Future;
use std::time::Duration;

use chromiumoxide_cdp::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams, DispatchMouseEventType, InsertTextParams,
    MouseButton,
};
use chromiumoxide_cdp::cdp::js_protocol::runtime::{
    EvaluateParams, ExceptionDetails, RemoteObject, RemoteObjectSubtype, RemoteObjectType,
};
use serde_json::Value;
use tokio::time::Instant;

use crate::cdp::CdpError;
use crate::chromium::Chromium;
use crate::page::Page;

/// How often a waiting step looks again.
const POLL: Duration = Duration::from_millis(50);

/// Why a call did not give a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    /// The deadline passed.
    Deadline,
    /// The browser process exited.
    Exited,
    /// The page threw (the message), for a script we ran.
    Js(String),
    /// The DevTools call failed (the message).
    Cdp(String),
}

/// Why a wait ended without its condition holding.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited {
    /// The deadline passed; the last thing seen.
    Deadline(String),
    /// Waiting cannot succeed (an invalid selector, an element of the wrong kind).
    Fatal(String),
    /// The page never answered (its main thread is busy, or a navigation never commits).
    Unresponsive,
    /// The browser process exited.
    Exited,
}

/// What one look at a condition found.
#[derive(Debug)]
pub enum Probe<T> {
    /// It holds.
    Ready(T),
    /// Not yet; what was seen.
    Wait(String),
    /// It never will.
    Fatal(String),
}

/// One page of one journey.
#[derive(Debug)]
pub struct Driver<'a> {
    /// The page.
    pub page: &'a Page,
    /// Its browser.
    pub chromium: &'a Chromium,
}

impl Driver<'_> {
    /// Awaits `future` until `until`, or until the browser exits (or its pipe closes).
    pub async fn call<T>(&self, until: Instant, future: impl Future<Output = Result<T, CdpError>>) -> Result<T, Fail> {
        tokio::select! {
            biased;
            out = future => out.map_err(|error| match error {
                CdpError::Closed => Fail::Exited,
                error => Fail::Cdp(error.to_string()),
            }),
            () = self.chromium.exited() => Err(Fail::Exited),
            () = self.chromium.cdp.closed() => Err(Fail::Exited),
            () = tokio::time::sleep_until(until) => Err(Fail::Deadline),
        }
    }

    /// Evaluates `expression` in the page's main frame, awaiting a promise; returns the result object.
    pub async fn evaluate(&self, until: Instant, expression: &str, by_value: bool) -> Result<RemoteObject, Fail> {
        let mut params = EvaluateParams::new(expression);
        params.return_by_value = Some(by_value);
        params.await_promise = Some(true);
        let returns = self.call(until, self.page.execute(params)).await?;
        if let Some(details) = returns.exception_details {
            return Err(Fail::Js(exception_text(&details)));
        }
        Ok(returns.result)
    }

    /// Evaluates `expression` and returns its value as JSON.
    pub async fn value(&self, until: Instant, expression: &str) -> Result<Value, Fail> {
        Ok(self.evaluate(until, expression, true).await?.value.unwrap_or(Value::Null))
    }

    /// Evaluates `script` every [`POLL`] until `judge` says its result is ready, or fatal, or `until` passes.
    /// Errors of single looks (a navigation replacing the document) are waited out.
    pub async fn poll<T>(&self, until: Instant, script: &str, judge: impl Fn(&Value) -> Probe<T>) -> Result<T, Waited> {
        let mut seen = "nothing yet".to_owned();
        let mut answered = false;
        loop {
            let look = self.value(until, script).await;
            answered |= look.is_ok();
            match look {
                Ok(value) => match judge(&value) {
                    Probe::Ready(ready) => return Ok(ready),
                    Probe::Wait(now) => seen = now,
                    Probe::Fatal(message) => return Err(Waited::Fatal(message)),
                },
                Err(Fail::Deadline) if !answered => return Err(Waited::Unresponsive),
                Err(Fail::Deadline) => return Err(Waited::Deadline(seen)),
                Err(Fail::Exited) => return Err(Waited::Exited),
                Err(Fail::Js(message) | Fail::Cdp(message)) => seen = message,
            }
            let next = Instant::now() + POLL;
            if next >= until {
                tokio::time::sleep_until(until).await;
                return Err(Waited::Deadline(seen));
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// A real left click at a point of the viewport.
    pub async fn click_at(&self, until: Instant, x: f64, y: f64) -> Result<(), Fail> {
        let event = |kind: DispatchMouseEventType| {
            let mut params = DispatchMouseEventParams::new(kind, x, y);
            params.button = Some(MouseButton::Left);
            params.buttons = Some(1);
            params.click_count = Some(1);
            params
        };
        let mut moved = DispatchMouseEventParams::new(DispatchMouseEventType::MouseMoved, x, y);
        moved.button = Some(MouseButton::None);
        self.call(until, self.page.execute(moved)).await?;
        self.call(until, self.page.execute(event(DispatchMouseEventType::MousePressed))).await?;
        let mut released = event(DispatchMouseEventType::MouseReleased);
        released.buttons = Some(0);
        self.call(until, self.page.execute(released)).await?;
        Ok(())
    }

    /// Types `text` into the focused element, as an input method would.
    pub async fn insert_text(&self, until: Instant, text: &str) -> Result<(), Fail> {
        self.call(until, self.page.execute(InsertTextParams::new(text))).await.map(drop)
    }

    /// Presses and releases a key (a name such as `Enter`, `Space` or one character) on the focused element.
    pub async fn press(&self, until: Instant, key: &str) -> Result<(), Fail> {
        let name = if key == "Space" { " " } else { key };
        let Some(definition) = crate::keys::definition(name) else {
            // A character outside the US layout: typed rather than pressed.
            return self.insert_text(until, name).await;
        };
        let mut down = DispatchKeyEventParams::new(DispatchKeyEventType::KeyDown);
        down.key = Some(definition.key.clone());
        down.code = Some(definition.code.clone());
        down.windows_virtual_key_code = Some(definition.key_code);
        down.native_virtual_key_code = Some(definition.key_code);
        let mut up = down.clone();
        up.r#type = DispatchKeyEventType::KeyUp;
        match definition.text {
            Some(text) => down.text = Some(text),
            None => down.r#type = DispatchKeyEventType::RawKeyDown,
        }
        self.call(until, self.page.execute(down)).await?;
        self.call(until, self.page.execute(up)).await?;
        Ok(())
    }
}

/// The one-line message of an exception.
pub fn exception_text(details: &ExceptionDetails) -> String {
    let described = details.exception.as_ref().and_then(|exception| exception.description.as_deref());
    let text = described.unwrap_or(&details.text);
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// Whether a JavaScript value is truthy, from its remote description.
pub fn truthy(object: &RemoteObject) -> bool {
    let unserializable = object.unserializable_value.as_ref().map(|value| value.inner().as_str());
    match object.r#type {
        RemoteObjectType::Undefined => false,
        RemoteObjectType::Object => !matches!(object.subtype, Some(RemoteObjectSubtype::Null)),
        RemoteObjectType::Boolean => object.value.as_ref().and_then(Value::as_bool).unwrap_or(false),
        RemoteObjectType::Number => match unserializable {
            Some(special) => !matches!(special, "NaN" | "-0"),
            None => object.value.as_ref().and_then(Value::as_f64).is_some_and(|n| n != 0.0),
        },
        RemoteObjectType::String => object.value.as_ref().and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
        RemoteObjectType::Bigint => unserializable.is_some_and(|value| value != "0n"),
        _ => true,
    }
}

/// A JavaScript string literal (JSON is valid JavaScript).
pub fn literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The shared start of the element scripts: `find(selector)` (`{el}` or `{error}`), `visible(el)`, `describe(el)`.
const PRELUDE: &str = r#"
  const find = (sel) => {
    try { return { el: document.querySelector(sel) }; }
    catch (e) { return { error: 'invalid CSS selector ' + JSON.stringify(sel) }; }
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const describe = (el) => !el ? 'nothing' : '<' + el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '') + '>';
"#;

/// A visible, enabled element matching `selector`, scrolled into view: `{ok, x, y}` (its center).
pub fn clickable(selector: &str) -> String {
    format!(
        r#"(() => {{{PRELUDE}
  const found = find({sel});
  if (found.error) return {{ error: found.error }};
  const el = found.el;
  if (!el) return {{ ok: false, seen: 'no element matches' }};
  if (!visible(el)) return {{ ok: false, seen: 'the element is not visible' }};
  if (el.disabled) return {{ ok: false, seen: 'the element is disabled' }};
  el.scrollIntoView({{ block: 'center', inline: 'center', behavior: 'instant' }});
  const r = el.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  if (hit && hit !== el && !el.contains(hit)) return {{ ok: false, seen: 'the element is covered by ' + describe(hit) }};
  return {{ ok: true, x, y }};
}})()"#,
        sel = literal(selector)
    )
}

/// Focuses the input matching `selector` and selects its content (so typing replaces it); with `clear`, also
/// empties it. With `secret`, the element is remembered for [`mask`] (in this document).
pub fn fillable(selector: &str, clear: bool, secret: bool) -> String {
    format!(
        r#"(() => {{{PRELUDE}
  const found = find({sel});
  if (found.error) return {{ error: found.error }};
  const el = found.el;
  if (!el) return {{ ok: false, seen: 'no element matches' }};
  const field = el.tagName === 'INPUT' || el.tagName === 'TEXTAREA';
  if (!field && !el.isContentEditable) return {{ error: describe(el) + ' is not an input, a textarea or editable' }};
  if (!visible(el)) return {{ ok: false, seen: 'the element is not visible' }};
  if (el.disabled || el.readOnly) return {{ ok: false, seen: 'the element is disabled or read-only' }};
  if ({secret}) {{
    if (!window.__probenetSecrets) Object.defineProperty(window, '__probenetSecrets', {{ value: new WeakSet() }});
    window.__probenetSecrets.add(el);
  }}
  el.focus();
  if (field) {{ el.select(); }} else {{
    const range = document.createRange(); range.selectNodeContents(el);
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
  }}
  if ({clear}) {{
    if (field) el.value = ''; else el.textContent = '';
    el.dispatchEvent(new Event('input', {{ bubbles: true }}));
    el.dispatchEvent(new Event('change', {{ bubbles: true }}));
  }}
  return {{ ok: true }};
}})()"#,
        sel = literal(selector)
    )
}

/// Hides what screenshots must not show, until [`UNMASK`]: every password input, the elements a journey filled
/// with a secret (remembered by [`fillable`]), and whatever matches `selectors` (the fields filled with secrets,
/// found again in a later document). Inputs and textareas are emptied, other elements made transparent. Resolves
/// with the number of elements hidden once the page has painted without them.
pub fn mask(selectors: &[String]) -> String {
    let selectors = serde_json::to_string(selectors).unwrap_or_else(|_| "[]".to_owned());
    format!(
        r#"(() => {{
  const hide = new Set(document.querySelectorAll('input[type=password]'));
  for (const sel of {selectors}) {{
    try {{ document.querySelectorAll(sel).forEach((el) => hide.add(el)); }} catch (e) {{}}
  }}
  const marked = window.__probenetSecrets;
  if (marked) document.querySelectorAll('input, textarea, [contenteditable]').forEach((el) => {{
    if (marked.has(el)) hide.add(el);
  }});
  const masked = [];
  for (const el of hide) {{
    if (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') {{
      masked.push([el, 'value', el.value]);
      el.value = '';
    }} else {{
      masked.push([el, 'style', el.getAttribute('style')]);
      el.style.setProperty('color', 'transparent', 'important');
      el.style.setProperty('text-shadow', 'none', 'important');
    }}
  }}
  if (!window.__probenetMasked) Object.defineProperty(window, '__probenetMasked', {{ value: [], writable: true }});
  window.__probenetMasked = window.__probenetMasked.concat(masked);
  return new Promise((done) => {{
    requestAnimationFrame(() => requestAnimationFrame(() => done(masked.length)));
    setTimeout(() => done(masked.length), 200);
  }});
}})()"#
    )
}

/// Gives back what [`mask`] hid.
pub const UNMASK: &str = r#"(() => {
  const masked = window.__probenetMasked || [];
  window.__probenetMasked = [];
  for (const [el, what, was] of masked.reverse()) {
    if (what === 'value') el.value = was;
    else if (was === null) el.removeAttribute('style');
    else el.setAttribute('style', was);
  }
  return masked.length;
})()"#;

/// Focuses the element matching `selector`.
pub fn focusable(selector: &str) -> String {
    format!(
        r#"(() => {{{PRELUDE}
  const found = find({sel});
  if (found.error) return {{ error: found.error }};
  const el = found.el;
  if (!el) return {{ ok: false, seen: 'no element matches' }};
  if (!visible(el)) return {{ ok: false, seen: 'the element is not visible' }};
  el.focus();
  return {{ ok: true }};
}})()"#,
        sel = literal(selector)
    )
}

/// Chooses the option of the `<select>` matching `selector` whose value (else visible text) is `value`.
pub fn select(selector: &str, value: &str) -> String {
    format!(
        r#"(() => {{{PRELUDE}
  const found = find({sel});
  if (found.error) return {{ error: found.error }};
  const el = found.el;
  if (!el) return {{ ok: false, seen: 'no element matches' }};
  if (el.tagName !== 'SELECT') return {{ error: describe(el) + ' is not a <select>' }};
  if (el.disabled) return {{ ok: false, seen: 'the element is disabled' }};
  const want = {value};
  const options = Array.from(el.options);
  const option = options.find((o) => o.value === want) || options.find((o) => o.text.trim() === want.trim());
  if (!option) return {{ ok: false, seen: 'no option ' + JSON.stringify(want) + ' among ' + options.length }};
  el.value = option.value;
  option.selected = true;
  el.dispatchEvent(new Event('input', {{ bubbles: true }}));
  el.dispatchEvent(new Event('change', {{ bubbles: true }}));
  return {{ ok: true }};
}})()"#,
        sel = literal(selector),
        value = literal(value)
    )
}

/// A visible element matching `selector`.
pub fn visible(selector: &str) -> String {
    format!(
        r#"(() => {{{PRELUDE}
  const found = find({sel});
  if (found.error) return {{ error: found.error }};
  if (!found.el) return {{ ok: false, seen: 'no element matches' }};
  if (!visible(found.el)) return {{ ok: false, seen: 'the element is not visible' }};
  return {{ ok: true }};
}})()"#,
        sel = literal(selector)
    )
}

/// The page (or the first element matching `selector`) showing `text`.
pub fn shows_text(text: &str, selector: Option<&str>) -> String {
    let within = match selector {
        Some(selector) => format!(
            "const found = find({}); if (found.error) return {{ error: found.error }}; \
             if (!found.el) return {{ ok: false, seen: 'no element matches' }}; const root = found.el;",
            literal(selector)
        ),
        None => "const root = document.body; if (!root) return { ok: false, seen: 'no page body yet' };".to_owned(),
    };
    format!(
        r#"(() => {{{PRELUDE}
  {within}
  const shown = root.innerText || '';
  if (shown.includes({text})) return {{ ok: true }};
  const line = shown.replace(/\s+/g, ' ').trim();
  return {{ ok: false, seen: line ? 'the text is not shown; it starts with ' + JSON.stringify(line.slice(0, 80)) : 'no text' }};
}})()"#,
        text = literal(text)
    )
}

/// The page's title.
pub const TITLE: &str = "document.title";
/// The page's URL.
pub const URL: &str = "location.href";

/// How many elements match `selector`: `{count}` or `{error}`.
pub fn count(selector: &str) -> String {
    format!(
        r#"(() => {{
  try {{ return {{ count: document.querySelectorAll({sel}).length }}; }}
  catch (e) {{ return {{ error: 'invalid CSS selector ' + JSON.stringify({sel}) }}; }}
}})()"#,
        sel = literal(selector)
    )
}

/// Judges the result of the element scripts above: `{ok}`, `{ok: false, seen}` or `{error}`.
pub fn standard(value: &Value) -> Probe<Value> {
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Probe::Fatal(error.to_owned());
    }
    if value.get("ok").and_then(Value::as_bool) == Some(true) {
        return Probe::Ready(value.clone());
    }
    Probe::Wait(value.get("seen").and_then(Value::as_str).unwrap_or("not yet").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_valid_javascript_strings() {
        assert_eq!(literal("a\"b'c</script>"), "\"a\\\"b'c</script>\"");
    }
}
