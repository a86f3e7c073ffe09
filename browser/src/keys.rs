//! What a `press` step sends for a key: its DOM `key` and `code`, its Windows virtual key code, and the text it
//! types, for the named keys the config accepts and the characters of a US keyboard.

/// One key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The DOM `key` value (`Enter`, `a`, `A`, ` `).
    pub key: String,
    /// The DOM `code` of the physical key (`Enter`, `KeyA`, `Space`).
    pub code: String,
    /// The Windows virtual key code (`keyCode`).
    pub key_code: i64,
    /// What pressing it types, if anything.
    pub text: Option<String>,
}

/// The named keys: name, code, key code, text.
const NAMED: [(&str, &str, i64, Option<&str>); 28] = [
    ("Enter", "Enter", 13, Some("\r")),
    ("Tab", "Tab", 9, None),
    ("Escape", "Escape", 27, None),
    ("Backspace", "Backspace", 8, None),
    ("Delete", "Delete", 46, None),
    (" ", "Space", 32, Some(" ")),
    ("ArrowUp", "ArrowUp", 38, None),
    ("ArrowDown", "ArrowDown", 40, None),
    ("ArrowLeft", "ArrowLeft", 37, None),
    ("ArrowRight", "ArrowRight", 39, None),
    ("Home", "Home", 36, None),
    ("End", "End", 35, None),
    ("PageUp", "PageUp", 33, None),
    ("PageDown", "PageDown", 34, None),
    ("Insert", "Insert", 45, None),
    ("F1", "F1", 112, None),
    ("F2", "F2", 113, None),
    ("F3", "F3", 114, None),
    ("F4", "F4", 115, None),
    ("F5", "F5", 116, None),
    ("F6", "F6", 117, None),
    ("F7", "F7", 118, None),
    ("F8", "F8", 119, None),
    ("F9", "F9", 120, None),
    ("F10", "F10", 121, None),
    ("F11", "F11", 122, None),
    ("F12", "F12", 123, None),
    ("ContextMenu", "ContextMenu", 93, None),
];

/// The punctuation of a US keyboard: unshifted, shifted, code, key code.
const PUNCTUATION: [(char, char, &str, i64); 11] = [
    ('-', '_', "Minus", 189),
    ('=', '+', "Equal", 187),
    ('[', '{', "BracketLeft", 219),
    (']', '}', "BracketRight", 221),
    ('\\', '|', "Backslash", 220),
    (';', ':', "Semicolon", 186),
    ('\'', '"', "Quote", 222),
    (',', '<', "Comma", 188),
    ('.', '>', "Period", 190),
    ('/', '?', "Slash", 191),
    ('`', '~', "Backquote", 192),
];

/// The digit row's shifted characters, `)` for 0 to `(` for 9.
const SHIFTED_DIGITS: [char; 10] = [')', '!', '@', '#', '$', '%', '^', '&', '*', '('];

/// The key named `name` (a name from the list above, or one character of a US keyboard); `None` for anything
/// else (such a character is typed rather than pressed).
pub fn definition(name: &str) -> Option<Key> {
    let key = |code: &str, key_code: i64, text: Option<&str>| Key {
        key: name.to_owned(),
        code: code.to_owned(),
        key_code,
        text: text.map(str::to_owned),
    };
    if let Some((_, code, key_code, text)) = NAMED.iter().find(|(named, ..)| *named == name) {
        return Some(key(code, *key_code, *text));
    }
    let mut chars = name.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    let typed = Some(name);
    if c.is_ascii_alphabetic() {
        let upper = c.to_ascii_uppercase();
        return Some(key(&format!("Key{upper}"), i64::from(u32::from(upper)), typed));
    }
    if let Some(digit) = c.to_digit(10) {
        return Some(key(&format!("Digit{digit}"), 48 + i64::from(digit), typed));
    }
    if let Some(digit) = SHIFTED_DIGITS.iter().position(|shifted| *shifted == c) {
        return Some(key(&format!("Digit{digit}"), 48 + digit as i64, typed));
    }
    PUNCTUATION
        .iter()
        .find(|(plain, shifted, ..)| *plain == c || *shifted == c)
        .map(|(_, _, code, key_code)| key(code, *key_code, typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_config_accepts_has_a_definition() {
        for name in probenet_checks::browser::KEYS {
            let name = if name == "Space" { " " } else { name };
            assert!(definition(name).is_some(), "no key definition for {name}");
        }
    }

    #[test]
    fn characters_have_their_keys_and_type_themselves() {
        let a = definition("a").expect("a");
        assert_eq!((a.code.as_str(), a.key_code, a.text.as_deref()), ("KeyA", 65, Some("a")));
        let shifted = definition("A").expect("A");
        assert_eq!((shifted.key.as_str(), shifted.code.as_str()), ("A", "KeyA"));
        assert_eq!(definition("7").map(|key| key.key_code), Some(55));
        assert_eq!(definition("?").map(|key| key.code), Some("Slash".to_owned()));
        assert_eq!(definition("Enter").and_then(|key| key.text), Some("\r".to_owned()));
        assert_eq!(definition("é"), None);
        assert_eq!(definition("Nope"), None);
    }
}
