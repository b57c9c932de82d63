//! Pure: a label selector written the way `kubectl -l` takes it (`app=web,tier!=db,env in (a,b)`)
//! parsed into kube's `Selector`, so that the shared pod cache can be filtered in memory, and a
//! selector the API server would refuse is reported with what to fix before anything is read.
//! (kube-core matches selectors but does not parse this text form.)

use kube::core::{Expression, Selector};
use std::collections::BTreeSet;

/// Parse `text`; an empty selector selects everything.
pub fn parse(text: &str) -> Result<Selector, String> {
    let mut exprs = vec![];
    for term in split_terms(text)? {
        let term = term.trim();
        if term.is_empty() {
            return Err(format!(
                "label selector {text:?} has an empty term; separate terms with single commas"
            ));
        }
        exprs.push(parse_term(term).map_err(|e| format!("label selector {text:?}: {e}"))?);
    }
    Ok(exprs.into_iter().collect())
}

/// Split on the commas that are not inside a `( … )` value list.
fn split_terms(text: &str) -> Result<Vec<&str>, String> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    let (mut terms, mut depth, mut start) = (vec![], 0, 0);
    for (i, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' if depth == 0 => {
                return Err(format!("label selector {text:?} closes a parenthesis it never opened"));
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("label selector {text:?} leaves a parenthesis open"));
    }
    terms.push(&text[start..]);
    Ok(terms)
}

fn parse_term(term: &str) -> Result<Expression, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key_of(key.trim())?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Expression::NotEqual(key_of(k.trim())?, value_of(v.trim())?));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Expression::Equal(key_of(k.trim())?, value_of(v.trim())?));
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words[..] {
        let rest = rest.trim_start();
        for (op, not) in [("notin", true), ("in", false)] {
            if let Some(list) = rest.strip_prefix(op) {
                let values = value_list(list.trim())?;
                let key = key_of(key)?;
                return Ok(if not { Expression::NotIn(key, values) } else { Expression::In(key, values) });
            }
        }
        return Err(format!(
            "{term:?} is not a term: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
        ));
    }
    Ok(Expression::Exists(key_of(term)?))
}

fn value_list(list: &str) -> Result<BTreeSet<String>, String> {
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("{list:?} must be a list of values in parentheses, such as (a,b)"))?;
    let values: BTreeSet<String> = inner.split(',').map(|v| value_of(v.trim())).collect::<Result<_, _>>()?;
    if values.is_empty() || values.iter().all(|v| v.is_empty()) {
        return Err(format!("{list:?} lists no values"));
    }
    Ok(values)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
fn key_of(key: &str) -> Result<String, String> {
    let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(p, n)| (Some(p), n));
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty() && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !ok {
            return Err(format!(
                "label key {key:?} has an invalid prefix (a DNS subdomain such as example.com)"
            ));
        }
    }
    if name.is_empty() || !is_label_word(name) {
        return Err(format!(
            "label key {key:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(key.to_string())
}

/// A label value: empty, or like a key's name.
fn value_of(value: &str) -> Result<String, String> {
    if value.is_empty() || is_label_word(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "label value {value:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

fn is_label_word(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && s.starts_with(edge)
        && s.ends_with(edge)
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;
