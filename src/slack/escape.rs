//! Escaping and truncation for text that goes into a Slack message.
//!
//! Every user-supplied value passes through here: unescaped `<!channel>` or `<@U…>` in a webhook's
//! data would ping whole channels, and a value over a Block Kit limit makes Slack reject the whole
//! message with `invalid_blocks`, so values are cut *before* sending, never after a rejection.

/// Marks a value that was cut to fit a limit.
const ELLIPSIS: char = '…';

/// Escapes `&`, `<`, `>` for mrkdwn and keeps the result within `max_chars` characters, cutting
/// between escapes (never inside `&amp;`) and ending a cut value with `…`.
pub fn mrkdwn(value: &str, max_chars: usize) -> String {
    fit(value, max_chars, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}

/// Keeps a `plain_text` value within `max_chars` characters. Plain text is not parsed for
/// mentions, so nothing is escaped; control characters other than new lines are dropped.
pub fn plain(value: &str, max_chars: usize) -> String {
    fit(value, max_chars, |_| None)
}

/// Keeps text that is already escaped within `max_chars`: cut at a character boundary, never
/// inside an escape (`&amp;`), and ended with `…` when cut.
pub fn cut_escaped(escaped: &str, max_chars: usize) -> String {
    if escaped.chars().count() <= max_chars {
        return escaped.to_string();
    }
    let mut out: String = escaped.chars().take(max_chars.saturating_sub(1)).collect();
    if let Some(amp) = out.rfind('&') {
        if !out[amp..].contains(';') {
            out.truncate(amp);
        }
    }
    out.push(ELLIPSIS);
    out
}

fn fit(value: &str, max_chars: usize, escape: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(value.len().min(max_chars * 2));
    let mut used = 0usize;
    let mut chars = value
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .peekable();
    while let Some(c) = chars.next() {
        let piece_len = escape(c).map_or(1, |e| e.chars().count());
        // Room must stay for the ellipsis unless this is the very last character.
        let reserve = if chars.peek().is_some() { 1 } else { 0 };
        if used + piece_len + reserve > max_chars {
            out.push(ELLIPSIS);
            return out;
        }
        match escape(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
        used += piece_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_links_are_neutralised() {
        assert_eq!(
            mrkdwn("<!channel> & <@U123>", 100),
            "&lt;!channel&gt; &amp; &lt;@U123&gt;"
        );
    }

    #[test]
    fn short_values_are_unchanged() {
        assert_eq!(mrkdwn("Andrew Test", 100), "Andrew Test");
        assert_eq!(plain("Sample02", 150), "Sample02");
    }

    #[test]
    fn long_values_are_cut_to_the_limit_with_an_ellipsis() {
        let cut = plain(&"x".repeat(500), 150);
        assert_eq!(cut.chars().count(), 150);
        assert!(cut.ends_with('…'));
        assert_eq!(plain(&"x".repeat(150), 150), "x".repeat(150));
    }

    #[test]
    fn a_cut_never_splits_an_escape() {
        let cut = mrkdwn(&"&".repeat(100), 12);
        assert_eq!(cut, "&amp;&amp;…");
        assert!(cut.chars().count() <= 12);
    }

    #[test]
    fn multibyte_text_is_counted_in_characters() {
        let cut = plain(&"é".repeat(200), 150);
        assert_eq!(cut.chars().count(), 150);
    }

    #[test]
    fn control_characters_are_dropped_but_newlines_kept() {
        assert_eq!(plain("a\u{0}b\nc", 10), "ab\nc");
    }
}
