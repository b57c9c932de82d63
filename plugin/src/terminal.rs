//! Text from an upgrade's status, made safe to print: the status is input (a tenant writes her
//! upgrade's, without the status policy), and an escape sequence in it could clear or rewrite
//! what an admin running `kubectl maintenance list -A` reads, or add rows of its own.

/// `s` with every control character shown as its escape (`\u{1b}`), and newlines kept only
/// where `lines` says the text is several lines of the plugin's own. So are the characters that
/// print nothing but reorder or hide what follows (`hidden`).
pub fn safe(s: &str, lines: bool) -> String {
    s.chars()
        .map(|c| match c {
            '\n' if lines => "\n".to_string(),
            c if c.is_control() || hidden(c) => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// What prints nothing but may reorder, hide or join what follows: Unicode's format characters
/// (bidi marks, embeddings, overrides and isolates, zero-width ones, the byte-order mark), its
/// line and paragraph separators, and every other Default_Ignorable_Code_Point (soft hyphen,
/// Hangul fillers, variation selectors, tag characters).
fn hidden(c: char) -> bool {
    use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
    use icu_properties::{CodePointMapData, CodePointSetData};
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    matches!(
        category,
        GeneralCategory::Format | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
    ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// `value` with every string in it made `safe` (no newline kept): what a view built from it joins
/// into lines, no field of it can add a line to. A value that does not come back whole is
/// returned as it was (the view is then made safe as a whole, newlines kept).
pub fn escaped<T: serde::Serialize + serde::de::DeserializeOwned + Clone>(value: &T) -> T {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = safe(s, false),
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            // Keys too: a map's keys are the writer's (labels of a nodeSelector).
            serde_json::Value::Object(fields) => {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(k, mut v)| {
                        walk(&mut v);
                        (safe(&k, false), v)
                    })
                    .collect();
            }
            _ => {}
        }
    }
    let Ok(mut v) = serde_json::to_value(value) else { return value.clone() };
    walk(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| value.clone())
}

#[cfg(test)]
#[path = "terminal_tests.rs"]
mod tests;
