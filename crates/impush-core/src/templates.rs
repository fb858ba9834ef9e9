//! Notification formats and element placeholders, per `sdk_app_id`.
//!
//! The defaults follow the IM offline-push documents: C2C `Nickname: content` (content alone
//! without a nickname), group `Name (GroupName): content` with the name card before the
//! nickname, and `[image]`, `[voice]`, `[file]`, … for media elements; `[@me] ` and
//! `[@all] ` before the body of a mentioned recipient, and `[message recalled]` for a recall. Every string can be
//! replaced per app (`[templates.<sdk_app_id>]` in the config), e.g. with [`Templates::chinese`].

use std::collections::HashMap;

use serde::Deserialize;

/// The texts of one app. Placeholders in formats: `{nickname}`, `{name}`, `{group_name}`,
/// `{content}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Templates {
    /// One-to-one message whose sender has a nickname.
    pub c2c: String,
    /// One-to-one message whose sender has no nickname.
    pub c2c_anonymous: String,
    /// Group message; `{name}` is the sender's name card, else nickname.
    pub group: String,
    /// Group message whose sender has neither name card nor nickname.
    pub group_anonymous: String,
    /// Put between the texts of several elements.
    pub elem_separator: String,
    pub image: String,
    pub voice: String,
    pub file: String,
    pub video: String,
    pub location: String,
    pub face: String,
    pub merger: String,
    /// Content of a call invitation whose elements say nothing.
    pub audio_call: String,
    pub video_call: String,
    /// Put before the body of a recipient mentioned by name (`at_user_ids`).
    pub mention_me: String,
    /// Put before the body of a recipient mentioned with the whole group (`at_all`).
    pub mention_all: String,
    /// The body that replaces a recalled message's notification where the vendor can only
    /// replace it.
    pub recalled: String,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::english()
    }
}

impl Templates {
    /// The defaults of the offline-push documents.
    pub fn english() -> Templates {
        Templates {
            c2c: "{nickname}: {content}".into(),
            c2c_anonymous: "{content}".into(),
            group: "{name} ({group_name}): {content}".into(),
            group_anonymous: "({group_name}): {content}".into(),
            elem_separator: "".into(),
            image: "[image]".into(),
            voice: "[voice]".into(),
            file: "[file]".into(),
            video: "[video]".into(),
            location: "[location]".into(),
            face: "[emoji]".into(),
            merger: "[chat history]".into(),
            audio_call: "[audio call]".into(),
            video_call: "[video call]".into(),
            mention_me: "[@me] ".into(),
            mention_all: "[@all] ".into(),
            recalled: "[message recalled]".into(),
        }
    }

    /// The Chinese texts the IM console shows (`[图片]`, `[语音]`, …), with full-width
    /// punctuation.
    pub fn chinese() -> Templates {
        Templates {
            c2c: "{nickname}：{content}".into(),
            c2c_anonymous: "{content}".into(),
            group: "{name}（{group_name}）：{content}".into(),
            group_anonymous: "（{group_name}）：{content}".into(),
            elem_separator: "".into(),
            image: "[图片]".into(),
            voice: "[语音]".into(),
            file: "[文件]".into(),
            video: "[视频]".into(),
            location: "[位置]".into(),
            face: "[表情]".into(),
            merger: "[聊天记录]".into(),
            audio_call: "[语音通话]".into(),
            video_call: "[视频通话]".into(),
            mention_me: "[有人@我]".into(),
            mention_all: "[@所有人]".into(),
            recalled: "[消息已撤回]".into(),
        }
    }
}

/// What a template refers to that nothing fills: the field, the placeholder as written and
/// the placeholders the field does take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlaceholder {
    pub field: &'static str,
    pub placeholder: String,
    pub known: &'static [&'static str],
}

impl std::fmt::Display for UnknownPlaceholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}`: unknown placeholder `{}`",
            self.field, self.placeholder
        )?;
        if self.known.is_empty() {
            write!(f, " (this text takes no placeholders)")
        } else {
            let known: Vec<String> = self.known.iter().map(|k| format!("{{{k}}}")).collect();
            write!(f, " (it takes {})", known.join(", "))
        }
    }
}

impl Templates {
    /// The first placeholder written in a text that [`fill`] would leave as is (`{nick}`
    /// for `{nickname}`): it would reach users' lock screens verbatim.
    pub fn unknown_placeholder(&self) -> Option<UnknownPlaceholder> {
        const C2C: &[&str] = &["nickname", "content"];
        const C2C_ANONYMOUS: &[&str] = &["content"];
        const GROUP: &[&str] = &["name", "nickname", "group_name", "content"];
        const GROUP_ANONYMOUS: &[&str] = &["group_name", "content"];
        const NONE: &[&str] = &[];
        let texts: [(&'static str, &str, &'static [&'static str]); 14] = [
            ("c2c", &self.c2c, C2C),
            ("c2c_anonymous", &self.c2c_anonymous, C2C_ANONYMOUS),
            ("group", &self.group, GROUP),
            ("group_anonymous", &self.group_anonymous, GROUP_ANONYMOUS),
            ("elem_separator", &self.elem_separator, NONE),
            ("image", &self.image, NONE),
            ("voice", &self.voice, NONE),
            ("file", &self.file, NONE),
            ("video", &self.video, NONE),
            ("location", &self.location, NONE),
            ("face", &self.face, NONE),
            ("merger", &self.merger, NONE),
            ("audio_call", &self.audio_call, NONE),
            ("video_call", &self.video_call, NONE),
        ];
        texts.into_iter().find_map(|(field, text, known)| {
            placeholders(text)
                .find(|key| !known.contains(key))
                .map(|key| UnknownPlaceholder {
                    field,
                    placeholder: format!("{{{key}}}"),
                    known,
                })
        })
    }
}

/// The `{key}` placeholders of a text: braces around a lower-case identifier (other
/// braces are text).
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|after| {
        let key = &after[..after.find('}')?];
        let identifier = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        identifier.then_some(key)
    })
}

/// Fills `{key}` placeholders in one pass; unknown placeholders stay as written, and
/// substituted text is never scanned again (a nickname of `{content}` stays literal).
pub fn fill(format: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(format.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((key, close)) => match values.iter().find(|(k, _)| *k == key) {
                Some((_, value)) => {
                    out.push_str(value);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            },
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Which texts each app uses: a default set and overrides per `sdk_app_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateSet {
    pub default: Templates,
    pub per_app: HashMap<u32, Templates>,
}

impl TemplateSet {
    pub fn for_app(&self, sdk_app_id: u32) -> &Templates {
        self.per_app.get(&sdk_app_id).unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_placeholder_is_found_with_its_field() {
        let mut t = Templates::english();
        assert_eq!(t.unknown_placeholder(), None, "the defaults are sound");
        assert_eq!(Templates::chinese().unknown_placeholder(), None);
        t.c2c = "{nick}: {content}".into();
        let found = t.unknown_placeholder().unwrap();
        assert_eq!((found.field, found.placeholder.as_str()), ("c2c", "{nick}"));
        assert!(found.to_string().contains("{nickname}"), "{found}");

        let mut t = Templates::english();
        t.c2c_anonymous = "{nickname}: {content}".into();
        assert_eq!(t.unknown_placeholder().unwrap().field, "c2c_anonymous");
        let mut t = Templates::english();
        t.image = "[{image}]".into();
        assert_eq!(t.unknown_placeholder().unwrap().field, "image");
        let mut t = Templates::english();
        t.group = "{name} {JSON} {} ({group_name}): {content}".into();
        assert_eq!(
            t.unknown_placeholder(),
            None,
            "braces around other text are text"
        );
    }

    #[test]
    fn fill_substitutes_known_keys_once() {
        assert_eq!(
            fill(
                "{name} ({group_name}): {content}",
                &[("name", "A"), ("group_name", "G"), ("content", "{name}")]
            ),
            "A (G): {name}"
        );
        assert_eq!(fill("{unknown} {", &[("content", "x")]), "{unknown} {");
    }

    #[test]
    fn per_app_templates_override_the_default() {
        let mut set = TemplateSet::default();
        set.per_app.insert(7, Templates::chinese());
        assert_eq!(set.for_app(7).image, "[图片]");
        assert_eq!(set.for_app(8).image, "[image]");
    }

    #[test]
    fn partial_config_keeps_the_other_defaults() {
        let t: Templates = toml::from_str("image = \"[photo]\"").unwrap();
        assert_eq!(t.image, "[photo]");
        assert_eq!(t.voice, "[voice]");
        assert!(
            toml::from_str::<Templates>("imgae = \"x\"").is_err(),
            "typos are errors"
        );
    }
}
