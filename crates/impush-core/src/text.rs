//! Cutting text to a vendor's limit without breaking a character: cuts fall on grapheme
//! cluster boundaries (an emoji with its modifiers, a letter with its combining marks, stay
//! whole) and end with an ellipsis. Also the one way device and auth tokens are shortened
//! for logs, errors and dead-letter views ([`short_token`]).

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;

pub const ELLIPSIS: &str = "…";

/// How many characters of a token [`short_token`] keeps.
pub const TOKEN_SHOWN: usize = 8;

/// The first 8 characters of a device or auth token: enough to find it, too few to use it.
pub fn short_token(token: &str) -> &str {
    match token.char_indices().nth(TOKEN_SHOWN) {
        Some((end, _)) => &token[..end],
        None => token,
    }
}

/// Number of user-perceived characters (grapheme clusters).
pub fn grapheme_len(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Keeps at most `max` grapheme clusters of `s`, the last of them an ellipsis when anything
/// was cut. `max == 0` gives the empty string.
pub fn truncate_graphemes(s: &str, max: usize) -> Cow<'_, str> {
    let mut ends = s.grapheme_indices(true).map(|(i, g)| i + g.len());
    // The byte offset where grapheme number `max` ends, if the string is longer than that.
    match ends.nth(max) {
        None => Cow::Borrowed(s),
        Some(_) if max == 0 => Cow::Borrowed(""),
        Some(_) => {
            let keep_end = s
                .grapheme_indices(true)
                .nth(max - 1)
                .map(|(i, _)| i)
                .unwrap_or(0);
            let mut out = String::with_capacity(keep_end + ELLIPSIS.len());
            out.push_str(&s[..keep_end]);
            out.push_str(ELLIPSIS);
            Cow::Owned(out)
        }
    }
}

/// Keeps at most `max` units of `s` as counted by `count` (a vendor's own measure, e.g. a
/// CJK character counting twice), cutting on a grapheme boundary with an ellipsis.
pub fn truncate_by(s: &str, max: usize, count: fn(&str) -> usize) -> Cow<'_, str> {
    if count(s) <= max {
        return Cow::Borrowed(s);
    }
    let ellipsis = count(ELLIPSIS);
    if max < ellipsis {
        return Cow::Borrowed("");
    }
    let mut used = 0;
    let mut keep_end = 0;
    if s.is_ascii() && !s.contains('\r') {
        // Fast path for the common case: in ASCII without CR (CR LF is one cluster) every
        // byte is a grapheme cluster of its own, so no segmentation is needed.
        for i in 0..s.len() {
            let cost = count(&s[i..=i]);
            if used + cost + ellipsis > max {
                break;
            }
            used += cost;
            keep_end = i + 1;
        }
        return Cow::Owned(format!("{}{ELLIPSIS}", &s[..keep_end]));
    }
    for (i, g) in s.grapheme_indices(true) {
        let cost = count(g);
        if used + cost + ellipsis > max {
            break;
        }
        used += cost;
        keep_end = i + g.len();
    }
    Cow::Owned(format!("{}{ELLIPSIS}", &s[..keep_end]))
}

/// Unicode scalar values: the measure most vendor docs mean by "characters".
pub fn char_count(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_shortened_to_their_first_8_characters() {
        assert_eq!(short_token("0123456789abcdef"), "01234567");
        assert_eq!(short_token("abc"), "abc");
        assert_eq!(short_token("你好你好你好你好你好"), "你好你好你好你好");
    }

    #[test]
    fn short_text_is_untouched() {
        assert!(matches!(
            truncate_graphemes("hello", 5),
            Cow::Borrowed("hello")
        ));
        assert_eq!(truncate_by("hello", 5, char_count), "hello");
    }

    #[test]
    fn long_text_ends_with_an_ellipsis_within_the_limit() {
        assert_eq!(truncate_graphemes("hello world", 5), "hell…");
        assert_eq!(grapheme_len(&truncate_graphemes("hello world", 5)), 5);
        assert_eq!(truncate_by("hello world", 5, char_count), "hell…");
        assert_eq!(truncate_graphemes("hello", 0), "");
    }

    #[test]
    fn cuts_never_split_a_grapheme() {
        // A family emoji is one grapheme of several code points; "e" + combining acute too.
        let family = "👨\u{200d}👩\u{200d}👧";
        let s = format!("{family}{family}e\u{301}e\u{301}");
        assert_eq!(truncate_graphemes(&s, 2), format!("{family}…"));
        let cut = truncate_by(&s, 12, char_count);
        assert!(cut.ends_with(ELLIPSIS));
        assert!(s.starts_with(cut.trim_end_matches(ELLIPSIS)));
        assert!(char_count(&cut) <= 12);
    }

    #[test]
    fn ascii_fast_path_cuts_like_the_grapheme_path() {
        let ascii = "The quick brown fox jumps over the lazy dog";
        for max in 0..ascii.len() + 2 {
            let fast = truncate_by(ascii, max, char_count);
            // The same text with one non-ASCII letter at the very end takes the slow path and
            // must cut identically wherever the cut falls before that letter.
            let slow_input = format!("{ascii}é");
            let slow = truncate_by(&slow_input, max, char_count);
            if max < ascii.len() {
                assert_eq!(fast, slow, "max {max}");
            }
            assert!(char_count(&fast) <= max, "max {max}: {fast}");
        }
        assert_eq!(
            truncate_by("a\r\nb\r\nc", 3, char_count),
            "a…",
            "CR LF stays whole"
        );
    }

    #[test]
    fn cjk_is_cut_by_the_vendor_measure() {
        fn cjk_double(s: &str) -> usize {
            s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
        }
        let cut = truncate_by("你好世界你好世界", 7, cjk_double);
        assert!(cjk_double(&cut) <= 7);
        assert_eq!(cut, "你好…");
    }
}
